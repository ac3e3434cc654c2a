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
-- aurora-motors.web_sessions: persons with more than 20 rows
src_configurator_0_heavy AS MATERIALIZED (
  SELECT pid
  FROM aurora_motors__web_sessions
  GROUP BY pid
  HAVING count(*) > 20
),
-- aurora-motors.web_sessions: consented rows, at most 20 per person
src_configurator_0 AS (
  SELECT *
  FROM (
    (
      SELECT pid, CAST(session_at AS TIMESTAMP) AS ts
      FROM aurora_motors__web_sessions
      WHERE pid NOT IN (SELECT pid FROM src_configurator_0_heavy)
    )
    UNION ALL
    (
      SELECT pid, CAST(session_at AS TIMESTAMP) AS ts
      FROM aurora_motors__web_sessions
      WHERE pid IN (SELECT pid FROM src_configurator_0_heavy)
      QUALIFY row_number() OVER (PARTITION BY pid ORDER BY session_at, model, channel, region, configurator_completed) <= 20
    )
  )
  WHERE pid IN (SELECT pid FROM ok_aurora_motors)
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
      SELECT pid, CAST(lead_at AS TIMESTAMP) AS ts
      FROM lakeside_autos__leads
      WHERE pid NOT IN (SELECT pid FROM src_lead_0_heavy)
    )
    UNION ALL
    (
      SELECT pid, CAST(lead_at AS TIMESTAMP) AS ts
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
      SELECT pid, CAST(lead_at AS TIMESTAMP) AS ts
      FROM northside_dealers__leads
      WHERE pid NOT IN (SELECT pid FROM src_lead_1_heavy)
    )
    UNION ALL
    (
      SELECT pid, CAST(lead_at AS TIMESTAMP) AS ts
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
-- aurora-financial.applications: persons with more than 20 rows
src_application_0_heavy AS MATERIALIZED (
  SELECT pid
  FROM aurora_financial__applications
  GROUP BY pid
  HAVING count(*) > 20
),
-- aurora-financial.applications: consented rows, at most 20 per person
src_application_0 AS (
  SELECT *
  FROM (
    (
      SELECT pid, CAST(applied_at AS TIMESTAMP) AS ts
      FROM aurora_financial__applications
      WHERE pid NOT IN (SELECT pid FROM src_application_0_heavy)
    )
    UNION ALL
    (
      SELECT pid, CAST(applied_at AS TIMESTAMP) AS ts
      FROM aurora_financial__applications
      WHERE pid IN (SELECT pid FROM src_application_0_heavy)
      QUALIFY row_number() OVER (PARTITION BY pid ORDER BY applied_at, product, model, amount_band, decision) <= 20
    )
  )
  WHERE pid IN (SELECT pid FROM ok_aurora_financial)
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
      SELECT pid, CAST(start_date AS TIMESTAMP) AS ts
      FROM aurora_financial__contracts
      WHERE pid NOT IN (SELECT pid FROM src_contract_0_heavy)
    )
    UNION ALL
    (
      SELECT pid, CAST(start_date AS TIMESTAMP) AS ts
      FROM aurora_financial__contracts
      WHERE pid IN (SELECT pid FROM src_contract_0_heavy)
      QUALIFY row_number() OVER (PARTITION BY pid ORDER BY start_date, end_date, product, model, amount_band, amount_eur) <= 20
    )
  )
  WHERE pid IN (SELECT pid FROM ok_aurora_financial)
),
stage_rows AS (
  SELECT 1 AS s, pid, ts FROM src_configurator_0
  UNION ALL
  SELECT 2 AS s, pid, ts FROM src_lead_0
  UNION ALL
  SELECT 2 AS s, pid, ts FROM src_lead_1
  UNION ALL
  SELECT 3 AS s, pid, ts FROM src_test_drive_0
  UNION ALL
  SELECT 3 AS s, pid, ts FROM src_test_drive_1
  UNION ALL
  SELECT 4 AS s, pid, ts FROM src_application_0
  UNION ALL
  SELECT 5 AS s, pid, ts FROM src_sale_0
  UNION ALL
  SELECT 5 AS s, pid, ts FROM src_sale_1
  UNION ALL
  SELECT 6 AS s, pid, ts FROM src_contract_0
),
first_days AS MATERIALIZED (
  SELECT s, pid, CAST(min(ts) AS DATE) AS day
  FROM stage_rows
  GROUP BY s, pid
),
agg_persons AS (
  SELECT s AS k0, count(*) AS n
  FROM first_days
  WHERE s IN (1, 2, 3, 4, 5, 6)
  GROUP BY s
),
gaps AS MATERIALIZED (
  SELECT list_position([1, 2, 3, 4, 5], a.s) AS k0, least(date_diff('day', a.day, c.day), 365) AS days
  FROM first_days AS a
  JOIN first_days AS c ON c.pid = a.pid AND c.s = a.s + 1
  WHERE a.s IN (1, 2, 3, 4, 5) AND c.day >= a.day
),
agg_days_persons AS (
  SELECT k0, count(*) AS n
  FROM gaps
  GROUP BY k0
),
agg_days AS (
  SELECT k0, CASE WHEN days <= 14 THEN days + 1 WHEN days <= 21 THEN 16 WHEN days <= 30 THEN 17 WHEN days <= 45 THEN 18 WHEN days <= 60 THEN 19 WHEN days <= 90 THEN 20 WHEN days <= 120 THEN 21 WHEN days <= 180 THEN 22 ELSE 23 END AS k1, count(*) AS n
  FROM gaps
  GROUP BY ALL
)
SELECT * FROM (
  (SELECT 0 AS part_ord, 'persons' AS part, d0.o AS o0, 0 AS o1, d0.v AS k0, CAST(NULL AS VARCHAR) AS k1, coalesce(a.n, 0) AS n
  FROM (VALUES (1, 'configurator'), (2, 'lead'), (3, 'test_drive'), (4, 'application'), (5, 'sale'), (6, 'contract')) AS d0(o, v)
  LEFT JOIN agg_persons AS a ON a.k0 = d0.o)
  UNION ALL
  (SELECT 1 AS part_ord, 'days_persons' AS part, d0.o AS o0, 0 AS o1, d0.v AS k0, CAST(NULL AS VARCHAR) AS k1, coalesce(a.n, 0) AS n
  FROM (VALUES (1, 'configurator->lead'), (2, 'lead->test_drive'), (3, 'test_drive->application'), (4, 'application->sale'), (5, 'sale->contract')) AS d0(o, v)
  LEFT JOIN agg_days_persons AS a ON a.k0 = d0.o)
  UNION ALL
  (SELECT 2 AS part_ord, 'days' AS part, d0.o AS o0, d1.o AS o1, d0.v AS k0, d1.v AS k1, coalesce(a.n, 0) AS n
  FROM (VALUES (1, 'configurator->lead'), (2, 'lead->test_drive'), (3, 'test_drive->application'), (4, 'application->sale'), (5, 'sale->contract')) AS d0(o, v)
  CROSS JOIN (VALUES (1, '0'), (2, '1'), (3, '2'), (4, '3'), (5, '4'), (6, '5'), (7, '6'), (8, '7'), (9, '8'), (10, '9'), (11, '10'), (12, '11'), (13, '12'), (14, '13'), (15, '14'), (16, '15-21'), (17, '22-30'), (18, '31-45'), (19, '46-60'), (20, '61-90'), (21, '91-120'), (22, '121-180'), (23, '181-365')) AS d1(o, v)
  LEFT JOIN agg_days AS a ON a.k0 = d0.o AND a.k1 = d1.o)
)
ORDER BY part_ord, o0, o1
