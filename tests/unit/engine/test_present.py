"""present(): shown numbers are sums and shares of noisy partition cells; suppressed stays null (never 0)."""

from __future__ import annotations

from typing import Any

import pytest

from cleanroom.aggregate import Cell, NoisyPart, NoisyResult
from cleanroom.engine import present
from cleanroom.engine.present import Est, share, total

STAGES = ["configurator", "lead", "test_drive", "sale", "financed"]


def part(name: str, cells: list[Cell], values: list[int | None], scale: float = 1.0, unit: int = 1, derived: bool = True,
         guard: str | None = None) -> NoisyPart:
    return NoisyPart(name=name, cells=cells, values=values, unit=unit, mechanism="laplace", scale=scale, sensitivity=1, epsilon="1/2",
                     ci95=3.0, derived=derived, guard=guard)


def result(template: str, dims: list[str], parts: list[NoisyPart], threshold: int = 20, **meta: Any) -> NoisyResult:
    return NoisyResult(template=template, dimensions=dims, parts=parts, epsilon="1/2", threshold=threshold, meta=meta)


def funnel(furthest: dict[str, list[int]], models: list[str], **meta: Any) -> NoisyResult:
    cells = [(s, m) for s in STAGES for m in models]
    values = [furthest[s][j] for s in STAGES for j in range(len(models))]
    meta = {"view": "cohort", "entry": "configurator", "stages": STAGES, "stages_omitted": {}, "window_days": 90, **meta}
    return result("funnel", ["model"], [part("reached", cells, values)], **meta)


def test_stage_counts_are_nested_sums_and_conversions_are_shares() -> None:
    # aster: 1000 only configurator, 300 stopped at lead, 100 at test drive, 60 sold not financed, 40 financed
    table = present(funnel({"configurator": [1000, 500], "lead": [300, 10], "test_drive": [100, 5], "sale": [60, 3], "financed": [40, 1]},
                           ["aster", "dune"]))
    rows = {(r["model"], r["stage"]): r for r in table.rows}
    assert [rows[("aster", s)]["persons"] for s in STAGES] == [1500, 500, 200, 100, 40]
    assert rows[("aster", "lead")]["conversion"] == pytest.approx(500 / 1500, abs=1e-4)
    assert rows[("aster", "sale")]["cumulative_conversion"] == pytest.approx(100 / 1500, abs=1e-4)
    assert rows[("aster", "financed")]["conversion"] == pytest.approx(0.4, abs=1e-4), "financed share of sales"
    assert rows[("aster", "configurator")]["conversion"] is None and rows[("aster", "configurator")]["suppressed_values"] == []
    for r in table.rows:
        for name in ("conversion", "cumulative_conversion"):
            if r[name] is not None:
                low, high = r[f"{name}_ci95"]
                assert 0.0 <= low <= r[name] <= high <= 1.0
    # dune: test_drive = 5 + 3 + 1 = 9 < 20 -> suppressed, and so is every rate built on it
    assert rows[("dune", "test_drive")]["persons"] is None and rows[("dune", "test_drive")]["suppressed"] is True
    assert rows[("dune", "test_drive")]["suppressed_values"] == ["persons", "conversion", "cumulative_conversion"]
    assert table.columns[:2] == ["model", "stage"] and table.columns[-1] == "suppressed_values"


def test_no_share_is_shown_over_a_suppressed_denominator() -> None:
    """aster: cohort -3 + 22 = 19 (suppressed), lead 2 + 20 = 22 (shown): lead / cohort would give the cohort back."""
    table = present(funnel({"configurator": [-3, 500], "lead": [2, 10], "test_drive": [20, 5], "sale": [0, 3], "financed": [0, 1]},
                           ["aster", "dune"]))
    rows = {(r["model"], r["stage"]): r for r in table.rows}
    assert rows[("aster", "configurator")]["persons"] is None, "cohort 19 < 20"
    assert rows[("aster", "lead")]["persons"] == 22
    assert rows[("aster", "lead")]["conversion"] is None and "conversion" in rows[("aster", "lead")]["suppressed_values"]
    assert rows[("aster", "test_drive")]["conversion"] is not None, "lead (22) is shown: test_drive / lead may be"
    assert rows[("aster", "test_drive")]["cumulative_conversion"] is None, "the cohort is suppressed"


