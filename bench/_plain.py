"""The benchmark's baseline: each template's numbers as an analyst would hand-write them in DuckDB.

Same store, same views, same DuckDB settings as the release path, but none of the privacy
machinery: no consent filter, no per-person row bound, no groups-per-person bound, no full public
domain (groups that occur are returned, others are not), no noise, no budget, no audit. Each
statement answers the same question as its template (docs/explanation/metrics.md) in the most
direct SQL: distinct persons per stage, median days between first days at consecutive stages,
last-touch credit of each person's first sale, and so on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# view names as the store creates them (cleanroom.engine.view_name)
WEB, TOUCH = "aurora_motors__web_sessions", "aurora_motors__campaign_touches"
DEALERS = ("northside_dealers", "lakeside_autos")
APPS, CONTRACTS = "aurora_financial__applications", "aurora_financial__contracts"

# (stage ordinal, view, event time, model column present) in funnel order
STAGES: tuple[tuple[int, str, str], ...] = (
    (1, WEB, "session_at"),
    *((2, f"{d}__leads", "lead_at") for d in DEALERS),
    *((3, f"{d}__test_drives", "drive_at") for d in DEALERS),
    (4, APPS, "applied_at"),
    *((5, f"{d}__sales", "sold_at") for d in DEALERS),
    (6, CONTRACTS, "start_date"),
)


def _stage_rows(dim: str | None) -> str:
    """Every stage row as (s, pid, ts[, g]), one UNION ALL branch per dataset."""
    extra = f", {dim} AS g" if dim else ""
    return "\nUNION ALL ".join(f"SELECT {s} AS s, pid, CAST({ts} AS TIMESTAMP) AS ts{extra} FROM {view}" for s, view, ts in STAGES)


def funnel(dim: str | None, medians: bool = True) -> str:
    """Distinct persons per stage (per group), plus median days between consecutive first days."""
    group = dim and ("strftime(ts, '%Y-%m')" if dim == "month" else dim)
    rows = _stage_rows(group)
    counts = (
        "SELECT s, g, count(DISTINCT pid) AS persons, NULL AS median_days FROM stage_rows GROUP BY s, g"
        if dim else "SELECT s, NULL AS g, count(*) AS persons, NULL AS median_days FROM first_days GROUP BY s"
    )
    if not medians:
        counts = counts.replace("FROM first_days", "FROM (SELECT DISTINCT s, pid FROM stage_rows)")
        return f"WITH stage_rows AS ({rows})\n{counts}"
    return (
        f"WITH stage_rows AS ({rows}),\n"
        "first_days AS (SELECT s, pid, CAST(min(ts) AS DATE) AS day FROM stage_rows GROUP BY s, pid)\n"
        f"{counts}\nUNION ALL\n"
        "SELECT a.s, NULL, NULL, median(date_diff('day', a.day, c.day)) FROM first_days a\n"
        "JOIN first_days c ON c.pid = a.pid AND c.s = a.s + 1 WHERE c.day >= a.day GROUP BY a.s"
    )


def attribution_last_touch() -> str:
    """Each person's first sale credited to the last campaign touch within 30 days before it."""
    sales = " UNION ALL ".join(f"SELECT pid, sold_at FROM {d}__sales" for d in DEALERS)
    return (
        f"WITH sale AS (SELECT pid, min(sold_at) AS sold_at FROM ({sales}) GROUP BY pid),\n"
        "last_touch AS (\n"
        f"  SELECT t.pid, arg_max(t.campaign, t.touched_at) AS campaign FROM {TOUCH} t JOIN sale s USING (pid)\n"
        "  WHERE t.touched_at BETWEEN s.sold_at - INTERVAL 30 DAY AND s.sold_at GROUP BY t.pid),\n"
        f"financed AS (SELECT DISTINCT s.pid FROM sale s JOIN {CONTRACTS} c USING (pid)\n"
        "  WHERE c.start_date BETWEEN CAST(s.sold_at AS DATE) - 7 AND CAST(s.sold_at AS DATE) + 30)\n"
        "SELECT coalesce(l.campaign, 'unattributed') AS campaign, count(*) AS sales, count(f.pid) AS financed_sales\n"
        "FROM sale s LEFT JOIN last_touch l USING (pid) LEFT JOIN financed f USING (pid) GROUP BY 1"
    )


