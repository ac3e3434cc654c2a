"""``Scope.consent_applied``: over views that already hold consented rows only (what the store's
consented tables give the release path), the engine omits its consent semi-joins and must return
exactly the same aggregates as the per-query consent filter over the full data."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import engine_journeys as journeys
import pytest
from engine_kit import NOW, Tables, make_scope

from cleanroom.aggregate import ExactResult
from cleanroom.engine import compile_query, execute
from cleanroom.engine.consent import active_persons_sql

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p.stem for p in GOLDEN.glob("*.json"))


def consented_copy(tables: Tables, purposes: list[str], now: datetime) -> duckdb.DuckDBPyConnection:
    """A fresh connection whose tables hold only consented rows, built with the engine's own consent SQL."""
    tables.con.execute("DROP SCHEMA IF EXISTS consented CASCADE")
    tables.con.execute("CREATE SCHEMA consented")
    for view in tables.columns:
        if view.endswith("__consent"):
            select = f"SELECT * FROM main.{view}"
        else:
            persons = active_persons_sql(f"main.{view.split('__')[0]}__consent", purposes, now)
            select = f"SELECT * FROM main.{view} WHERE pid IN (SELECT pid FROM ({persons}))"
        tables.con.execute(f"CREATE TABLE consented.{view} AS {select}")
    cur = tables.con.cursor()
    cur.execute("SET schema = 'consented'")
    return cur


def both_modes(tables: Tables, template: str, params: dict[str, Any], **scope: Any) -> tuple[ExactResult, ExactResult, Any]:
    """Exact results with the per-query filter and with consent applied; also the consent_applied statement."""
    filtered = compile_query(template, params, make_scope(**scope))
    applied = compile_query(template, params, make_scope(consent_applied=True, **scope))
    assert applied.datasets == filtered.datasets and applied.parts == filtered.parts
    probe = make_scope(**scope)
    con = consented_copy(tables, probe.consent_purposes, probe.now)
    try:
        return execute(filtered, tables.con), execute(applied, con), applied
    finally:
        con.close()


def cells(result: ExactResult) -> dict[str, dict[str, int]]:
    return {p.name: {"|".join(c): v for c, v in zip(p.cells, p.values, strict=True) if v} for p in result.parts}


@pytest.mark.parametrize("name", CASES)
def test_golden_journeys_give_identical_aggregates(name: str) -> None:
    case = json.loads((GOLDEN / f"{name}.json").read_text())
    tables = journeys.load(Tables())
    purposes = case.get("consent_purposes", ["measurement"])
    filtered, applied, statement = both_modes(tables, case["template"], case["params"], consent_purposes=purposes)
    assert cells(applied) == cells(filtered) == case["expected"]
    # No consent CTE and no read of a consent view: the views' rows are already consented.
    assert "__consent" not in statement.sql and not re.search(r"\bok_[a-z_]+\b", statement.sql)


def test_the_statement_really_relies_on_the_views() -> None:
    """Over the UNfiltered views the consent_applied statement counts the non-consenting persons too."""
    tables = journeys.load(Tables())
    applied = compile_query("funnel", {"dimensions": ["model"]}, make_scope(consent_applied=True))
    filtered = compile_query("funnel", {"dimensions": ["model"]}, make_scope())
    assert cells(execute(applied, tables.con)) != cells(execute(filtered, tables.con))


@pytest.mark.parametrize("now", [NOW, datetime(2026, 5, 31)], ids=["after-revocation", "before-revocation"])
def test_a_revocation_applies_identically(now: datetime) -> None:
    tables = journeys.load(Tables())
    filtered, applied, _ = both_modes(tables, "funnel", {"view": "activity", "dimensions": ["model"]}, now=now)
    assert cells(applied) == cells(filtered)
    assert ("lead|dune" in cells(applied)["persons"]) == (now < datetime(2026, 6, 1))


def test_a_grant_dated_later_applies_identically_once_it_passes() -> None:
    tables = journeys.load(Tables()).consent("aurora-motors", [8], granted=NOW + timedelta(days=1))
    for now, expected in ((NOW, 2), (NOW + timedelta(days=2), 3)):
        filtered, applied, _ = both_modes(tables, "funnel", {"view": "activity", "dimensions": ["model"]}, now=now)
        assert cells(applied) == cells(filtered)
        assert cells(applied)["persons"]["configurator|aster"] == expected


def test_every_purpose_is_needed_in_both_modes() -> None:
    tables = journeys.load(Tables())
    tables.con.execute("UPDATE aurora_motors__consent SET revoked_at = ? WHERE pid = 2 AND purpose = 'attribution'", [NOW - timedelta(days=1)])
    filtered, applied, _ = both_modes(tables, "attribution", {}, consent_purposes=["measurement", "attribution"])
    assert cells(applied) == cells(filtered)
    assert "autumn_ev" not in cells(applied)["credit"]


def test_restricted_sql_gives_identical_aggregates() -> None:
    tables = journeys.load(Tables())
    params = {"sql": "SELECT model, count(DISTINCT pid) FROM northside_dealers__leads GROUP BY model"}
    filtered, applied, _ = both_modes(tables, "sql", params)
    assert cells(applied) == cells(filtered) and cells(applied)


def test_a_consent_dataset_out_of_scope_is_still_an_error() -> None:
    datasets = {q: r for q, r in make_scope().datasets.items() if q != "lakeside-autos.consent"}
    with pytest.raises(Exception) as err:
        compile_query("funnel", {}, make_scope(datasets=datasets, consent_applied=True))
    assert getattr(err.value, "code", None) == "policy.dataset_not_in_scope"