def test_count_intervals_are_conditional_near_the_threshold() -> None:
    shown = total(part("p", [("a",)], [21], scale=4.0), [0], 20)
    far = total(part("p", [("a",)], [521], scale=4.0), [0], 20)
    assert shown.low is not None and far.low is not None and shown.high is not None and far.high is not None
    assert shown.low <= 21 <= shown.high and shown.low < 21 - (far.high - 521), "a value just above the threshold may be smaller than it looks"


def test_share_of_a_suppressed_count_is_suppressed() -> None:
    assert share(Est(None, None, None, why="suppressed"), Est(50, 45, 55, 4.0)).suppressed
    assert share(Est(20, 15, 25, 4.0), Est(-5, None, None, 4.0)).value == 1.0, "clipped to [0, 1]"
    assert share(Est(20, 15, 25, 4.0), Est(-25, None, None, 4.0)).value is None, "no share of a non-positive total"


def test_attribution_derives_totals_and_the_financed_share() -> None:
    cells = [(v, f) for v in ("spring_launch", "autumn_ev", "unattributed") for f in ("not_financed", "financed")]
    credit = part("credit", cells, [30_500, 25_000, 4_000, 1_000, 50_000, 25_000], scale=1000.0, unit=1000)
    rows = present(result("attribution", ["campaign"], [credit])).rows
    first, second, unattributed, grand = rows
    assert first["credited_sales"] == 55.5 and first["credited_financed_sales"] == 25.0
    assert first["financed_share"] == pytest.approx(25 / 55.5, abs=1e-4)
    assert second["credited_sales"] is None and second["suppressed"] is True and "credited_sales" in second["suppressed_values"]
    assert grand["campaign"] == "total" and grand["credited_sales"] == 135.5 and grand["credited_financed_sales"] == 51.0
    assert unattributed["credited_sales"] == 75.0


def test_overlap_rows_come_from_venn_cells() -> None:
    venn = part("venn", [("a.x", "b.y", r) for r in ("a_only", "b_only", "both")], [150, 50, 50])
    (row,) = present(result("overlap", [], [venn])).rows
    assert (row["persons_a"], row["persons_b"], row["shared"]) == (200, 100, 50)
    assert (row["match_rate_a"], row["match_rate_b"]) == (0.25, 0.5)


def test_lifecycle_rows_and_sql_rows() -> None:
    ending = part("ending", [(p, s) for p in ("loan", "lease") for s in ("not_seen", "seen_again")], [60, 20, 5, 3])
    rows = present(result("lifecycle", ["product"], [ending], window=["2026-11-01", "2027-01-31"])).rows
    assert rows[0]["contracts_ending"] == 80 and rows[0]["seen_again"] == 20 and rows[0]["seen_again_rate"] == 0.25
    assert rows[1]["contracts_ending"] is None and rows[1]["suppressed"] is True
    persons = part("persons", [("aster",)], [25], derived=False)
    revenue = part("revenue", [("aster",)], [None], derived=False, guard="persons")
    sql = present(result("sql", ["model"], [persons, revenue]))
    (row,) = sql.rows
    assert row["persons"] == 25 and row["revenue"] is None and row["suppressed_values"] == ["revenue"]


def test_activity_view_never_shows_conversion() -> None:
    persons = part("persons", [("configurator",), ("lead",)], [None, 300], derived=False)
    table = present(result("funnel", [], [persons], view="activity"))
    assert "conversion" not in table.columns
    assert table.rows[0]["persons"] is None and table.rows[0]["suppressed"] and table.rows[1]["persons"] == 300
