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
      SELECT pid, CAST(session_at AS TIMESTAMP) AS ts, list_position(['aster', 'borealis', 'cirrus', 'dune', 'ember', 'fjord'], CAST(model AS VARCHAR)) AS d0
      FROM aurora_motors__web_sessions
      WHERE pid NOT IN (SELECT pid FROM src_configurator_0_heavy)
    )
    UNION ALL
    (
      SELECT pid, CAST(session_at AS TIMESTAMP) AS ts, list_position(['aster', 'borealis', 'cirrus', 'dune', 'ember', 'fjord'], CAST(model AS VARCHAR)) AS d0
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
      SELECT pid, CAST(lead_at AS TIMESTAMP) AS ts, list_position(['aster', 'borealis', 'cirrus', 'dune', 'ember', 'fjord'], CAST(model AS VARCHAR)) AS d0
      FROM lakeside_autos__leads
      WHERE pid NOT IN (SELECT pid FROM src_lead_0_heavy)
    )
    UNION ALL
    (
      SELECT pid, CAST(lead_at AS TIMESTAMP) AS ts, list_position(['aster', 'borealis', 'cirrus', 'dune', 'ember', 'fjord'], CAST(model AS VARCHAR)) AS d0
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
      SELECT pid, CAST(lead_at AS TIMESTAMP) AS ts, list_position(['aster', 'borealis', 'cirrus', 'dune', 'ember', 'fjord'], CAST(model AS VARCHAR)) AS d0
      FROM northside_dealers__leads
      WHERE pid NOT IN (SELECT pid FROM src_lead_1_heavy)
    )
    UNION ALL
    (
      SELECT pid, CAST(lead_at AS TIMESTAMP) AS ts, list_position(['aster', 'borealis', 'cirrus', 'dune', 'ember', 'fjord'], CAST(model AS VARCHAR)) AS d0
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
      SELECT pid, CAST(drive_at AS TIMESTAMP) AS ts, list_position(['aster', 'borealis', 'cirrus', 'dune', 'ember', 'fjord'], CAST(model AS VARCHAR)) AS d0
      FROM lakeside_autos__test_drives
      WHERE pid NOT IN (SELECT pid FROM src_test_drive_0_heavy)
    )
    UNION ALL
    (
      SELECT pid, CAST(drive_at AS TIMESTAMP) AS ts, list_position(['aster', 'borealis', 'cirrus', 'dune', 'ember', 'fjord'], CAST(model AS VARCHAR)) AS d0
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
      SELECT pid, CAST(drive_at AS TIMESTAMP) AS ts, list_position(['aster', 'borealis', 'cirrus', 'dune', 'ember', 'fjord'], CAST(model AS VARCHAR)) AS d0
      FROM northside_dealers__test_drives
      WHERE pid NOT IN (SELECT pid FROM src_test_drive_1_heavy)
    )
    UNION ALL
    (
      SELECT pid, CAST(drive_at AS TIMESTAMP) AS ts, list_position(['aster', 'borealis', 'cirrus', 'dune', 'ember', 'fjord'], CAST(model AS VARCHAR)) AS d0
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
      SELECT pid, CAST(applied_at AS TIMESTAMP) AS ts, list_position(['aster', 'borealis', 'cirrus', 'dune', 'ember', 'fjord'], CAST(model AS VARCHAR)) AS d0
      FROM aurora_financial__applications
      WHERE pid NOT IN (SELECT pid FROM src_application_0_heavy)
    )
    UNION ALL
    (
      SELECT pid, CAST(applied_at AS TIMESTAMP) AS ts, list_position(['aster', 'borealis', 'cirrus', 'dune', 'ember', 'fjord'], CAST(model AS VARCHAR)) AS d0
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
      SELECT pid, CAST(sold_at AS TIMESTAMP) AS ts, list_position(['aster', 'borealis', 'cirrus', 'dune', 'ember', 'fjord'], CAST(model AS VARCHAR)) AS d0
      FROM lakeside_autos__sales
      WHERE pid NOT IN (SELECT pid FROM src_sale_0_heavy)
    )
    UNION ALL
    (
      SELECT pid, CAST(sold_at AS TIMESTAMP) AS ts, list_position(['aster', 'borealis', 'cirrus', 'dune', 'ember', 'fjord'], CAST(model AS VARCHAR)) AS d0
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
      SELECT pid, CAST(sold_at AS TIMESTAMP) AS ts, list_position(['aster', 'borealis', 'cirrus', 'dune', 'ember', 'fjord'], CAST(model AS VARCHAR)) AS d0
      FROM northside_dealers__sales
      WHERE pid NOT IN (SELECT pid FROM src_sale_1_heavy)
    )
    UNION ALL
    (
      SELECT pid, CAST(sold_at AS TIMESTAMP) AS ts, list_position(['aster', 'borealis', 'cirrus', 'dune', 'ember', 'fjord'], CAST(model AS VARCHAR)) AS d0
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
      SELECT pid, CAST(start_date AS TIMESTAMP) AS ts, list_position(['aster', 'borealis', 'cirrus', 'dune', 'ember', 'fjord'], CAST(model AS VARCHAR)) AS d0
      FROM aurora_financial__contracts
      WHERE pid NOT IN (SELECT pid FROM src_contract_0_heavy)
    )
    UNION ALL
    (
      SELECT pid, CAST(start_date AS TIMESTAMP) AS ts, list_position(['aster', 'borealis', 'cirrus', 'dune', 'ember', 'fjord'], CAST(model AS VARCHAR)) AS d0
      FROM aurora_financial__contracts
      WHERE pid IN (SELECT pid FROM src_contract_0_heavy)
      QUALIFY row_number() OVER (PARTITION BY pid ORDER BY start_date, end_date, product, model, amount_band, amount_eur) <= 20
    )
  )
  WHERE pid IN (SELECT pid FROM ok_aurora_financial)
),
stage_rows AS (
  SELECT 1 AS s, pid, ts, d0 FROM src_configurator_0
  UNION ALL
  SELECT 2 AS s, pid, ts, d0 FROM src_lead_0
  UNION ALL
  SELECT 2 AS s, pid, ts, d0 FROM src_lead_1
  UNION ALL
  SELECT 3 AS s, pid, ts, d0 FROM src_test_drive_0
  UNION ALL
  SELECT 3 AS s, pid, ts, d0 FROM src_test_drive_1
  UNION ALL
  SELECT 4 AS s, pid, ts, d0 FROM src_application_0
  UNION ALL
  SELECT 5 AS s, pid, ts, d0 FROM src_sale_0
  UNION ALL
  SELECT 5 AS s, pid, ts, d0 FROM src_sale_1
  UNION ALL
  SELECT 6 AS s, pid, ts, d0 FROM src_contract_0
),
persons_cells AS (
  SELECT s, d0, pid
  FROM stage_rows
  WHERE s IN (1, 2, 3, 4, 5, 6) AND d0 IS NOT NULL
  GROUP BY s, d0, pid
  QUALIFY row_number() OVER (PARTITION BY s, pid ORDER BY min(ts), d0) <= 4
),
agg_persons AS (
  SELECT s AS k0, d0 AS k1, count(*) AS n
  FROM persons_cells
  GROUP BY s, d0
)
SELECT * FROM (
  (SELECT 0 AS part_ord, 'persons' AS part, d0.o AS o0, d1.o AS o1, d0.v AS k0, d1.v AS k1, coalesce(a.n, 0) AS n
  FROM (VALUES (1, 'configurator'), (2, 'lead'), (3, 'test_drive'), (4, 'application'), (5, 'sale'), (6, 'contract')) AS d0(o, v)
  CROSS JOIN (VALUES (1, 'aster'), (2, 'borealis'), (3, 'cirrus'), (4, 'dune'), (5, 'ember'), (6, 'fjord')) AS d1(o, v)
  LEFT JOIN agg_persons AS a ON a.k0 = d0.o AND a.k1 = d1.o)
)
ORDER BY part_ord, o0, o1
