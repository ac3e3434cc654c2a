"""Hand-built monthly reports for the rendering tests: realistic numbers, written out by hand.

Three cohort months of the journey funnel (the newest, 2026-09, is the latest whose 30-day
window closed by the end of the report month 2026-10), a funnel by model with suppressed cells (fjord's sale
and financed stages), attribution by campaign under two credit models (one suppressed campaign),
contracts ending with a suppressed seen-again count, a missing partner upload and a stale one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cleanroom.reports.model import Freshness, Report, Section

FUNNEL_COLUMNS = [
    "stage", "persons", "persons_ci95", "conversion", "conversion_ci95",
    "cumulative_conversion", "cumulative_conversion_ci95", "suppressed", "suppressed_values",
]  # fmt: skip
STAGES = ["configurator", "lead", "test_drive", "sale", "financed"]
MISSING = "lakeside-autos sales for 2026-10: no upload; Lakeside's October sales are not counted"


def _ci(value: float, half: float) -> list[float]:
    return [round(value - half, 4), round(value + half, 4)]


def _ratio(n: int | None, d: int | None, half: float) -> tuple[float | None, list[float | None] | None]:
    """n/d with the engine's conservative interval (numerator and denominator each ± half)."""
    if n is None or d is None or d <= 0:
        return None, None
    low = max(n - half, 0.0) / (d + half)
    high = min((n + half) / (d - half), 1.0) if d - half > 0 else 1.0  # the engine clips shares to [0, 1]
    return round(n / d, 4), [round(low, 4), round(high, 4) if high is not None else None]


def funnel_rows(dims: list[Any], persons: list[int | None], half: float = 31.0) -> list[list[Any]]:
    """Rows of one cohort from its persons per stage (None = suppressed)."""
    rows = []
    for i, p in enumerate(persons):
        conv = _ratio(p, persons[i - 1], half) if i else (None, None)
        cum = _ratio(p, persons[0], half) if i else (None, None)
        hidden = ["persons"] if p is None else []
        if i and conv[0] is None:
            hidden.append("conversion")  # a share of a suppressed count is suppressed, like the engine's
        if i and cum[0] is None:
            hidden.append("cumulative_conversion")
        rows.append([*dims, STAGES[i], p, _ci(p, half) if p is not None else None, conv[0], conv[1], cum[0], cum[1], p is None, hidden])
    return rows


def funnel(name: str, title: str, dims: list[str], rows: list[list[Any]], epsilon: str, qid: str) -> Section:
    return Section(
        name=name, title=title, template="funnel", params={"window_days": 30}, dimensions=dims,
        columns=[*dims, *FUNNEL_COLUMNS], rows=rows, epsilon=epsilon, query_id=qid,
        notes=["persons: distinct persons at the stage (noisy)."],
    )  # fmt: skip


def attribution(model: str, credits: dict[str, tuple[float | None, float | None]], total: tuple[int, int], qid: str) -> Section:
    rows: list[list[Any]] = []
    for name, (sales, financed) in credits.items():
        share = _ratio(financed, sales, 18.0) if sales and financed else (None, None)  # type: ignore[arg-type]
        rows.append([
            name, sales, _ci(sales, 18.0) if sales is not None else None, financed,
            _ci(financed, 18.0) if financed is not None else None, share[0], share[1], sales is None or financed is None,
        ])  # fmt: skip
    share = _ratio(total[1], total[0], 9.0)
    rows.append(["total", float(total[0]), _ci(total[0], 9.0), float(total[1]), _ci(total[1], 9.0), share[0], share[1], False])
    return Section(
        name=f"attribution_campaign_{model}", title=f"Sales credited by campaign ({model})", template="attribution",
        params={"model": model, "by": "campaign"}, dimensions=["campaign"],
        columns=["campaign", "credited_sales", "credited_sales_ci95", "credited_financed_sales", "credited_financed_sales_ci95",
                 "financed_share", "financed_share_ci95", "suppressed"],
        rows=rows, epsilon="1/4", query_id=qid,
    )  # fmt: skip


