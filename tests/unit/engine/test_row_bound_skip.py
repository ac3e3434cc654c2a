"""The per-person row bound is left out only where the store recorded that it cannot bind.

``DatasetRef.max_rows_per_person`` is the most rows one person has in the stored version (counted
at publish time). At or below the policy's bound the bound is the identity, so the statement
without it must give exactly the aggregates of the bounded one, with the same declared bounds;
above it, or unknown, the bound stays and still holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import engine_journeys as journeys
import pytest
from engine_kit import Tables, at, make_scope, values_of

from cleanroom.aggregate import ExactResult
from cleanroom.engine import CompiledQuery, Scope, compile_query, execute

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p.stem for p in GOLDEN.glob("*.json"))
BOUND_MARKERS = ("_heavy",)  # the per-person row bound's CTE (groups and cells are bounded by QUALIFY too)


def recorded(tables: Tables, scope: Scope, override: dict[str, int | None] | None = None) -> Scope:
    """``scope`` with each dataset's maximum rows per person as the store would record it (from the data)."""
    datasets = {}
    for qualified, ref in scope.datasets.items():
        row = tables.con.execute(f"SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM {ref.view} GROUP BY pid)").fetchone()
        most = (override or {}).get(qualified, int(row[0]) if row else 0)
        datasets[qualified] = ref.model_copy(update={"max_rows_per_person": most})
    return scope.model_copy(update={"datasets": datasets})


def has_bound(compiled: CompiledQuery) -> bool:
    return any(m in compiled.sql for m in BOUND_MARKERS)


def cells(result: ExactResult) -> dict[str, dict[str, int]]:
    return {p.name: {"|".join(c): v for c, v in zip(p.cells, p.values, strict=True) if v} for p in result.parts}


def both(tables: Tables, template: str, params: dict[str, Any], scope: Scope,
         override: dict[str, int | None] | None = None) -> tuple[CompiledQuery, CompiledQuery]:
    return compile_query(template, params, scope), compile_query(template, params, recorded(tables, scope, override))


@pytest.mark.parametrize("name", CASES)
def test_golden_journeys_without_the_no_op_bound_give_identical_aggregates(name: str) -> None:
    case = json.loads((GOLDEN / f"{name}.json").read_text())
    tables = journeys.load(Tables())
    scope = make_scope(consent_purposes=case.get("consent_purposes", ["measurement"]))
    bounded, skipped = both(tables, case["template"], case["params"], scope)
    assert not has_bound(skipped)
    assert has_bound(bounded) == (case["template"] != "overlap")  # overlap counts persons: never row-bounded
    assert skipped.parts == bounded.parts  # the declared sensitivity is the policy's, unchanged
    exact_bounded, exact_skipped = execute(bounded, tables.con), execute(skipped, tables.con)
    assert cells(exact_skipped) == cells(exact_bounded) == case["expected"]
    assert [p.bounds for p in exact_skipped.parts] == [p.bounds for p in exact_bounded.parts]


def test_the_journeys_stay_below_the_bound_so_the_check_above_means_something() -> None:
    tables = journeys.load(Tables())
    scope = recorded(tables, make_scope())
    assert all(r.max_rows_per_person is not None and 1 <= r.max_rows_per_person <= scope.max_rows_per_person
               for q, r in scope.datasets.items() if not q.endswith(".consent"))


def sale(pid: int, days: float, price: int) -> dict[str, Any]:
    return {"pid": pid, "sold_at": at(days), "dealer_id": "NS-01", "model": "aster", "region": "north", "price_band": "<30k", "price_eur": price}


SUM_SQL = "SELECT SUM(price_eur) AS revenue FROM northside_dealers__sales"


def heavy_person() -> Tables:
    """Person 1 has 8 sales (1k, 2k, ... 8k), person 2 one sale of 50k: a bound of 3 binds on person 1."""
    tables = Tables().consent_everyone([1, 2])
    return tables.add("northside-dealers.sales", [sale(1, i, 1_000 * (i + 1)) for i in range(8)] + [sale(2, 0, 50_000)])


def test_a_person_above_the_bound_keeps_the_bound_and_it_holds() -> None:
    tables = heavy_person()
    bounded, recorded_eight = both(tables, "sql", {"sql": SUM_SQL}, make_scope(max_rows_per_person=3))
    assert recorded_eight.sql == bounded.sql and has_bound(recorded_eight)
    assert values_of(execute(recorded_eight, tables.con), "revenue") == {"": 1_000 + 2_000 + 3_000 + 50_000}


def test_at_exactly_the_bound_it_is_skipped_and_nothing_changes() -> None:
    tables = heavy_person()
    bounded, skipped = both(tables, "sql", {"sql": SUM_SQL}, make_scope(max_rows_per_person=8))
    assert has_bound(bounded) and not has_bound(skipped)
    assert values_of(execute(skipped, tables.con), "revenue") == values_of(execute(bounded, tables.con), "revenue") == {"": 36_000 + 50_000}


def test_an_unknown_maximum_keeps_the_bound() -> None:
    tables = heavy_person()
    scope = make_scope(max_rows_per_person=3)
    bounded, unknown = both(tables, "sql", {"sql": SUM_SQL}, scope, override={"northside-dealers.sales": None})
    assert unknown.sql == bounded.sql and has_bound(unknown)


def test_the_skip_is_per_dataset() -> None:
    """Funnel reads every dataset: only the one whose recorded maximum exceeds the bound keeps it."""
    tables = journeys.load(Tables())
    scope = make_scope(max_rows_per_person=3)
    over = {"northside-dealers.sales": 4}
    skipped = compile_query("funnel", {}, recorded(tables, scope, override=over))
    heavy = sorted(line.split(" AS")[0].strip() for line in skipped.sql.splitlines() if "_heavy AS" in line)
    assert len(heavy) == 1, heavy
    assert "northside-dealers.sales" in skipped.sql.split(heavy[0] + " AS")[0].splitlines()[-1]
