"""Parameters are validated per template, and the scope decides dimensions, filters, joins, datasets."""

from __future__ import annotations

from typing import Any

import pytest
from engine_kit import make_scope

from cleanroom.engine import compile_query
from cleanroom.errors import CleanroomError

BAD_PARAMS = [
    ("funnel", {"dimensions": ["model", "region", "month"]}, "dimensions"),
    ("funnel", {"dimensions": ["model", "model"]}, "dimensions"),
    ("funnel", {"include_medians": "yes"}, "include_medians"),
    ("funnel", {"filters": {"model": []}}, "filters"),
    ("funnel", {"filters": {"model": ["zephyr"]}}, "filters.model"),
    ("funnel", {"dimension": ["model"]}, "dimension"),
    ("attribution", {"model": "u_shaped"}, "model"),
    ("attribution", {"by": "dealer"}, "by"),
    ("attribution", {"lookback_days": 0}, "lookback_days"),
    ("attribution", {"lookback_days": 91}, "lookback_days"),
    ("attribution", {"lookback_days": "30"}, "lookback_days"),
    ("attribution", {"half_life_days": 61}, "half_life_days"),
    ("attribution", {"max_touches": 21}, "max_touches"),
    ("overlap", {"datasets": ["aurora-motors.web_sessions"]}, "datasets"),
    ("overlap", {"datasets": ["aurora-motors.web_sessions", "aurora-motors.web_sessions"]}, "datasets"),
    ("overlap", {"datasets": "some"}, "datasets"),
    ("lifecycle", {"window_start": "2027-01-01"}, "window_end"),
    ("lifecycle", {"window_start": "2027-01-01", "window_end": "2026-01-01"}, "(parameters)"),
    ("lifecycle", {"window_start": "2027-01-01", "window_end": "2028-01-03"}, "(parameters)"),
    ("lifecycle", {"window_start": "2027-01-01", "window_end": "2027-02-30"}, "window_end"),
    ("lifecycle", {"window_start": "2027-01-01", "window_end": "2027-03-01", "by": "region"}, "by"),
    ("sql", {"query": "SELECT 1"}, "sql"),
]


@pytest.mark.parametrize(("template", "params", "field"), BAD_PARAMS)
def test_bad_parameters_name_the_field(template: str, params: dict[str, Any], field: str) -> None:
    with pytest.raises(CleanroomError) as err:
        compile_query(template, params, make_scope())
    assert err.value.code == "query.invalid_params"
    assert err.value.details["field"] == field
    assert template in err.value.message


def test_unknown_template() -> None:
    with pytest.raises(CleanroomError) as err:
        compile_query("cohort", {}, make_scope())
    assert err.value.code == "query.unknown_template" and "funnel" in err.value.message


def test_defaults_are_echoed_in_the_compiled_params() -> None:
    compiled = compile_query("attribution", {}, make_scope(consent_purposes=["measurement", "attribution"]))
    assert compiled.params == {"model": "last_touch", "by": "campaign", "lookback_days": 30, "half_life_days": 7, "max_touches": 10, "month": None, "months": None}


def policy_error(template: str, params: dict[str, Any], **scope: Any) -> CleanroomError:
    with pytest.raises(CleanroomError) as err:
        compile_query(template, params, make_scope(**scope))
    return err.value


def test_a_dimension_without_public_domain_is_not_groupable() -> None:
    domains = {k: v for k, v in make_scope().domains.items() if k != "region"}
    err = policy_error("funnel", {"dimensions": ["region"]}, domains=domains)
    assert err.code == "policy.dimension_not_allowed" and "region" in err.message


def test_a_dimension_the_template_does_not_offer() -> None:
    assert policy_error("funnel", {"dimensions": ["price_band"]}).code == "policy.dimension_not_allowed"


def test_a_filter_on_a_column_the_policy_does_not_list() -> None:
    err = policy_error("funnel", {"filters": {"model": ["aster"]}}, filterable_columns=frozenset({"region"}))
    assert err.code == "policy.filter_not_allowed" and err.details["column"] == "aurora-motors.web_sessions.model"


def test_a_filter_allowed_for_one_dataset_only() -> None:
    both = frozenset({"northside-dealers.leads.source", "lakeside-autos.leads.source"})
    compiled = compile_query("funnel", {"view": "activity", "filters": {"source": ["web"]}}, make_scope(filterable_columns=both))
    assert compiled.meta["stages_unavailable"] == ["configurator", "test_drive", "application", "sale", "contract"]
    cohort = compile_query("funnel", {"entry": "lead", "filters": {"source": ["web"]}}, make_scope(filterable_columns=both))
    assert cohort.meta["stages"] == ["lead", "test_drive", "sale", "financed"]
    err = policy_error("funnel", {"entry": "lead", "filters": {"source": ["web"]}}, filterable_columns=frozenset({"northside-dealers.leads.source"}))
    assert err.code == "policy.filter_not_allowed" and "lakeside-autos.leads" in err.message


