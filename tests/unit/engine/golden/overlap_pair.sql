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
agg_persons AS (
  SELECT 1 AS k0, count(*) AS n FROM people_0
  UNION ALL
  SELECT 2 AS k0, count(*) AS n FROM people_1
),
agg_shared AS (
  SELECT 1 AS k0, count(*) AS n FROM people_0 JOIN people_1 USING (pid)
)
SELECT * FROM (
  (SELECT 0 AS part_ord, 'persons' AS part, d0.o AS o0, 0 AS o1, d0.v AS k0, CAST(NULL AS VARCHAR) AS k1, coalesce(a.n, 0) AS n
  FROM (VALUES (1, 'aurora-motors.web_sessions'), (2, 'northside-dealers.sales')) AS d0(o, v)
  LEFT JOIN agg_persons AS a ON a.k0 = d0.o)
  UNION ALL
  (SELECT 1 AS part_ord, 'shared' AS part, d.o AS o0, 0 AS o1, d.v0 AS k0, d.v1 AS k1, coalesce(a.n, 0) AS n
  FROM (VALUES (1, 'aurora-motors.web_sessions', 'northside-dealers.sales')) AS d(o, v0, v1)
  LEFT JOIN agg_shared AS a ON a.k0 = d.o)
)
ORDER BY part_ord, o0, o1
