WITH
-- aurora-financial: persons with an active grant for each of attribution, measurement
ok_aurora_financial AS MATERIALIZED (
  SELECT pid
  FROM aurora_financial__consent
  WHERE purpose IN ('attribution', 'measurement')
    AND granted_at <= TIMESTAMP '2026-11-15 12:00:00'
    AND (revoked_at IS NULL OR revoked_at > TIMESTAMP '2026-11-15 12:00:00')
  GROUP BY pid
  HAVING bit_or(CASE purpose WHEN 'attribution' THEN 1 WHEN 'measurement' THEN 2 END) = 3
),
-- aurora-motors: persons with an active grant for each of attribution, measurement
ok_aurora_motors AS MATERIALIZED (
  SELECT pid
  FROM aurora_motors__consent
  WHERE purpose IN ('attribution', 'measurement')
    AND granted_at <= TIMESTAMP '2026-11-15 12:00:00'
    AND (revoked_at IS NULL OR revoked_at > TIMESTAMP '2026-11-15 12:00:00')
  GROUP BY pid
  HAVING bit_or(CASE purpose WHEN 'attribution' THEN 1 WHEN 'measurement' THEN 2 END) = 3
),
-- lakeside-autos: persons with an active grant for each of attribution, measurement
ok_lakeside_autos AS MATERIALIZED (
  SELECT pid
  FROM lakeside_autos__consent
  WHERE purpose IN ('attribution', 'measurement')
    AND granted_at <= TIMESTAMP '2026-11-15 12:00:00'
    AND (revoked_at IS NULL OR revoked_at > TIMESTAMP '2026-11-15 12:00:00')
  GROUP BY pid
  HAVING bit_or(CASE purpose WHEN 'attribution' THEN 1 WHEN 'measurement' THEN 2 END) = 3
),
-- northside-dealers: persons with an active grant for each of attribution, measurement
ok_northside_dealers AS MATERIALIZED (
  SELECT pid
  FROM northside_dealers__consent
  WHERE purpose IN ('attribution', 'measurement')
    AND granted_at <= TIMESTAMP '2026-11-15 12:00:00'
    AND (revoked_at IS NULL OR revoked_at > TIMESTAMP '2026-11-15 12:00:00')
  GROUP BY pid
  HAVING bit_or(CASE purpose WHEN 'attribution' THEN 1 WHEN 'measurement' THEN 2 END) = 3
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
sale AS MATERIALIZED (
  SELECT pid, min(ts) AS sold_at
  FROM (
    SELECT pid, ts FROM src_sale_0
    UNION ALL
    SELECT pid, ts FROM src_sale_1
  )
  GROUP BY pid
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
financed AS MATERIALIZED (
  SELECT DISTINCT s.pid
  FROM sale AS s
  JOIN (
    SELECT pid, day FROM src_contract_0
  ) AS c ON c.pid = s.pid
  WHERE c.day BETWEEN CAST(s.sold_at AS DATE) - 7 AND CAST(s.sold_at AS DATE) + 30
),
-- aurora-motors.campaign_touches: persons with more than 20 rows
src_touch_0_heavy AS MATERIALIZED (
  SELECT pid
  FROM aurora_motors__campaign_touches
  GROUP BY pid
  HAVING count(*) > 20
),
-- aurora-motors.campaign_touches: consented rows, at most 20 per person
src_touch_0 AS (
  SELECT *
  FROM (
    (
      SELECT pid, CAST(touched_at AS TIMESTAMP) AS ts, CAST(campaign AS VARCHAR) AS campaign, CAST(channel AS VARCHAR) AS channel
      FROM aurora_motors__campaign_touches
      WHERE pid NOT IN (SELECT pid FROM src_touch_0_heavy)
    )
    UNION ALL
    (
      SELECT pid, CAST(touched_at AS TIMESTAMP) AS ts, CAST(campaign AS VARCHAR) AS campaign, CAST(channel AS VARCHAR) AS channel
      FROM aurora_motors__campaign_touches
      WHERE pid IN (SELECT pid FROM src_touch_0_heavy)
      QUALIFY row_number() OVER (PARTITION BY pid ORDER BY touched_at, campaign, channel) <= 20
    )
  )
  WHERE pid IN (SELECT pid FROM ok_aurora_motors)
),
touch AS MATERIALIZED (
  SELECT t.pid, list_position(['spring_launch', 'summer_drive', 'autumn_ev', 'winter_service', 'loyalty_upgrade', 'fleet_offer', 'ev_test_week', 'brand_always_on'], t.campaign) AS k, t.ts, s.sold_at,
    row_number() OVER (PARTITION BY t.pid ORDER BY t.ts DESC, t.campaign DESC, t.channel DESC) AS back
  FROM (
    SELECT pid, ts, campaign, channel FROM src_touch_0
  ) AS t
  JOIN sale AS s ON s.pid = t.pid
  WHERE t.ts BETWEEN s.sold_at - INTERVAL 30 DAY AND s.sold_at
    AND t.campaign IN ('spring_launch', 'summer_drive', 'autumn_ev', 'winter_service', 'loyalty_upgrade', 'fleet_offer', 'ev_test_week', 'brand_always_on')
  QUALIFY back <= 10
),
positioned AS (
  SELECT pid, k, ts, sold_at, count(*) OVER (PARTITION BY pid) AS n,
    count(*) OVER (PARTITION BY pid) - back + 1 AS i
  FROM touch
),
weighted AS (
  SELECT pid, k, i, n, 0 AS raw
  FROM positioned
),
credited AS MATERIALIZED (
  SELECT pid, k,
    CASE WHEN i = n THEN 1000 - sum(CASE WHEN i < n THEN raw ELSE 0 END) OVER (PARTITION BY pid) ELSE raw END AS milli
  FROM weighted
  UNION ALL
  SELECT pid, 9 AS k, 1000 AS milli
  FROM sale
  WHERE pid NOT IN (SELECT pid FROM touch)
),
agg_credit AS (
  SELECT k AS k0, CASE WHEN pid IN (SELECT pid FROM financed) THEN 2 ELSE 1 END AS k1, sum(milli) AS n
  FROM credited
  GROUP BY ALL
)
SELECT * FROM (
  (SELECT 0 AS part_ord, 'credit' AS part, d0.o AS o0, d1.o AS o1, d0.v AS k0, d1.v AS k1, coalesce(a.n, 0) AS n
  FROM (VALUES (1, 'spring_launch'), (2, 'summer_drive'), (3, 'autumn_ev'), (4, 'winter_service'), (5, 'loyalty_upgrade'), (6, 'fleet_offer'), (7, 'ev_test_week'), (8, 'brand_always_on'), (9, 'unattributed')) AS d0(o, v)
  CROSS JOIN (VALUES (1, 'not_financed'), (2, 'financed')) AS d1(o, v)
  LEFT JOIN agg_credit AS a ON a.k0 = d0.o AND a.k1 = d1.o)
)
ORDER BY part_ord, o0, o1
