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
      SELECT pid, CAST(end_date AS DATE) AS end_day, list_position(['loan', 'lease', 'balloon'], CAST(product AS VARCHAR)) AS seg
      FROM aurora_financial__contracts
      WHERE pid NOT IN (SELECT pid FROM src_contract_0_heavy)
    )
    UNION ALL
    (
      SELECT pid, CAST(end_date AS DATE) AS end_day, list_position(['loan', 'lease', 'balloon'], CAST(product AS VARCHAR)) AS seg
      FROM aurora_financial__contracts
      WHERE pid IN (SELECT pid FROM src_contract_0_heavy)
      QUALIFY row_number() OVER (PARTITION BY pid ORDER BY start_date, end_date, product, model, amount_band, amount_eur) <= 20
    )
  )
  WHERE pid IN (SELECT pid FROM ok_aurora_financial)
),
ending AS MATERIALIZED (
  SELECT pid, seg AS k0, end_day
  FROM (
    SELECT pid, end_day, seg FROM src_contract_0
  )
  WHERE end_day BETWEEN DATE '2027-01-01' AND DATE '2027-06-30'
    AND seg IS NOT NULL
  QUALIFY row_number() OVER (PARTITION BY pid ORDER BY end_day, seg) = 1
),
-- aurora-motors.web_sessions: persons with more than 20 rows
src_activity_0_heavy AS MATERIALIZED (
  SELECT pid
  FROM aurora_motors__web_sessions
  GROUP BY pid
  HAVING count(*) > 20
),
-- aurora-motors.web_sessions: consented rows, at most 20 per person
src_activity_0 AS (
  SELECT *
  FROM (
    (
      SELECT pid, CAST(session_at AS TIMESTAMP) AS ts
      FROM aurora_motors__web_sessions
      WHERE pid NOT IN (SELECT pid FROM src_activity_0_heavy)
    )
    UNION ALL
    (
      SELECT pid, CAST(session_at AS TIMESTAMP) AS ts
      FROM aurora_motors__web_sessions
      WHERE pid IN (SELECT pid FROM src_activity_0_heavy)
      QUALIFY row_number() OVER (PARTITION BY pid ORDER BY session_at, model, channel, region, configurator_completed) <= 20
    )
  )
  WHERE pid IN (SELECT pid FROM ok_aurora_motors)
),
-- lakeside-autos.leads: persons with more than 20 rows
src_activity_1_heavy AS MATERIALIZED (
  SELECT pid
  FROM lakeside_autos__leads
  GROUP BY pid
  HAVING count(*) > 20
),
-- lakeside-autos.leads: consented rows, at most 20 per person
src_activity_1 AS (
  SELECT *
  FROM (
    (
      SELECT pid, CAST(lead_at AS TIMESTAMP) AS ts
      FROM lakeside_autos__leads
      WHERE pid NOT IN (SELECT pid FROM src_activity_1_heavy)
    )
    UNION ALL
    (
      SELECT pid, CAST(lead_at AS TIMESTAMP) AS ts
      FROM lakeside_autos__leads
      WHERE pid IN (SELECT pid FROM src_activity_1_heavy)
      QUALIFY row_number() OVER (PARTITION BY pid ORDER BY lead_at, dealer_id, model, region, source) <= 20
    )
  )
  WHERE pid IN (SELECT pid FROM ok_lakeside_autos)
),
-- northside-dealers.leads: persons with more than 20 rows
src_activity_2_heavy AS MATERIALIZED (
  SELECT pid
  FROM northside_dealers__leads
  GROUP BY pid
  HAVING count(*) > 20
),
-- northside-dealers.leads: consented rows, at most 20 per person
src_activity_2 AS (
  SELECT *
  FROM (
    (
      SELECT pid, CAST(lead_at AS TIMESTAMP) AS ts
      FROM northside_dealers__leads
      WHERE pid NOT IN (SELECT pid FROM src_activity_2_heavy)
    )
    UNION ALL
    (
      SELECT pid, CAST(lead_at AS TIMESTAMP) AS ts
      FROM northside_dealers__leads
      WHERE pid IN (SELECT pid FROM src_activity_2_heavy)
      QUALIFY row_number() OVER (PARTITION BY pid ORDER BY lead_at, dealer_id, model, region, source) <= 20
    )
  )
  WHERE pid IN (SELECT pid FROM ok_northside_dealers)
),
-- lakeside-autos.test_drives: persons with more than 20 rows
src_activity_3_heavy AS MATERIALIZED (
  SELECT pid
  FROM lakeside_autos__test_drives
  GROUP BY pid
  HAVING count(*) > 20
),
-- lakeside-autos.test_drives: consented rows, at most 20 per person
src_activity_3 AS (
  SELECT *
  FROM (
    (
      SELECT pid, CAST(drive_at AS TIMESTAMP) AS ts
      FROM lakeside_autos__test_drives
      WHERE pid NOT IN (SELECT pid FROM src_activity_3_heavy)
    )
    UNION ALL
    (
      SELECT pid, CAST(drive_at AS TIMESTAMP) AS ts
      FROM lakeside_autos__test_drives
      WHERE pid IN (SELECT pid FROM src_activity_3_heavy)
      QUALIFY row_number() OVER (PARTITION BY pid ORDER BY drive_at, dealer_id, model, region) <= 20
    )
  )
  WHERE pid IN (SELECT pid FROM ok_lakeside_autos)
),
-- northside-dealers.test_drives: persons with more than 20 rows
src_activity_4_heavy AS MATERIALIZED (
  SELECT pid
  FROM northside_dealers__test_drives
  GROUP BY pid
  HAVING count(*) > 20
),
-- northside-dealers.test_drives: consented rows, at most 20 per person
src_activity_4 AS (
  SELECT *
  FROM (
    (
      SELECT pid, CAST(drive_at AS TIMESTAMP) AS ts
      FROM northside_dealers__test_drives
      WHERE pid NOT IN (SELECT pid FROM src_activity_4_heavy)
    )
    UNION ALL
    (
      SELECT pid, CAST(drive_at AS TIMESTAMP) AS ts
      FROM northside_dealers__test_drives
      WHERE pid IN (SELECT pid FROM src_activity_4_heavy)
      QUALIFY row_number() OVER (PARTITION BY pid ORDER BY drive_at, dealer_id, model, region) <= 20
    )
  )
  WHERE pid IN (SELECT pid FROM ok_northside_dealers)
),
last_seen AS (
  SELECT pid, max(ts) AS ts
  FROM (
    SELECT pid, ts FROM src_activity_0
    UNION ALL
    SELECT pid, ts FROM src_activity_1
    UNION ALL
    SELECT pid, ts FROM src_activity_2
    UNION ALL
    SELECT pid, ts FROM src_activity_3
    UNION ALL
    SELECT pid, ts FROM src_activity_4
  )
  GROUP BY pid
),
seen_again AS (
  SELECT e.pid
  FROM ending AS e
  JOIN last_seen AS l ON l.pid = e.pid
  WHERE l.ts >= CAST(e.end_day AS TIMESTAMP) - INTERVAL 180 DAY
),
agg_ending AS (
  SELECT k0, 1 + CASE WHEN pid IN (SELECT pid FROM seen_again) THEN 1 ELSE 0 END AS k1, count(*) AS n
  FROM ending
  GROUP BY ALL
)
SELECT * FROM (
  (SELECT 0 AS part_ord, 'ending' AS part, d0.o AS o0, d1.o AS o1, d0.v AS k0, d1.v AS k1, coalesce(a.n, 0) AS n
  FROM (VALUES (1, 'loan'), (2, 'lease'), (3, 'balloon')) AS d0(o, v)
  CROSS JOIN (VALUES (1, 'not_seen'), (2, 'seen_again')) AS d1(o, v)
  LEFT JOIN agg_ending AS a ON a.k0 = d0.o AND a.k1 = d1.o)
)
ORDER BY part_ord, o0, o1