def overlap(a: str, b: str) -> str:
    """Distinct persons of two datasets and how many they share."""
    return (
        f"WITH a AS (SELECT DISTINCT pid FROM {a}), b AS (SELECT DISTINCT pid FROM {b})\n"
        "SELECT (SELECT count(*) FROM a) AS persons_a, (SELECT count(*) FROM b) AS persons_b,\n"
        "       (SELECT count(*) FROM a JOIN b USING (pid)) AS shared"
    )


def lifecycle(start: str, end: str, by: str) -> str:
    """Persons with a contract ending in [start, end] per segment; of those, seen since end - 180 days."""
    activity = [(WEB, "session_at")] + [(f"{d}__{x}", t) for d in DEALERS for x, t in (("leads", "lead_at"), ("test_drives", "drive_at"))]
    seen = " UNION ALL ".join(f"SELECT pid, {t} AS ts FROM {v}" for v, t in activity)
    return (
        f"WITH ending AS (SELECT pid, {by} AS seg, min(end_date) AS end_day FROM {CONTRACTS}\n"
        f"  WHERE end_date BETWEEN DATE '{start}' AND DATE '{end}' GROUP BY pid, {by}),\n"
        f"last_seen AS (SELECT pid, max(ts) AS ts FROM ({seen}) GROUP BY pid)\n"
        "SELECT e.seg, count(*) AS ending,\n"
        "  count(*) FILTER (WHERE l.ts >= CAST(e.end_day AS TIMESTAMP) - INTERVAL 180 DAY) AS seen_again\n"
        "FROM ending e LEFT JOIN last_seen l USING (pid) GROUP BY e.seg"
    )


@dataclass(frozen=True)
class Case:
    """One benchmarked question: the template call the gateway releases, and its plain SQL.

    Names: ``funnel`` overall (stage counts and median days), ``funnel/model`` and ``funnel/month``
    grouped, ``attribution`` last touch by campaign, ``overlap`` of web_sessions with Northside's
    leads, ``lifecycle`` contracts ending next quarter by product, ``funnel counts`` without the
    median days (``include_medians=false``).
    """

    name: str
    template: str
    params: dict[str, Any]
    plain_sql: str


OVERLAP_PAIR = ("aurora-motors.web_sessions", "northside-dealers.leads")
LIFECYCLE_WINDOW = ("2026-11-01", "2027-01-31")  # "contracts ending next quarter"


def cases() -> list[Case]:
    """The six templates of the brief, plus the counts-only funnel (no medians) for comparison."""
    start, end = LIFECYCLE_WINDOW
    return [
        Case("funnel", "funnel", {}, funnel(None)),
        Case("funnel/model", "funnel", {"dimensions": ["model"]}, funnel("model")),
        Case("funnel/month", "funnel", {"dimensions": ["month"]}, funnel("month")),
        Case("attribution", "attribution", {"model": "last_touch", "by": "campaign"}, attribution_last_touch()),
        Case("overlap", "overlap", {"datasets": list(OVERLAP_PAIR)}, overlap(WEB, "northside_dealers__leads")),
        Case("lifecycle", "lifecycle", {"window_start": start, "window_end": end, "by": "product"}, lifecycle(start, end, "product")),
        Case("funnel counts", "funnel", {"include_medians": False}, funnel(None, medians=False)),
    ]


__all__ = ["LIFECYCLE_WINDOW", "OVERLAP_PAIR", "Case", "cases"]
