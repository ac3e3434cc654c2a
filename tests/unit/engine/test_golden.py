"""Golden SQL that also runs (after sqlglot's tests/fixtures/optimizer): each case in golden/ holds
template parameters and a hand-worked answer; golden/<case>.sql holds the compiled statement.

The test asserts that compiling gives exactly the stored SQL (a reviewable diff for every change
to what the engine sends to DuckDB) AND that running it over tests/unit/engine/engine_journeys.py gives
the hand-worked answer (every cell not listed must be 0).

Regenerate the SQL after an intended change, then review the diff:
    CLEANROOM_REGEN_GOLDEN=1 .venv/bin/python -m pytest tests/unit/engine/test_golden.py -q
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import engine_journeys as journeys
import pytest
from engine_kit import Tables, make_scope

from cleanroom.engine import compile_query, execute

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p.stem for p in GOLDEN.glob("*.json"))
REGEN = os.environ.get("CLEANROOM_REGEN_GOLDEN") == "1"


def load_case(name: str) -> dict[str, Any]:
    return json.loads((GOLDEN / f"{name}.json").read_text())


def compiled_sql(case: dict[str, Any]) -> str:
    scope = make_scope(consent_purposes=case.get("consent_purposes", ["measurement"]))
    return compile_query(case["template"], case["params"], scope).sql + "\n"


@pytest.fixture(scope="module")
def journey_tables() -> Tables:
    return journeys.load(Tables())


def test_there_are_cases_for_every_template() -> None:
    assert {load_case(c)["template"] for c in CASES} == {"funnel", "attribution", "overlap", "lifecycle", "sql"}


@pytest.mark.parametrize("name", CASES)
def test_compiles_to_the_stored_sql(name: str) -> None:
    case, path = load_case(name), GOLDEN / f"{name}.sql"
    sql = compiled_sql(case)
    if REGEN:
        path.write_text(sql)
    assert path.exists(), f"no golden SQL for {name}: run with CLEANROOM_REGEN_GOLDEN=1"
    assert sql == path.read_text(), f"{name}: compiled SQL differs from {path.name} (regenerate and review the diff)"


@pytest.mark.parametrize("name", CASES)
def test_stored_sql_gives_the_hand_worked_answer(name: str, journey_tables: Tables) -> None:
    case = load_case(name)
    scope = make_scope(consent_purposes=case.get("consent_purposes", ["measurement"]))
    compiled = compile_query(case["template"], case["params"], scope)
    # Run the stored statement itself: the fixture is the thing that must be right.
    stored = compiled.model_copy(update={"sql": (GOLDEN / f"{name}.sql").read_text()})
    result = execute(stored, journey_tables.con)
    assert [p.name for p in result.parts] == list(case["expected"]), "parts differ"
    for part in result.parts:
        want = case["expected"][part.name]
        unknown = set(want) - {"|".join(c) for c in part.cells}
        assert not unknown, f"{part.name}: expected cells outside the domain: {unknown}"
        got = {"|".join(c): v for c, v in zip(part.cells, part.values, strict=True) if v}
        assert got == want, f"{part.name}: {got} != {want}"
