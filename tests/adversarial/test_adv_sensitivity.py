"""Sensitivity falsification (Casacuberta et al. 2022, "Widespread underestimation of sensitivity in
differentially private libraries"): for every template and for restricted SQL, add one extreme
person (Eve: 60 rows per dataset, more than the row bound of 50; every model, region, channel and
campaign; prices and amounts of 10^12; every consent purpose at every partner) and check that the
exact pre-noise aggregates of the real store move no further than each part declares to the noise
(L1 and L2 sensitivity, cells touched). The exact answers come from ``ExactOracle`` over each
world's own encrypted store: the same compiler and SQL the gateway runs.

Seeded bugs (clamp removed, groups-per-person bound skipped, rows-per-person bound skipped) are
patched into the engine inside a test, which then asserts that the same check reports them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from adversary import BRAND, FIN, NORTH, World, sensitivity_violations

from cleanroom.engine import builder, restricted_sql

CASES: list[tuple[str, str, dict[str, Any]]] = [
    (BRAND, "funnel", {}),
    (BRAND, "funnel", {"dimensions": ["model", "month"]}),
    (NORTH, "funnel", {"dimensions": ["region"], "filters": {"model": ["aster", "dune"]}}),
    (NORTH, "funnel", {"entry": "lead", "dimensions": ["dealer_group"]}),
    (FIN, "funnel", {"entry": "application", "dimensions": ["month"]}),
    (BRAND, "funnel", {"view": "activity", "dimensions": ["model"]}),
    (BRAND, "funnel", {"view": "activity", "dimensions": ["month", "region"]}),
    (BRAND, "attribution", {"model": "linear", "by": "campaign"}),
    (BRAND, "attribution", {"model": "last_touch", "by": "channel"}),
    (BRAND, "attribution", {"model": "position_based", "lookback_days": 90}),
    (BRAND, "overlap", {"datasets": "all"}),
    (NORTH, "overlap", {"datasets": ["northside-dealers.leads", "aurora-motors.web_sessions"]}),
    (BRAND, "lifecycle", {"window_start": "2027-01-01", "window_end": "2027-06-30", "by": "amount_band"}),
    (FIN, "lifecycle", {"window_start": "2027-01-01", "window_end": "2027-06-30", "by": "product"}),
    (BRAND, "sql", {"sql": "SELECT COUNT(DISTINCT pid) AS n FROM aurora_motors__web_sessions"}),
    (BRAND, "sql", {"sql": "SELECT model, COUNT(DISTINCT pid) AS buyers, SUM(price_eur) AS revenue FROM northside_dealers__sales GROUP BY model"}),
    (BRAND, "sql", {"sql": "SELECT channel, region, COUNT(DISTINCT pid) AS n FROM aurora_motors__web_sessions GROUP BY channel, region"}),
    (BRAND, "sql", {"sql": "SELECT s.region, SUM(price_eur) AS revenue FROM lakeside_autos__sales s "
                           "JOIN aurora_motors__web_sessions w USING (pid) GROUP BY s.region"}),
    (BRAND, "sql", {"sql": "SELECT product, SUM(amount_eur) AS financed FROM aurora_financial__contracts GROUP BY product"}),
    (BRAND, "sql", {"sql": "SELECT COUNT(DISTINCT pid) AS n, SUM(price_eur) AS revenue FROM northside_dealers__sales "
                           "JOIN aurora_motors__campaign_touches USING (pid) JOIN northside_dealers__leads USING (pid)"}),
]
SUM_CASE = (BRAND, "sql", {"sql": "SELECT SUM(price_eur) AS revenue FROM northside_dealers__sales"})
GROUPED_CASE = (BRAND, "sql", {"sql": "SELECT model, COUNT(DISTINCT pid) AS n FROM aurora_motors__web_sessions GROUP BY model"})


def _violations(worlds: dict[bool, World], case: tuple[str, str, dict[str, Any]]) -> list[str]:
    partner, template, params = case
    without = worlds[False].oracle.exact(partner, template, params)
    with_eve = worlds[True].oracle.exact(partner, template, params)
    assert [p.values for p in without.parts] != [p.values for p in with_eve.parts], "Eve must change something"
    return sensitivity_violations(without, with_eve)


@pytest.mark.parametrize("case", CASES, ids=[f"{t}-{i}" for i, (_, t, _) in enumerate(CASES)])
def test_one_extreme_person_moves_no_part_beyond_its_declared_sensitivity(worlds: dict[bool, World], case: Any) -> None:
    """Casacuberta et al. 2022: the declared sensitivity must hold for the worst person, not the typical one."""
    assert _violations(worlds, case) == []


def test_the_sum_bound_is_tight(worlds: dict[bool, World]) -> None:
    """Eve moves the clamped, row-bounded revenue by exactly 50 rows x 150,000: the bound is reached, not just respected."""
    partner, template, params = SUM_CASE
    moved = sum(worlds[True].oracle.exact(partner, template, params).part("revenue").values) - \
        sum(worlds[False].oracle.exact(partner, template, params).part("revenue").values)
    assert moved == 50 * 150_000


# --- seeded bugs -------------------------------------------------------------------------------------


def test_a_removed_clamp_is_caught(worlds: dict[bool, World], monkeypatch: pytest.MonkeyPatch) -> None:
    """Seeded bug: restricted SQL sums raw measures (no least/greatest)."""
    honest = restricted_sql._source_columns

    def unclamped(table: Any, domains: Any, scope: Any) -> list[str]:
        cols = honest(table, domains, scope)
        return [c if not c.startswith("least(") else f"{c.split('greatest(')[1].split(',')[0]} AS {c.rsplit(' AS ', 1)[1]}" for c in cols]

    monkeypatch.setattr(restricted_sql, "_source_columns", unclamped)
    found = _violations(worlds, SUM_CASE)
    assert any("revenue" in f and "L1" in f for f in found), found


def test_a_skipped_groups_per_person_bound_is_caught(worlds: dict[bool, World], monkeypatch: pytest.MonkeyPatch) -> None:
    """Seeded bug: a person may add to every group (Eve visits all six models; the policy allows 2 cells)."""
    honest = restricted_sql._cells
    monkeypatch.setattr(restricted_sql, "_cells", lambda b, g, tables, groups: honest(b, g, tables, 10**6))
    found = _violations(worlds, GROUPED_CASE)
    assert any("cells moved" in f or "L1" in f for f in found), found


def test_a_skipped_rows_per_person_bound_is_caught(worlds: dict[bool, World], monkeypatch: pytest.MonkeyPatch) -> None:
    """Seeded bug: neither the per-dataset row bound nor the per-cell row bound of a sum is applied (Eve has 60 rows)."""
    honest_sum = restricted_sql._sum_spec

    def unbounded(b: Any, measure: Any, g: Any, axes: Any, n_tables: int, bounds: Any, guard: str) -> Any:
        spec = honest_sum(b, measure, g, axes, n_tables, bounds.model_copy(update={"max_rows_per_cell": 10**6}), guard)
        return replace(spec, plan=spec.plan.model_copy(update={"bounds": bounds}))

    monkeypatch.setattr(builder.Builder, "bound_is_identity", lambda self, ref: True)
    monkeypatch.setattr(restricted_sql, "_sum_spec", unbounded)
    found = _violations(worlds, SUM_CASE)
    assert any("revenue" in f and "L1" in f for f in found), found
