WITH
-- aurora-motors: persons with an active grant for each of measurement
ok_aurora_motors AS MATERIALIZED (
  SELECT pid
  FROM aurora_motors__consent
  WHERE purpose IN ('measurement')
    AND granted_at <= TIMESTAMP '2026-11-15 12:00:00'
    AND (revoked_at IS NULL OR revoked_at > TIMESTAMP '2026-11-15 12:00:00')
  GROUP BY pid
  HAVING bit_or(CASE purpose WHEN 'measurement' THEN 1 END) = 1
),
-- northside-dealers: persons with an active grant for each of measurement
ok_northside_dealers AS MATERIALIZED (
  SELECT pid
  FROM northside_dealers__consent
  WHERE purpose IN ('measurement')
    AND granted_at <= TIMESTAMP '2026-11-15 12:00:00'
    AND (revoked_at IS NULL OR revoked_at > TIMESTAMP '2026-11-15 12:00:00')
  GROUP BY pid
  HAVING bit_or(CASE purpose WHEN 'measurement' THEN 1 END) = 1
),
-- aurora-motors.web_sessions: consented rows
src_0 AS (
  SELECT *
  FROM (
    SELECT pid
    FROM aurora_motors__web_sessions
  )
  WHERE pid IN (SELECT pid FROM ok_aurora_motors)
),
-- northside-dealers.sales: consented rows
src_1 AS (
  SELECT *
  FROM (
    SELECT pid
    FROM northside_dealers__sales
  )
  WHERE pid IN (SELECT pid FROM ok_northside_dealers)
),
people_0 AS MATERIALIZED (
  SELECT DISTINCT pid FROM src_0
),
people_1 AS MATERIALIZED (
  SELECT DISTINCT pid FROM src_1
),
agg_venn AS (
  SELECT 0 + CASE WHEN a.pid IS NULL THEN 2 WHEN c.pid IS NULL THEN 1 ELSE 3 END AS k0, count(*) AS n
  FROM people_0 AS a FULL JOIN people_1 AS c ON a.pid = c.pid
  GROUP BY 1
)
SELECT * FROM (
  (SELECT 0 AS part_ord, 'venn' AS part, d.o AS o0, 0 AS o1, 0 AS o2, d.v0 AS k0, d.v1 AS k1, d.v2 AS k2, coalesce(a.n, 0) AS n
  FROM (VALUES (1, 'aurora-motors.web_sessions', 'northside-dealers.sales', 'a_only'), (2, 'aurora-motors.web_sessions', 'northside-dealers.sales', 'b_only'), (3, 'aurora-motors.web_sessions', 'northside-dealers.sales', 'both')) AS d(o, v0, v1, v2)
  LEFT JOIN agg_venn AS a ON a.k0 = d.o)
)
ORDER BY part_ord, o0, o1, o2
