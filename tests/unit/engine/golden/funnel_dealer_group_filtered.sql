WITH
-- aurora-financial: persons with an active grant for each of measurement
ok_aurora_financial AS MATERIALIZED (
  SELECT pid
  FROM aurora_financial__consent
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
-- lakeside-autos.leads: persons with more than 20 rows
src_lead_0_heavy AS MATERIALIZED (
  SELECT pid
  FROM lakeside_autos__leads
  GROUP BY pid
  HAVING count(*) > 20
),
-- lakeside-autos.leads: consented rows, at most 20 per person
src_lead_0 AS (
  SELECT *
  FROM (
    (
      SELECT pid, CAST(lead_at AS TIMESTAMP) AS ts, list_position(['northside-dealers', 'lakeside-autos'], 'lakeside-autos') AS d0, list_position(['north', 'south', 'east', 'west', 'central'], CAST(region AS VARCHAR)) AS d1, list_position(['2025-11', '2025-12', '2026-01', '2026-02', '2026-03', '2026-04', '2026-05', '2026-06', '2026-07', '2026-08', '2026-09', '2026-10'], strftime(lead_at, '%Y-%m')) AS d2
      FROM lakeside_autos__leads
      WHERE pid NOT IN (SELECT pid FROM src_lead_0_heavy)
    )
    UNION ALL
    (
      SELECT pid, CAST(lead_at AS TIMESTAMP) AS ts, list_position(['northside-dealers', 'lakeside-autos'], 'lakeside-autos') AS d0, list_position(['north', 'south', 'east', 'west', 'central'], CAST(region AS VARCHAR)) AS d1, list_position(['2025-11', '2025-12', '2026-01', '2026-02', '2026-03', '2026-04', '2026-05', '2026-06', '2026-07', '2026-08', '2026-09', '2026-10'], strftime(lead_at, '%Y-%m')) AS d2
      FROM lakeside_autos__leads
      WHERE pid IN (SELECT pid FROM src_lead_0_heavy)
      QUALIFY row_number() OVER (PARTITION BY pid ORDER BY lead_at, dealer_id, model, region, source) <= 20
    )
  )
  WHERE pid IN (SELECT pid FROM ok_lakeside_autos)
),
-- northside-dealers.leads: persons with more than 20 rows
src_lead_1_heavy AS MATERIALIZED (
  SELECT pid
  FROM northside_dealers__leads
  GROUP BY pid
  HAVING count(*) > 20
),
-- northside-dealers.leads: consented rows, at most 20 per person
src_lead_1 AS (
  SELECT *
  FROM (
    (
      SELECT pid, CAST(lead_at AS TIMESTAMP) AS ts, list_position(['northside-dealers', 'lakeside-autos'], 'northside-dealers') AS d0, list_position(['north', 'south', 'east', 'west', 'central'], CAST(region AS VARCHAR)) AS d1, list_position(['2025-11', '2025-12', '2026-01', '2026-02', '2026-03', '2026-04', '2026-05', '2026-06', '2026-07', '2026-08', '2026-09', '2026-10'], strftime(lead_at, '%Y-%m')) AS d2
      FROM northside_dealers__leads
      WHERE pid NOT IN (SELECT pid FROM src_lead_1_heavy)
    )
    UNION ALL
    (
      SELECT pid, CAST(lead_at AS TIMESTAMP) AS ts, list_position(['northside-dealers', 'lakeside-autos'], 'northside-dealers') AS d0, list_position(['north', 'south', 'east', 'west', 'central'], CAST(region AS VARCHAR)) AS d1, list_position(['2025-11', '2025-12', '2026-01', '2026-02', '2026-03', '2026-04', '2026-05', '2026-06', '2026-07', '2026-08', '2026-09', '2026-10'], strftime(lead_at, '%Y-%m')) AS d2
      FROM northside_dealers__leads
      WHERE pid IN (SELECT pid FROM src_lead_1_heavy)
      QUALIFY row_number() OVER (PARTITION BY pid ORDER BY lead_at, dealer_id, model, region, source) <= 20
    )
  )
  WHERE pid IN (SELECT pid FROM ok_northside_dealers)
),
-- lakeside-autos.test_drives: persons with more than 20 rows
src_test_drive_0_heavy AS MATERIALIZED (
  SELECT pid
  FROM lakeside_autos__test_drives
  GROUP BY pid
  HAVING count(*) > 20
),
-- lakeside-autos.test_drives: consented rows, at most 20 per person
src_test_drive_0 AS (
  SELECT *
  FROM (
    (
      SELECT pid, CAST(drive_at AS TIMESTAMP) AS ts
      FROM lakeside_autos__test_drives
      WHERE pid NOT IN (SELECT pid FROM src_test_drive_0_heavy)
    )
    UNION ALL
    (
      SELECT pid, CAST(drive_at AS TIMESTAMP) AS ts
      FROM lakeside_autos__test_drives
      WHERE pid IN (SELECT pid FROM src_test_drive_0_heavy)
      QUALIFY row_number() OVER (PARTITION BY pid ORDER BY drive_at, dealer_id, model, region) <= 20
    )
  )
  WHERE pid IN (SELECT pid FROM ok_lakeside_autos)
),
-- northside-dealers.test_drives: persons with more than 20 rows
src_test_drive_1_heavy AS MATERIALIZED (
  SELECT pid
  FROM northside_dealers__test_drives
  GROUP BY pid
  HAVING count(*) > 20
),
-- northside-dealers.test_drives: consented rows, at most 20 per person
src_test_drive_1 AS (
  SELECT *
  FROM (
    (
      SELECT pid, CAST(drive_at AS TIMESTAMP) AS ts
      FROM northside_dealers__test_drives
      WHERE pid NOT IN (SELECT pid FROM src_test_drive_1_heavy)
    )
    UNION ALL
    (
      SELECT pid, CAST(drive_at AS TIMESTAMP) AS ts
      FROM northside_dealers__test_drives
      WHERE pid IN (SELECT pid FROM src_test_drive_1_heavy)
      QUALIFY row_number() OVER (PARTITION BY pid ORDER BY drive_at, dealer_id, model, region) <= 20
    )
  )
  WHERE pid IN (SELECT pid FROM ok_northside_dealers)
),
-- lakeside-autos.sales: persons with more than 20 rows
src_sale_0_heavy AS MATERIALIZED (
  SELECT pid
  FROM lakeside_autos__sales
  GROUP BY pid
  HAVING count(*) > 20
),
-- lakeside-autos.sales: consented rows, at most 20 per person
src_sale_0 AS (
  SELECT *
  FROM (
    (
      SELECT pid, CAST(sold_at AS TIMESTAMP) AS ts
      FROM lakeside_autos__sales
      WHERE pid NOT IN (SELECT pid FROM src_sale_0_heavy)
    )
    UNION ALL
    (
      SELECT pid, CAST(sold_at AS TIMESTAMP) AS ts
      FROM lakeside_autos__sales
      WHERE pid IN (SELECT pid FROM src_sale_0_heavy)
      QUALIFY row_number() OVER (PARTITION BY pid ORDER BY sold_at, dealer_id, model, region, price_band, price_eur) <= 20
    )
  )
  WHERE pid IN (SELECT pid FROM ok_lakeside_autos)
),
-- northside-dealers.sales: persons with more than 20 rows
src_sale_1_heavy AS MATERIALIZED (
  SELECT pid
  FROM northside_dealers__sales
  GROUP BY pid
  HAVING count(*) > 20
),
-- northside-dealers.sales: consented rows, at most 20 per person
src_sale_1 AS (
  SELECT *
  FROM (
    (
      SELECT pid, CAST(sold_at AS TIMESTAMP) AS ts
      FROM northside_dealers__sales
      WHERE pid NOT IN (SELECT pid FROM src_sale_1_heavy)
    )
    UNION ALL
    (
      SELECT pid, CAST(sold_at AS TIMESTAMP) AS ts
      FROM northside_dealers__sales
      WHERE pid IN (SELECT pid FROM src_sale_1_heavy)
      QUALIFY row_number() OVER (PARTITION BY pid ORDER BY sold_at, dealer_id, model, region, price_band, price_eur) <= 20
    )
  )
  WHERE pid IN (SELECT pid FROM ok_northside_dealers)
),
first_entry AS (
  SELECT pid, ts AS t0, d0, d1, d2
  FROM (
    SELECT pid, ts, d0, d1, d2 FROM src_lead_0
    UNION ALL
    SELECT pid, ts, d0, d1, d2 FROM src_lead_1
  )
  QUALIFY row_number() OVER (PARTITION BY pid ORDER BY ts, d0, d1, d2) = 1
),
-- the cohort: first entry in the period
cohort AS MATERIALIZED (
  SELECT *
  FROM first_entry
  WHERE d0 IS NOT NULL
    AND d1 IS NOT NULL
    AND d2 IS NOT NULL
    AND d1 IN (1, 3)
),
-- reached test_drive
reach_1 AS MATERIALIZED (
  SELECT c.pid, min(x.ts) AS t
  FROM cohort AS c
  JOIN (
    SELECT pid, ts FROM src_test_drive_0
    UNION ALL
    SELECT pid, ts FROM src_test_drive_1
  ) AS x ON x.pid = c.pid
  WHERE x.ts >= c.t0 AND x.ts <= c.t0 + INTERVAL 90 DAY
  GROUP BY c.pid
),
-- reached sale
reach_2 AS MATERIALIZED (
  SELECT c.pid, min(x.ts) AS t
  FROM cohort AS c
  JOIN reach_1 AS r1 ON r1.pid = c.pid
  JOIN (
    SELECT pid, ts FROM src_sale_0
    UNION ALL
    SELECT pid, ts FROM src_sale_1
  ) AS x ON x.pid = c.pid
  WHERE x.ts >= r1.t AND x.ts <= c.t0 + INTERVAL 90 DAY
  GROUP BY c.pid
),
-- aurora-financial.contracts: persons with more than 20 rows
src_contract_0_heavy AS MATERIALIZED (
  SELECT pid
  FROM aurora_financial__contracts
  GROUP BY pid
  HAVING count(*) > 20
),
-- aurora-financial.contracts: consented rows, at most 20 per person
src_contract_0 AS (
  SELECT *
  FROM (
    (
      SELECT pid, CAST(start_date AS DATE) AS day
      FROM aurora_financial__contracts
      WHERE pid NOT IN (SELECT pid FROM src_contract_0_heavy)
    )
    UNION ALL
    (
      SELECT pid, CAST(start_date AS DATE) AS day
      FROM aurora_financial__contracts
      WHERE pid IN (SELECT pid FROM src_contract_0_heavy)
      QUALIFY row_number() OVER (PARTITION BY pid ORDER BY start_date, end_date, product, model, amount_band, amount_eur) <= 20
    )
  )
  WHERE pid IN (SELECT pid FROM ok_aurora_financial)
),
-- sales a captive contract started around
financed AS MATERIALIZED (
  SELECT DISTINCT s.pid
  FROM reach_2 AS s
  JOIN (
    SELECT pid, day FROM src_contract_0
  ) AS f ON f.pid = s.pid
  WHERE f.day BETWEEN CAST(s.t AS DATE) - 7 AND CAST(s.t AS DATE) + 30
),
agg_reached AS (
  SELECT CASE WHEN c.pid IN (SELECT pid FROM financed) THEN 4 WHEN c.pid IN (SELECT pid FROM reach_2) THEN 3 WHEN c.pid IN (SELECT pid FROM reach_1) THEN 2 ELSE 1 END AS k0, c.d0 AS k1, count(*) AS n
  FROM cohort AS c
  GROUP BY k0, k1
)
SELECT * FROM (
  (SELECT 0 AS part_ord, 'reached' AS part, d0.o AS o0, d1.o AS o1, d0.v AS k0, d1.v AS k1, coalesce(a.n, 0) AS n
  FROM (VALUES (1, 'lead'), (2, 'test_drive'), (3, 'sale'), (4, 'financed')) AS d0(o, v)
  CROSS JOIN (VALUES (1, 'northside-dealers'), (2, 'lakeside-autos')) AS d1(o, v)
  LEFT JOIN agg_reached AS a ON a.k0 = d0.o AND a.k1 = d1.o)
)
ORDER BY part_ord, o0, o1