def brand_report(**changes: Any) -> Report:
    """The brand's report for October 2026 (every section), with one partner upload missing."""
    by_month = (
        funnel_rows(["2026-07"], [20589, 4839, 1974, 725, 427])
        + funnel_rows(["2026-08"], [21764, 5114, 1850, 618, 344])
        + funnel_rows(["2026-09"], [23137, 5683, 2053, 605, 335])
    )
    by_model = (
        funnel_rows(["aster"], [7614, 1824, 805, 280, 157])
        + funnel_rows(["borealis"], [6084, 1469, 619, 209, 120])
        + funnel_rows(["fjord"], [445, 101, 40, None, None])
    )
    last = {
        "spring_launch": (234.5, 156.1), "summer_drive": (402.1, 242.2), "autumn_ev": (399.9, 208.8),
        "fleet_offer": (None, None), "unattributed": (324.4, 161.8),
    }  # fmt: skip
    linear = {
        "spring_launch": (280.8, 162.8), "summer_drive": (338.7, 205.7), "autumn_ev": (356.7, 178.8),
        "fleet_offer": (25.8, None), "unattributed": (300.9, 165.0),
    }  # fmt: skip
    lifecycle = Section(
        name="contracts_ending_by_product", title="Contracts ending in the next quarter, by product", template="lifecycle",
        params={}, dimensions=["product"],
        columns=["product", "contracts_ending", "contracts_ending_ci95", "seen_again", "seen_again_ci95",
                 "seen_again_rate", "seen_again_rate_ci95", "suppressed"],
        rows=[
            ["loan", 1257, [1243.0, 1271.0], 455, [441.0, 469.0], 0.362, [0.3469, 0.3773], False],
            ["lease", 859, [845.0, 873.0], 447, [433.0, 461.0], 0.5204, [0.496, 0.5456], False],
            ["balloon", 68, [54.0, 82.0], None, None, None, None, True],
        ],
        epsilon="1/4", query_id="q-5be21f08",
    )  # fmt: skip
    fields: dict[str, Any] = {
        "collaboration": "aurora-2026",
        "month": "2026-10",
        "recipient": "aurora-motors",
        "recipient_role": "brand",
        "generated_at": datetime(2026, 11, 2, 6, 0, tzinfo=UTC),
        "policy_hash": "sha256:9c1e4f0b7d2a63e8a5b1c0f4e9d8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0",
        "sections": [
            funnel("funnel_by_month", "Journey funnel by cohort month", ["month"], by_month, "1/4", "q-7f3a9c10"),
            funnel("funnel_by_model", "Journey funnel by model", ["model"], by_model, "1/4", "q-2b81d4e7"),
            attribution("last_touch", last, (2151, 1209), "q-a0"),
            attribution("linear", linear, (2159, 1205), "q-a1"),
            lifecycle,
        ],
        "freshness": [
            Freshness(partner="aurora-motors", dataset="web_sessions", version=14,
                      uploaded_at=datetime(2026, 11, 1, 2, 10, tzinfo=UTC), status="ok"),
            Freshness(partner="lakeside-autos", dataset="sales", version=None, uploaded_at=None, status="missing",
                      detail="no upload for 2026-10"),
            Freshness(partner="aurora-financial", dataset="contracts", version=8,
                      uploaded_at=datetime(2026, 9, 30, 23, 0, tzinfo=UTC), status="stale", detail="last upload covers September 2026"),
        ],
        "missing": [MISSING],
        "withheld": [],
    }  # fmt: skip
    fields.update(changes)
    return Report(**fields)


def dealer_report() -> Report:
    """A dealer's copy: the funnel without the financed stage, no attribution, no lifecycle."""
    rows = (
        funnel_rows(["2026-08"], [21764, 5114, 1850, 618])
        + funnel_rows(["2026-09"], [23137, 5683, 2053, 605])
    )
    section = funnel("funnel_by_month", "Journey funnel by cohort month", ["month"], rows, "1/4", "q-d1")
    return brand_report(
        recipient="northside-dealers", recipient_role="dealer", sections=[section], missing=[],
        withheld=["attribution_campaign_last_touch", "contracts_ending_by_product"],
    )  # fmt: skip
