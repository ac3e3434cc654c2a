"""The benchmark's question, written by hand for plain engines: shared by the baseline and the peers.

Pure Python with no third-party import at module level, so every peer's virtual environment can
import it (each brings its own DuckDB, pandas or Polars). The tables are the consented rows the
cleanroom engine reads, exported to Parquet by ``bench/_export.py`` and named like the engine's
views (``aurora_motors__web_sessions`` ...). Each statement answers the same question as its
template (docs/explanation/metrics.md); none has consent filtering (the rows are already
consented), per-person bounds, a full public domain or noise.

The headline question is the **cohort funnel by model** (template ``funnel``, ``dimensions:
[model]``): each person's first configurator visit is their entry; the cohort is the persons
whose entry falls in a month of the public month domain (2025-11 .. 2026-10) with a model in the
model domain; a person reaches lead / test_drive / sale with a row at or after the previous stage
and within 90 days of entry; a sale is financed when a contract starts 7 days before to 30 days
after it. Each cohort person lands in one cell (furthest stage, model).
"""

from __future__ import annotations

WEB, TOUCH = "aurora_motors__web_sessions", "aurora_motors__campaign_touches"
DEALERS = ("lakeside_autos", "northside_dealers")
CONTRACTS = "aurora_financial__contracts"
MODELS = ("aster", "borealis", "cirrus", "dune", "ember", "fjord")
MONTHS = ("2025-11", "2026-10")  # the policy's month domain, first and last
CAMPAIGNS = ("spring_launch", "summer_drive", "autumn_ev", "winter_service", "loyalty_upgrade", "fleet_offer", "ev_test_week", "brand_always_on")
PRODUCTS = ("loan", "lease", "balloon")  # domain order decides ties
WINDOW_DAYS = 90
FINANCE = (7, 30)
LOOKBACK_DAYS = 30
LIFECYCLE_WINDOW = ("2026-11-01", "2027-01-31")
SEEN_DAYS = 180
OVERLAP = (WEB, "northside_dealers__leads")
STAGES = ("configurator", "lead", "test_drive", "sale", "financed")

# the tables each question reads, and the consent purposes their rows were exported under
FUNNEL_TABLES = (WEB, *(f"{d}__{t}" for t in ("leads", "test_drives", "sales") for d in DEALERS), CONTRACTS)
TABLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "funnel": ("measurement", FUNNEL_TABLES),
    "attribution": ("attribution+measurement", (TOUCH, *(f"{d}__sales" for d in DEALERS), CONTRACTS)),
    "overlap": ("measurement", OVERLAP),
    "lifecycle": ("measurement", (CONTRACTS, WEB, *(f"{d}__{t}" for t in ("leads", "test_drives") for d in DEALERS))),
}


