WITH
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
-- northside-dealers.sales: persons with more than 20 rows
t0_heavy AS MATERIALIZED (
  SELECT pid
  FROM northside_dealers__sales
  GROUP BY pid
  HAVING count(*) > 20
),
-- northside-dealers.sales: consented rows, at most 20 per person
t0 AS (
  SELECT *
  FROM (
    (
      SELECT pid, CAST(sold_at AS TIMESTAMP) AS ts, list_position(['aster', 'borealis', 'cirrus', 'dune', 'ember', 'fjord'], CAST(model AS VARCHAR)) AS g0, least(greatest(price_eur, 0), 100000) AS m1
      FROM northside_dealers__sales
      WHERE CAST(region AS VARCHAR) IN ('north', 'south')
        AND pid NOT IN (SELECT pid FROM t0_heavy)
    )
    UNION ALL
    (
      SELECT pid, CAST(sold_at AS TIMESTAMP) AS ts, list_position(['aster', 'borealis', 'cirrus', 'dune', 'ember', 'fjord'], CAST(model AS VARCHAR)) AS g0, least(greatest(price_eur, 0), 100000) AS m1
      FROM northside_dealers__sales
      WHERE CAST(region AS VARCHAR) IN ('north', 'south')
        AND pid IN (SELECT pid FROM t0_heavy)
      QUALIFY row_number() OVER (PARTITION BY pid ORDER BY sold_at, dealer_id, model, region, price_band, price_eur) <= 20
    )
  )
  WHERE pid IN (SELECT pid FROM ok_northside_dealers)
),
joined AS (
  SELECT t0.pid, t0.ts AS ts0, t0.g0, t0.m1
  FROM t0
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
),
rows_m1 AS (
  SELECT *
  FROM joined
  JOIN cells USING (pid, g0)
  QUALIFY row_number() OVER (PARTITION BY pid, g0 ORDER BY ts0, m1) <= 20
),
agg_m1 AS (
  SELECT g0 AS k0, sum(m1) AS n
  FROM rows_m1
  GROUP BY g0
)
SELECT * FROM (
  (SELECT 0 AS part_ord, 'buyers' AS part, d0.o AS o0, d0.v AS k0, coalesce(a.n, 0) AS n
  FROM (VALUES (1, 'aster'), (2, 'borealis'), (3, 'cirrus'), (4, 'dune'), (5, 'ember'), (6, 'fjord')) AS d0(o, v)
  LEFT JOIN agg_count AS a ON a.k0 = d0.o)
  UNION ALL
  (SELECT 1 AS part_ord, 'revenue' AS part, d0.o AS o0, d0.v AS k0, coalesce(a.n, 0) AS n
  FROM (VALUES (1, 'aster'), (2, 'borealis'), (3, 'cirrus'), (4, 'dune'), (5, 'ember'), (6, 'fjord')) AS d0(o, v)
  LEFT JOIN agg_m1 AS a ON a.k0 = d0.o)
)
ORDER BY part_ord, o0
