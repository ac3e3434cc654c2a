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
-- lakeside-autos: persons with an active grant for each of measurement
ok_lakeside_autos AS MATERIALIZED (
  SELECT pid
  FROM lakeside_autos__consent
  WHERE purpose IN ('measurement')
    AND granted_at <= TIMESTAMP '2026-11-15 12:00:00'
    AND (revoked_at IS NULL OR revoked_at > TIMESTAMP '2026-11-15 12:00:00')
  GROUP BY pid
  HAVING bit_or(CASE purpose WHEN 'measurement' THEN 1 END) = 1
),
-- lakeside-autos.sales: persons with more than 20 rows
t0_heavy AS MATERIALIZED (
  SELECT pid
  FROM lakeside_autos__sales
  GROUP BY pid
  HAVING count(*) > 20
),
-- lakeside-autos.sales: consented rows, at most 20 per person
t0 AS (
  SELECT *
  FROM (
    (
      SELECT pid, CAST(sold_at AS TIMESTAMP) AS ts, list_position(['north', 'south', 'east', 'west', 'central'], CAST(region AS VARCHAR)) AS g0
      FROM lakeside_autos__sales
      WHERE pid NOT IN (SELECT pid FROM t0_heavy)
    )
    UNION ALL
    (
      SELECT pid, CAST(sold_at AS TIMESTAMP) AS ts, list_position(['north', 'south', 'east', 'west', 'central'], CAST(region AS VARCHAR)) AS g0
      FROM lakeside_autos__sales
      WHERE pid IN (SELECT pid FROM t0_heavy)
      QUALIFY row_number() OVER (PARTITION BY pid ORDER BY sold_at, dealer_id, model, region, price_band, price_eur) <= 20
    )
  )
  WHERE pid IN (SELECT pid FROM ok_lakeside_autos)
),
-- aurora-motors.web_sessions: persons with more than 20 rows
t1_heavy AS MATERIALIZED (
  SELECT pid
  FROM aurora_motors__web_sessions
  GROUP BY pid
  HAVING count(*) > 20
),
-- aurora-motors.web_sessions: consented rows, at most 20 per person
t1 AS (
  SELECT *
  FROM (
    (
      SELECT pid, CAST(session_at AS TIMESTAMP) AS ts
      FROM aurora_motors__web_sessions
      WHERE pid NOT IN (SELECT pid FROM t1_heavy)
    )
    UNION ALL
    (
      SELECT pid, CAST(session_at AS TIMESTAMP) AS ts
      FROM aurora_motors__web_sessions
      WHERE pid IN (SELECT pid FROM t1_heavy)
      QUALIFY row_number() OVER (PARTITION BY pid ORDER BY session_at, model, channel, region, configurator_completed) <= 20
    )
  )
  WHERE pid IN (SELECT pid FROM ok_aurora_motors)
),
joined AS (
  SELECT t0.pid, t0.ts AS ts0, t1.ts AS ts1, t0.g0
  FROM t0
  JOIN t1 USING (pid)
  WHERE g0 IS NOT NULL
),
cells AS MATERIALIZED (
  SELECT pid, g0
  FROM joined
  GROUP BY pid, g0
  QUALIFY row_number() OVER (PARTITION BY pid ORDER BY min(ts0), g0) <= 4
),
agg_count AS (
  SELECT g0 AS k0, count(*) AS n
  FROM cells
  GROUP BY g0
)
SELECT * FROM (
  (SELECT 0 AS part_ord, 'persons' AS part, d0.o AS o0, d0.v AS k0, coalesce(a.n, 0) AS n
  FROM (VALUES (1, 'north'), (2, 'south'), (3, 'east'), (4, 'west'), (5, 'central')) AS d0(o, v)
  LEFT JOIN agg_count AS a ON a.k0 = d0.o)
)
ORDER BY part_ord, o0