def _quoted(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def _union(table_suffix: str, ts: str) -> str:
    return " UNION ALL ".join(f"SELECT pid, CAST({ts} AS TIMESTAMP) AS ts FROM {d}__{table_suffix}" for d in DEALERS)


def funnel_persons_sql(by_model: bool = True) -> str:
    """One row per cohort person: ``pid``, ``model`` (NULL when not grouped) and the furthest ``stage``."""
    model_filter = f" AND model IN ({_quoted(MODELS)})" if by_model else ""
    model_col = "model" if by_model else "CAST(NULL AS VARCHAR) AS model"
    before, after = FINANCE
    return f"""
WITH first_visit AS (
  SELECT pid, CAST(session_at AS TIMESTAMP) AS t0, CAST(model AS VARCHAR) AS model FROM {WEB}
  QUALIFY row_number() OVER (PARTITION BY pid ORDER BY session_at, model) = 1),
cohort AS (
  SELECT pid, t0, {model_col} FROM first_visit
  WHERE strftime(t0, '%Y-%m') BETWEEN '{MONTHS[0]}' AND '{MONTHS[1]}'{model_filter}),
lead AS (
  SELECT c.pid, min(x.ts) AS t FROM cohort c JOIN ({_union('leads', 'lead_at')}) x USING (pid)
  WHERE x.ts >= c.t0 AND x.ts <= c.t0 + INTERVAL {WINDOW_DAYS} DAY GROUP BY c.pid),
drive AS (
  SELECT c.pid, min(x.ts) AS t FROM cohort c JOIN lead l USING (pid) JOIN ({_union('test_drives', 'drive_at')}) x USING (pid)
  WHERE x.ts >= l.t AND x.ts <= c.t0 + INTERVAL {WINDOW_DAYS} DAY GROUP BY c.pid),
sale AS (
  SELECT c.pid, min(x.ts) AS t FROM cohort c JOIN drive d USING (pid) JOIN ({_union('sales', 'sold_at')}) x USING (pid)
  WHERE x.ts >= d.t AND x.ts <= c.t0 + INTERVAL {WINDOW_DAYS} DAY GROUP BY c.pid),
financed AS (
  SELECT DISTINCT s.pid FROM sale s JOIN {CONTRACTS} f USING (pid)
  WHERE CAST(f.start_date AS DATE) BETWEEN CAST(s.t AS DATE) - {before} AND CAST(s.t AS DATE) + {after})
SELECT c.pid, c.model,
  CASE WHEN f.pid IS NOT NULL THEN 'financed' WHEN s.pid IS NOT NULL THEN 'sale' WHEN d.pid IS NOT NULL THEN 'test_drive'
       WHEN l.pid IS NOT NULL THEN 'lead' ELSE 'configurator' END AS stage
FROM cohort c LEFT JOIN lead l USING (pid) LEFT JOIN drive d USING (pid) LEFT JOIN sale s USING (pid) LEFT JOIN financed f USING (pid)
"""


def funnel_sql(by_model: bool = True) -> str:
    """Cohort persons per (furthest stage[, model])."""
    keys = "stage, model" if by_model else "stage"
    return f"WITH persons AS ({funnel_persons_sql(by_model)})\nSELECT {keys}, count(*) AS n FROM persons GROUP BY ALL"


def attribution_sql() -> str:
    """Each person's first sale, credited to the last in-domain touch within 30 days before it; financed or not."""
    before, after = FINANCE
    sales = " UNION ALL ".join(f"SELECT pid, CAST(sold_at AS TIMESTAMP) AS sold_at FROM {d}__sales" for d in DEALERS)
    return f"""
WITH sale AS (SELECT pid, min(sold_at) AS sold_at FROM ({sales}) GROUP BY pid),
last_touch AS (
  SELECT t.pid, t.campaign FROM {TOUCH} t JOIN sale s USING (pid)
  WHERE CAST(t.touched_at AS TIMESTAMP) BETWEEN s.sold_at - INTERVAL {LOOKBACK_DAYS} DAY AND s.sold_at
    AND t.campaign IN ({_quoted(CAMPAIGNS)})
  QUALIFY row_number() OVER (PARTITION BY t.pid ORDER BY t.touched_at DESC, t.campaign DESC, t.channel DESC) = 1),
financed AS (
  SELECT DISTINCT s.pid FROM sale s JOIN {CONTRACTS} c USING (pid)
  WHERE CAST(c.start_date AS DATE) BETWEEN CAST(s.sold_at AS DATE) - {before} AND CAST(s.sold_at AS DATE) + {after})
SELECT coalesce(l.campaign, 'unattributed') AS campaign, CASE WHEN f.pid IS NULL THEN 'not_financed' ELSE 'financed' END AS financing,
       count(*) AS sales
FROM sale s LEFT JOIN last_touch l USING (pid) LEFT JOIN financed f USING (pid) GROUP BY ALL
"""


def overlap_sql() -> str:
    """Distinct persons of A only, B only and both."""
    a, b = OVERLAP
    return f"""
WITH a AS (SELECT DISTINCT pid FROM {a}), b AS (SELECT DISTINCT pid FROM {b})
SELECT CASE WHEN b.pid IS NULL THEN 'a_only' WHEN a.pid IS NULL THEN 'b_only' ELSE 'both' END AS region, count(*) AS n
FROM a FULL JOIN b ON a.pid = b.pid GROUP BY 1
"""


def lifecycle_sql() -> str:
    """Persons by product of their earliest contract end in the window; seen again after end - 180 days or not."""
    start, end = LIFECYCLE_WINDOW
    activity = [(WEB, "session_at")] + [(f"{d}__{t}", ts) for t, ts in (("leads", "lead_at"), ("test_drives", "drive_at")) for d in DEALERS]
    seen = " UNION ALL ".join(f"SELECT pid, CAST({ts} AS TIMESTAMP) AS ts FROM {v}" for v, ts in activity)
    return f"""
WITH ending AS (
  SELECT pid, CAST(product AS VARCHAR) AS product, CAST(end_date AS DATE) AS end_day FROM {CONTRACTS}
  WHERE end_date BETWEEN DATE '{start}' AND DATE '{end}' AND product IN ({_quoted(PRODUCTS)})
  QUALIFY row_number() OVER (PARTITION BY pid ORDER BY end_date, list_position([{_quoted(PRODUCTS)}], CAST(product AS VARCHAR))) = 1),
seen AS (
  SELECT DISTINCT e.pid FROM ending e JOIN ({seen}) a USING (pid)
  WHERE a.ts >= CAST(e.end_day AS TIMESTAMP) - INTERVAL {SEEN_DAYS} DAY)
SELECT e.product, CASE WHEN s.pid IS NULL THEN 'not_seen' ELSE 'seen_again' END AS seen, count(*) AS n
FROM ending e LEFT JOIN seen s USING (pid) GROUP BY ALL
"""


# --- the same cohort in dataframe engines (peers that do not speak SQL) ---------------------------


def funnel_persons_polars(scan):  # type: ignore[no-untyped-def]
    """The cohort funnel by model as a Polars LazyFrame; ``scan(table)`` returns a LazyFrame of a table."""
    import polars as pl

    def union(suffix: str, ts: str):  # type: ignore[no-untyped-def]
        return pl.concat([scan(f"{d}__{suffix}").select("pid", pl.col(ts).cast(pl.Datetime("us")).alias("ts")) for d in DEALERS])

    first = (scan(WEB).select("pid", pl.col("session_at").cast(pl.Datetime("us")).alias("t0"), pl.col("model").cast(pl.String))
             .sort("pid", "t0", "model").unique(subset="pid", keep="first"))
    cohort = first.filter(pl.col("t0").dt.strftime("%Y-%m").is_between(pl.lit(MONTHS[0]), pl.lit(MONTHS[1])) & pl.col("model").is_in(list(MODELS)))
    end = pl.col("t0") + pl.duration(days=WINDOW_DAYS)

    def reach(prev, suffix: str, ts: str):  # type: ignore[no-untyped-def]
        base = cohort.select("pid", "t0")
        if prev is not None:
            base = base.join(prev.rename({"t": "tp"}), on="pid")
        else:
            base = base.with_columns(pl.col("t0").alias("tp"))
        return (base.join(union(suffix, ts), on="pid").filter((pl.col("ts") >= pl.col("tp")) & (pl.col("ts") <= end))
                .group_by("pid").agg(pl.col("ts").min().alias("t")))

    lead = reach(None, "leads", "lead_at")
    drive = reach(lead, "test_drives", "drive_at")
    sale = reach(drive, "sales", "sold_at")
    day = pl.col("t").cast(pl.Date)
    financed = (sale.join(scan(CONTRACTS).select("pid", pl.col("start_date").cast(pl.Date).alias("start")), on="pid")
                .filter(pl.col("start").is_between(day - pl.duration(days=FINANCE[0]), day + pl.duration(days=FINANCE[1])))
                .select("pid").unique())
    flags = [(financed, "financed"), (sale.select("pid"), "sale"), (drive.select("pid"), "test_drive"), (lead.select("pid"), "lead")]
    out = cohort.select("pid", "model")
    for frame, name in flags:
        out = out.join(frame.with_columns(pl.lit(True).alias(name)), on="pid", how="left")
    stage = pl.when(pl.col("financed")).then(pl.lit("financed"))
    for _, name in flags[1:]:
        stage = stage.when(pl.col(name)).then(pl.lit(name))
    return out.select("pid", "model", stage.otherwise(pl.lit("configurator")).alias("stage"))


def funnel_persons_pandas(read):  # type: ignore[no-untyped-def]
    """The cohort funnel by model as a pandas DataFrame; ``read(table)`` returns a DataFrame of a table."""
    import pandas as pd

    def union(suffix: str, ts: str):  # type: ignore[no-untyped-def]
        return pd.concat([read(f"{d}__{suffix}")[["pid", ts]].rename(columns={ts: "ts"}) for d in DEALERS], ignore_index=True)

    web = read(WEB)[["pid", "session_at", "model"]].rename(columns={"session_at": "t0"})
    web["model"] = web["model"].astype(str)
    first = web.sort_values(["pid", "t0", "model"], kind="stable").drop_duplicates("pid", keep="first")
    month = first["t0"].dt.strftime("%Y-%m")
    cohort = first[(month >= MONTHS[0]) & (month <= MONTHS[1]) & first["model"].isin(MODELS)]
    window = pd.Timedelta(days=WINDOW_DAYS)

    def reach(prev, suffix: str, ts: str):  # type: ignore[no-untyped-def]
        base = cohort[["pid", "t0"]]
        base = base.merge(prev.rename(columns={"t": "tp"}), on="pid") if prev is not None else base.assign(tp=base["t0"])
        x = base.merge(union(suffix, ts), on="pid")
        x = x[(x["ts"] >= x["tp"]) & (x["ts"] <= x["t0"] + window)]
        return x.groupby("pid", as_index=False)["ts"].min().rename(columns={"ts": "t"})

    lead = reach(None, "leads", "lead_at")
    drive = reach(lead, "test_drives", "drive_at")
    sale = reach(drive, "sales", "sold_at")
    c = read(CONTRACTS)[["pid", "start_date"]]
    f = sale.merge(c, on="pid")
    sale_day = f["t"].dt.normalize()
    start = pd.to_datetime(f["start_date"])
    f = f[(start >= sale_day - pd.Timedelta(days=FINANCE[0])) & (start <= sale_day + pd.Timedelta(days=FINANCE[1]))]
    out = cohort[["pid", "model"]].copy()
    out["stage"] = "configurator"
    for frame, name in ((lead, "lead"), (drive, "test_drive"), (sale, "sale"), (f, "financed")):
        out.loc[out["pid"].isin(frame["pid"]), "stage"] = name
    return out
