"""present(): post-processing of noisy values only; suppressed stays null (never 0)."""

from __future__ import annotations

from typing import Any

import pytest

from cleanroom.aggregate import Cell, NoisyPart, NoisyResult
from cleanroom.engine import present
from cleanroom.engine.present import Est, median_from_histogram, ratio
from cleanroom.engine.templates.funnel import BUCKET_LABELS


def part(name: str, cells: list[Cell], values: list[int | None], ci95: float = 0.0, unit: int = 1) -> NoisyPart:
    return NoisyPart(name=name, cells=cells, values=values, unit=unit, mechanism="discrete_laplace", scale=1.0, sensitivity=1, epsilon="1/2", ci95=ci95)


def result(template: str, dims: list[str], parts: list[NoisyPart], **meta: Any) -> NoisyResult:
    return NoisyResult(template=template, dimensions=dims, parts=parts, epsilon="1", threshold=10, meta=meta)


def days_part(pairs: dict[str, dict[str, int]], ci95: float = 0.0) -> NoisyPart:
    cells = [(p, b) for p in pairs for b in BUCKET_LABELS]
    return part("days", cells, [pairs[p].get(b, 0) for p, b in cells], ci95)


def test_ratio_interval_combines_both_intervals() -> None:
    r = ratio(Est(50, 45, 55), Est(100, 90, 110))
    assert r.value == 0.5 and r.low == pytest.approx(45 / 110) and r.high == pytest.approx(55 / 90)
    assert ratio(Est(50, 45, 55), Est(4, -2, 10)).high is None
    assert ratio(Est(None, None, None), Est(100, 90, 110)).value is None
    assert ratio(Est(5, 0, 10), Est(0, -3, 3)).value is None


def test_median_of_an_exact_histogram_and_its_interval() -> None:
    days = days_part({"configurator->lead": {"3": 10, "5": 10}})
    m = median_from_histogram(days, 0)
    assert (m.value, m.low, m.high) == (3, 3, 5)


def test_median_interpolates_inside_a_multi_day_bucket_and_widens_with_noise() -> None:
    days = days_part({"a->b": {"2": 10, "22-30": 30}}, ci95=0.0)
    exact = median_from_histogram(days, 0)
    assert exact.value == pytest.approx(22 + 8 * (20 - 10) / 30) and (exact.low, exact.high) == (22, 30)
    # Every empty bucket might hold up to 15 persons: the median could lie anywhere.
    noisy = median_from_histogram(days_part({"a->b": {"2": 10, "22-30": 30}}, ci95=15.0), 0)
    assert (noisy.low, noisy.high) == (0, 365)


def test_median_is_null_when_the_histogram_is_suppressed() -> None:
    cells = [("a->b", b) for b in BUCKET_LABELS]
    suppressed = part("days", cells, [None] * len(cells))
    assert median_from_histogram(suppressed, 0).value is None


def test_funnel_rows() -> None:
    stages = ["configurator", "lead", "test_drive"]
    persons = part("persons", [(s, m) for s in stages for m in ("aster", "dune")], [100, 40, 50, None, 20, 30], ci95=5.0)
    days = days_part({"configurator->lead": {"4": 20}, "lead->test_drive": {"1": 10}})
    table = present(result("funnel", ["model"], [persons, part("days_persons", [("configurator->lead",), ("lead->test_drive",)], [20, 10]), days], stages_omitted=["contract"]))
    rows = {(r["stage"], r["model"]): r for r in table.rows}
    assert rows[("lead", "aster")]["conversion"] == 0.5
    assert rows[("lead", "aster")]["conversion_ci95"] == [round(45 / 105, 4), round(55 / 95, 4)]
    assert rows[("lead", "aster")]["median_days"] == 4
    assert rows[("configurator", "aster")]["conversion"] is None and rows[("configurator", "aster")]["median_days"] is None
    dune_lead = rows[("lead", "dune")]
    assert dune_lead["persons"] is None and dune_lead["persons_ci95"] is None and dune_lead["suppressed"] is True
    assert rows[("test_drive", "dune")]["conversion"] is None, "no rate from a suppressed count"
    assert rows[("test_drive", "dune")]["suppressed"] is False
    assert rows[("configurator", "aster")]["persons_ci95"] == [95, 105]
    assert table.columns[:2] == ["stage", "model"] and any("contract" in n for n in table.notes)


def test_attribution_rows_are_in_sales_units_with_a_total() -> None:
    cells = [("spring_launch",), ("autumn_ev",), ("unattributed",)]
    credit = part("credit", cells, [1500, None, 2000], ci95=600.0, unit=1000)
    financed = part("credit_financed", cells, [500, None, 0], ci95=600.0, unit=1000)
    sales = part("sales", [("sales",), ("financed_sales",)], [35, 12], ci95=3.0)
    table = present(result("attribution", ["campaign"], [credit, financed, sales]))
    first, second, _, total = table.rows
    assert first == {"campaign": "spring_launch", "credited_sales": 1.5, "credited_sales_ci95": [0.9, 2.1],
                     "credited_financed_sales": 0.5, "credited_financed_sales_ci95": [-0.1, 1.1], "suppressed": False}
    assert second["credited_sales"] is None and second["suppressed"] is True
    assert total["campaign"] == "total" and total["credited_sales"] == 35 and total["credited_financed_sales_ci95"] == [9, 15]


def test_overlap_rows_have_match_rates() -> None:
    persons = part("persons", [("a.x",), ("b.y",)], [200, 100], ci95=0.0)
    shared = part("shared", [("a.x", "b.y")], [50], ci95=0.0)
    (row,) = present(result("overlap", [], [persons, shared])).rows
    assert (row["persons_a"], row["persons_b"], row["shared"]) == (200, 100, 50)
    assert (row["match_rate_a"], row["match_rate_b"]) == (0.25, 0.5)


def test_lifecycle_and_sql_rows() -> None:
    ending = part("ending", [("loan",), ("lease",)], [80, None])
    seen = part("seen_again", [("loan",), ("lease",)], [20, 3])
    rows = present(result("lifecycle", ["product"], [ending, seen])).rows
    assert rows[0]["seen_again_rate"] == 0.25 and rows[1]["contracts_ending"] is None and rows[1]["suppressed"] is True
    sql = present(result("sql", ["model"], [part("persons", [("aster",)], [12]), part("revenue", [("aster",)], [None])]))
    assert sql.rows == [{"model": "aster", "persons": 12, "persons_ci95": [12, 12], "revenue": None, "revenue_ci95": None, "suppressed": True}]
    assert sql.columns == ["model", "persons", "persons_ci95", "revenue", "revenue_ci95", "suppressed"]


def test_no_presented_value_is_zero_where_the_release_was_suppressed() -> None:
    persons = part("persons", [("configurator",), ("lead",)], [None, None])
    table = present(result("funnel", [], [persons]))
    assert all(r["persons"] is None and r["suppressed"] for r in table.rows)
