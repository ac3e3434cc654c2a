"""View names, the scope contract, the execute() invariant and the public surface of cleanroom.engine."""

from __future__ import annotations

import pytest
from engine_kit import Tables, make_scope
from pydantic import ValidationError

import cleanroom.engine as engine
from cleanroom.engine import DatasetRef, compile_query, execute, view_name, views_for
from cleanroom.errors import CleanroomError, InternalError


def test_view_names() -> None:
    assert view_name("northside-dealers.leads") == "northside_dealers__leads"
    assert view_name("aurora-motors.web_sessions") == "aurora_motors__web_sessions"
    for bad in ("northside-dealers", "a.b.c", "Upper.case", "x.leads; DROP"):
        with pytest.raises(CleanroomError):
            view_name(bad)


def test_views_for_names_exactly_the_scope() -> None:
    scope = make_scope()
    views = views_for(scope)
    assert set(views.values()) == set(scope.datasets)
    assert views["lakeside_autos__consent"] == "lakeside-autos.consent"


def test_views_for_refuses_two_datasets_on_one_view_name() -> None:
    refs = {
        q: DatasetRef(partner=p, partner_role="dealer", dataset=d, view=view_name(q), columns={"at": "timestamp"})
        for q, p, d in (("ab--c.d", "ab--c", "d"), ("ab.c__d", "ab", "c__d"))
    }
    with pytest.raises(InternalError):
        views_for(make_scope(datasets=refs))


def test_scope_rejects_a_view_that_does_not_match_its_dataset() -> None:
    scope = make_scope()
    ref = scope.datasets["northside-dealers.leads"].model_copy(update={"view": "lakeside_autos__leads"})
    with pytest.raises(ValidationError):
        make_scope(datasets={**scope.datasets, "northside-dealers.leads": ref})


def test_scope_rejects_empty_domains_and_inverted_bounds() -> None:
    with pytest.raises(ValidationError):
        make_scope(domains={"model": []})
    with pytest.raises(ValidationError):
        make_scope(measure_bounds={"northside-dealers.sales.price_eur": (10, 0)})


def test_execute_refuses_a_statement_that_returns_other_cells() -> None:
    compiled = compile_query("overlap", {"datasets": ["aurora-motors.web_sessions", "northside-dealers.sales"]}, make_scope())
    tables = Tables().consent_everyone([1])
    forged = compiled.model_copy(update={"sql": "SELECT 0 AS part_ord, 'venn' AS part, 1 AS o0, 0 AS o1, 'x' AS k0, NULL AS k1, 5 AS n"})
    with pytest.raises(InternalError):
        execute(forged, tables.con)


def test_the_public_surface_is_explicit() -> None:
    assert sorted(engine.__all__) == sorted(
        ["TEMPLATE_NAMES", "CompiledQuery", "DatasetRef", "PartPlan", "Presented", "Scope", "compile_query", "execute", "present", "timed_execute", "view_name", "views_for"]
    )
    for name in engine.__all__:
        assert getattr(engine, name) is not None
    assert set(engine.TEMPLATE_NAMES) == {"funnel", "attribution", "overlap", "lifecycle", "sql"}