def only_joins(*pairs: tuple[str, str]) -> frozenset[frozenset[str]]:
    return frozenset(frozenset(p) for p in pairs)


def test_attribution_needs_touches_joined_with_every_dealers_sales() -> None:
    joins = only_joins(
        ("aurora-motors.campaign_touches", "northside-dealers.sales"),
        ("northside-dealers.sales", "aurora-financial.contracts"),
        ("lakeside-autos.sales", "aurora-financial.contracts"),
    )
    err = policy_error("attribution", {}, approved_joins=joins, consent_purposes=["measurement", "attribution"])
    assert err.code == "policy.join_not_approved"
    assert err.details["pair"] == ["aurora-motors.campaign_touches", "lakeside-autos.sales"]


def test_the_cohort_funnel_stops_where_the_role_may_not_join() -> None:
    # A dealer analyst under the demo policy may not join contracts with sales: no financed branch.
    keys = [q for q in make_scope().datasets if not q.endswith(".consent")]
    joins = frozenset(frozenset((a, b)) for a in keys for b in keys if a < b and "contracts" not in a + b)
    compiled = compile_query("funnel", {}, make_scope(approved_joins=joins))
    assert compiled.meta["stages"] == ["configurator", "lead", "test_drive", "sale"]
    assert "aurora-financial.contracts" in compiled.meta["stages_omitted"]["financed"]
    assert not any("contracts" in a + b for a, b in compiled.joins)
    bare = compile_query("funnel", {}, make_scope(approved_joins=frozenset()))
    assert bare.joins == [] and bare.meta["stages"] == ["configurator"]
    assert "join" in bare.meta["stages_omitted"]["lead"] and bare.meta["stages_omitted"]["sale"] == "follows lead, which is omitted"
    activity = compile_query("funnel", {"view": "activity"}, make_scope(approved_joins=frozenset()))
    assert activity.joins == [] and activity.part("persons").cells[-1] == ("contract",), "stage activity needs no join"


def test_overlap_of_an_unapproved_pair_and_of_all_approved_pairs() -> None:
    joins = only_joins(("aurora-motors.web_sessions", "northside-dealers.leads"))
    err = policy_error("overlap", {"datasets": ["aurora-motors.web_sessions", "lakeside-autos.leads"]}, approved_joins=joins)
    assert err.code == "policy.join_not_approved"
    compiled = compile_query("overlap", {}, make_scope(approved_joins=joins))
    assert compiled.part("venn").cells == [("aurora-motors.web_sessions", "northside-dealers.leads", r) for r in ("a_only", "b_only", "both")]
    assert policy_error("overlap", {}, approved_joins=frozenset()).code == "policy.join_not_approved"


def test_only_datasets_in_scope_are_referenced() -> None:
    scope = make_scope()
    kept = {q: r for q, r in scope.datasets.items() if not q.startswith("lakeside-autos.")}
    compiled = compile_query("funnel", {}, make_scope(datasets=kept))
    assert not any(q.startswith("lakeside-autos") for q in compiled.datasets)
    assert "lakeside" not in compiled.sql
    err = policy_error("overlap", {"datasets": ["aurora-motors.web_sessions", "lakeside-autos.sales"]}, datasets=kept)
    assert err.code == "policy.dataset_not_in_scope"


def test_a_template_whose_required_dataset_is_out_of_scope() -> None:
    kept = {q: r for q, r in make_scope().datasets.items() if q != "aurora-motors.campaign_touches"}
    err = policy_error("attribution", {}, datasets=kept, consent_purposes=["measurement", "attribution"])
    assert err.code == "policy.dataset_not_in_scope" and "campaign_touches" in err.message


def test_a_consent_dataset_is_not_an_audience() -> None:
    err = policy_error("overlap", {"datasets": ["aurora-motors.consent", "aurora-motors.web_sessions"]})
    assert err.code == "query.invalid_params"


def test_stages_left_out_are_not_read() -> None:
    compiled = compile_query("funnel", {"view": "activity", "dimensions": ["dealer_group"]}, make_scope())
    assert list(compiled.meta["stages_omitted"]) == ["configurator", "application", "contract"]
    assert not any(q.startswith(("aurora-motors", "aurora-financial")) for q in compiled.datasets)
    assert "aurora_motors" not in compiled.sql and "aurora_financial" not in compiled.sql


def test_attribution_over_a_month_or_several() -> None:
    scope = make_scope(consent_purposes=["measurement", "attribution"])
    assert "IN ('2026-01', '2026-02')" in compile_query("attribution", {"months": ["2026-02", "2026-01"]}, scope).sql
    assert "IN ('2026-02')" in compile_query("attribution", {"month": "2026-02"}, scope).sql
    for bad in ({"month": "2026-02", "months": ["2026-01"]}, {"months": ["2026-01", "2026-01"]}, {"month": "2026-13"}):
        with pytest.raises(CleanroomError) as err:
            compile_query("attribution", bad, scope)
        assert err.value.code == "query.invalid_params"
