"""The bounds each part declares are the bounds its SQL enforces: groups per person, rows per
person, clamping, full public domain, and add-one-extreme-person moves no part further than declared."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import engine_journeys as journeys
import pytest
from engine_kit import DOMAINS, Tables, at, make_scope, values_of

from cleanroom.aggregate import Bounds, ExactResult
from cleanroom.engine import compile_query, execute

MODELS = DOMAINS["model"]


def ws(pid: int, days: float, model: str) -> dict[str, Any]:
    return {"pid": pid, "session_at": at(days), "model": model, "channel": "search", "region": "north", "configurator_completed": True}


def sale(pid: int, days: float, price: int, model: str = "aster") -> dict[str, Any]:
    return {"pid": pid, "sold_at": at(days), "dealer_id": "NS-01", "model": model, "region": "north", "price_band": "<30k", "price_eur": price}


def test_stage_activity_counts_a_person_in_at_most_max_groups_cells() -> None:
    tables = Tables().consent_everyone([1])
    tables.add("aurora-motors.web_sessions", [ws(1, 10 - i, m) for i, m in enumerate(MODELS)])
    params = {"view": "activity", "dimensions": ["model"]}
    result = execute(compile_query("funnel", params, make_scope(max_groups_per_person=4)), tables.con)
    # Earliest first: fjord (day 5), ember, dune, cirrus.
    assert values_of(result, "persons") == {f"configurator|{m}": 1 for m in ("cirrus", "dune", "ember", "fjord")}
    assert result.part("persons").bounds.max_cells_per_person == 6 * 4


def test_the_cohort_funnel_counts_a_person_once_in_the_cell_of_its_first_visit() -> None:
    tables = Tables().consent_everyone([1])
    tables.add("aurora-motors.web_sessions", [ws(1, 10 - i, m) for i, m in enumerate(MODELS)] + [ws(1, 31 * i, "aster") for i in range(10)])
    for params in ({"dimensions": ["model"]}, {"dimensions": ["month"]}):
        result = execute(compile_query("funnel", params, make_scope(max_groups_per_person=4)), tables.con)
        assert sum(result.part("reached").values) == 1 and result.part("reached").bounds.max_cells_per_person == 1
    assert values_of(result, "reached") == {"configurator|2026-01": 1}


def test_rows_per_person_and_clamping_bound_a_sum() -> None:
    tables = Tables().consent_everyone([1, 2, 3])
    tables.add("northside-dealers.sales", [sale(1, i, 10_000) for i in range(30)])
    tables.add("northside-dealers.sales", [sale(2, 0, 10_000_000), sale(3, 0, -500)])
    sql = "SELECT COUNT(DISTINCT pid) AS buyers, SUM(price_eur) AS revenue FROM northside_dealers__sales"
    compiled = compile_query("sql", {"sql": sql}, make_scope(max_rows_per_person=5))
    result = execute(compiled, tables.con)
    # p1: 5 rows of 10k; p2 clamped to 100k; p3 clamped to 0.
    assert values_of(result, "revenue") == {"": 5 * 10_000 + 100_000}
    assert values_of(result, "buyers") == {"": 3}
    assert result.part("revenue").bounds == Bounds(kind="sum", max_cells_per_person=1, max_rows_per_cell=5, lower=0, upper=100_000)


def test_the_rows_bound_keeps_the_earliest_rows() -> None:
    tables = Tables().consent_everyone([1])
    tables.add("northside-dealers.sales", [sale(1, i, 1_000 * (i + 1)) for i in range(8)])
    sql = "SELECT SUM(price_eur) AS revenue FROM northside_dealers__sales"
    result = execute(compile_query("sql", {"sql": sql}, make_scope(max_rows_per_person=3)), tables.con)
    assert values_of(result, "revenue") == {"": 1_000 + 2_000 + 3_000}


def test_every_cell_of_the_public_domain_is_reported_even_on_empty_data() -> None:
    compiled = compile_query("funnel", {"dimensions": ["region", "model"]}, make_scope())
    result = execute(compiled, Tables().consent_everyone([]).con)
    reached = result.part("reached")
    # 5 stages (configurator, lead, test_drive, sale, financed) x 5 regions x 6 models.
    assert result.meta["stages"] == ["configurator", "lead", "test_drive", "sale", "financed"]
    assert len(reached.cells) == len(set(reached.cells)) == 5 * 5 * 6
    assert reached.cells[:2] == [("configurator", "north", "aster"), ("configurator", "north", "borealis")]
    assert set(reached.values) == {0}
    activity = execute(compile_query("funnel", {"view": "activity", "dimensions": ["region"]}, make_scope()), Tables().consent_everyone([]).con)
    assert activity.meta["stages_omitted"] == {s: "no dataset in scope has every requested dimension and filter" for s in ("application", "contract")}


# --- add one extreme person: no part may move further than its bounds ----------------------------


def extreme_rows(pid: int) -> dict[str, list[dict[str, Any]]]:
    """A person everywhere, many times, with every value of every dimension and huge measures."""
    start = date(2025, 11, 1)
    rows: dict[str, list[dict[str, Any]]] = {}
    for i in range(60):
        when = at(-60 + 5 * i)
        model, region = MODELS[i % 6], DOMAINS["region"][(i // 12) % 5]
        channel, campaign = DOMAINS["channel"][i % 6], DOMAINS["campaign"][i % 8]
        rows.setdefault("aurora-motors.web_sessions", []).append({"pid": pid, "session_at": when, "model": model, "channel": channel, "region": region, "configurator_completed": i % 2 == 0})
        rows.setdefault("aurora-motors.campaign_touches", []).append({"pid": pid, "touched_at": when, "campaign": campaign, "channel": channel})
        for dealer, prefix in (("northside-dealers", "NS"), ("lakeside-autos", "LA")):
            base = {"pid": pid, "dealer_id": f"{prefix}-01", "model": model, "region": region}
            rows.setdefault(f"{dealer}.leads", []).append({**base, "lead_at": when, "source": "web"})
            rows.setdefault(f"{dealer}.test_drives", []).append({**base, "drive_at": when})
            rows.setdefault(f"{dealer}.sales", []).append({**base, "sold_at": when, "price_band": "60k+", "price_eur": 10**9})
        rows.setdefault("aurora-financial.applications", []).append({"pid": pid, "applied_at": when, "product": "loan", "model": model, "amount_band": "50k+", "decision": "approved"})
        day = start + timedelta(days=7 * i)
        rows.setdefault("aurora-financial.contracts", []).append({"pid": pid, "start_date": day, "end_date": date(2027, 1, 1) + timedelta(days=3 * i), "product": DOMAINS["product"][i % 3], "model": model, "amount_band": DOMAINS["amount_band"][i % 4], "amount_eur": 10**9})
    return rows


def moved_within_bounds(before: ExactResult, after: ExactResult) -> None:
    for b, a in zip(before.parts, after.parts, strict=True):
        diffs = [abs(x - y) for x, y in zip(a.values, b.values, strict=True)]
        bounds = b.bounds
        touched = sum(1 for d in diffs if d)
        assert touched <= bounds.max_cells_per_person, f"{b.name}: {touched} cells moved, bound {bounds.max_cells_per_person}"
        if bounds.kind == "count":
            assert max(diffs) <= 1, f"{b.name}: a count moved by {max(diffs)}"
        elif bounds.kind == "credit":
            assert sum(diffs) <= (bounds.per_person_total or 0), f"{b.name}: credits moved by {sum(diffs)}"
        else:
            cap = bounds.max_rows_per_cell * max(abs(bounds.lower), abs(bounds.upper))
            assert max(diffs) <= cap, f"{b.name}: a sum moved by {max(diffs)} > {cap}"


QUERIES = [
    ("funnel", {}),
    ("funnel", {"dimensions": ["model", "month"]}),
    ("funnel", {"dimensions": ["region"], "filters": {"model": ["aster", "dune"]}}),
    ("funnel", {"entry": "lead", "dimensions": ["dealer_group"], "window_days": 365}),
    ("funnel", {"entry": "application", "dimensions": ["month"]}),
    ("funnel", {"view": "activity", "dimensions": ["model"]}),
    ("attribution", {"model": "linear"}),
    ("attribution", {"model": "time_decay", "by": "channel", "max_touches": 20}),
    ("attribution", {"model": "position_based", "lookback_days": 90}),
    ("overlap", {}),
    ("lifecycle", {"window_start": "2027-01-01", "window_end": "2027-12-31", "by": "amount_band"}),
    ("sql", {"sql": "SELECT model, COUNT(DISTINCT pid), SUM(price_eur) FROM lakeside_autos__sales GROUP BY model"}),
    ("sql", {"sql": "SELECT s.region, SUM(price_eur) AS revenue FROM northside_dealers__sales s JOIN aurora_motors__web_sessions USING (pid) GROUP BY s.region"}),
]


@pytest.mark.parametrize(("template", "params"), QUERIES, ids=[f"{t}-{i}" for i, (t, _) in enumerate(QUERIES)])
def test_adding_one_extreme_person_moves_each_part_within_its_bounds(template: str, params: dict[str, Any]) -> None:
    scope = make_scope(consent_purposes=["measurement", "attribution"], max_rows_per_person=5, max_groups_per_person=3)
    compiled = compile_query(template, params, scope)
    tables = journeys.load(Tables())
    before = execute(compiled, tables.con)
    for qualified, rows in extreme_rows(99).items():
        tables.add(qualified, rows)
    tables.consent_everyone([99])
    after = execute(compiled, tables.con)
    assert before.parts != after.parts, "the extreme person should change something"
    moved_within_bounds(before, after)
