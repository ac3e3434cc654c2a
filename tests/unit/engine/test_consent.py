"""Consent is per partner, per purpose, evaluated at query time, and applied before aggregation."""

from __future__ import annotations

from datetime import datetime, timedelta

import engine_journeys as journeys
import pytest
from engine_kit import NOW, Tables, at, make_scope, values_of

from cleanroom.engine import compile_query, execute
from cleanroom.errors import PolicyError


def funnel_by_model(tables: Tables, **scope_overrides: object) -> object:
    compiled = compile_query("funnel", {"view": "activity", "dimensions": ["model"]}, make_scope(**scope_overrides))
    return execute(compiled, tables.con)


def test_revoking_one_person_removes_exactly_that_persons_contribution() -> None:
    tables = journeys.load(Tables())
    before = funnel_by_model(tables)
    tables.con.execute("UPDATE aurora_motors__consent SET revoked_at = ? WHERE pid = 2", [NOW - timedelta(hours=1)])
    after = funnel_by_model(tables)
    # p2 was at the configurator with cirrus; its first configurator day was 4 days before its lead.
    expected_persons = dict(values_of(before, "persons"))
    expected_persons["configurator|cirrus"] -= 1
    assert values_of(after, "persons") == {k: v for k, v in expected_persons.items() if v}


def test_another_partners_consent_does_not_license_data() -> None:
    tables = Tables()
    tables.add("northside-dealers.leads", [{"pid": 9, "lead_at": at(1), "dealer_id": "NS-01", "model": "dune", "region": "north", "source": "web"}])
    for partner in ("aurora-motors", "lakeside-autos", "aurora-financial"):
        tables.consent(partner, [9])
    assert values_of(funnel_by_model(tables), "persons") == {}
    tables.consent("northside-dealers", [9])
    assert values_of(funnel_by_model(tables), "persons") == {"lead|dune": 1}


def test_consent_is_evaluated_at_query_time() -> None:
    tables = journeys.load(Tables())
    # p7 revoked northside on 2026-06-01: before that moment its lead counts, after it does not.
    assert "lead|dune" not in values_of(funnel_by_model(tables), "persons")
    assert values_of(funnel_by_model(tables, now=datetime(2026, 5, 31)), "persons")["lead|dune"] == 1
    # A grant that starts after `now` is not active yet.
    tables.consent("aurora-motors", [8], granted=NOW + timedelta(days=1))
    assert values_of(funnel_by_model(tables), "persons")["configurator|aster"] == 2
    assert values_of(funnel_by_model(tables, now=NOW + timedelta(days=2)), "persons")["configurator|aster"] == 3


def test_every_required_purpose_is_needed() -> None:
    tables = journeys.load(Tables())
    scope = make_scope(consent_purposes=["measurement", "attribution"])
    compiled = compile_query("attribution", {}, scope)
    assert values_of(execute(compiled, tables.con), "credit")["autumn_ev|not_financed"] == 1000
    # p2 withdraws only the attribution purpose at the brand: its touch no longer counts.
    tables.con.execute("UPDATE aurora_motors__consent SET revoked_at = ? WHERE pid = 2 AND purpose = 'attribution'", [NOW - timedelta(days=1)])
    credit = values_of(execute(compiled, tables.con), "credit")
    assert not any(k.startswith("autumn_ev") for k in credit) and credit["unattributed|not_financed"] == 2000


def test_without_required_purposes_nothing_is_filtered() -> None:
    tables = journeys.load(Tables())
    assert values_of(funnel_by_model(tables, consent_purposes=[]), "persons")["configurator|aster"] == 3


def test_a_consent_dataset_out_of_scope_is_an_error_not_zeros() -> None:
    scope = make_scope()
    datasets = {q: r for q, r in scope.datasets.items() if q != "lakeside-autos.consent"}
    with pytest.raises(PolicyError) as err:
        compile_query("funnel", {}, make_scope(datasets=datasets))
    assert err.value.code == "policy.dataset_not_in_scope" and "lakeside-autos.consent" in err.value.message


def test_compiled_query_names_the_consent_datasets_it_reads() -> None:
    compiled = compile_query("overlap", {"datasets": ["aurora-motors.web_sessions", "lakeside-autos.sales"]}, make_scope())
    assert compiled.datasets == ["aurora-motors.consent", "aurora-motors.web_sessions", "lakeside-autos.consent", "lakeside-autos.sales"]
    assert compiled.joins == [("aurora-motors.web_sessions", "lakeside-autos.sales")]


def test_consent_horizon_is_the_next_grant_or_revocation_after_now() -> None:
    """The release cache keys on this moment, so a revocation dated later invalidates cached results."""
    from cleanroom.engine.consent import consent_horizon_sql

    tables = journeys.load(Tables())
    scope = make_scope()
    consent = ["aurora-motors.consent", "northside-dealers.consent"]
    horizon = lambda: tables.con.execute(consent_horizon_sql(scope, consent)).fetchone()[0]  # noqa: E731
    assert horizon() is None  # every grant and revocation lies in the past
    later, sooner = NOW + timedelta(days=3), NOW + timedelta(hours=2)
    tables.con.execute("UPDATE aurora_motors__consent SET revoked_at = ? WHERE pid = 2", [later])
    assert horizon() == later
    tables.con.execute("UPDATE northside_dealers__consent SET granted_at = ? WHERE pid = (SELECT min(pid) FROM northside_dealers__consent)", [sooner])
    assert horizon() == sooner
