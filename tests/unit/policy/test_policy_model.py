"""The model's helpers (what the gateway calls), exact epsilons, and the canonical form."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest
import yaml
from _policy_env import edit, shipped

from cleanroom.errors import CleanroomError
from cleanroom.partners import Partner
from cleanroom.policy import Policy, canonical_bytes, content_hash, load_policy, micro_epsilon
from cleanroom.policy.model import decimal_text

BRAND_DEALER = ["aurora-motors.web_sessions", "aurora-motors.campaign_touches", "northside-dealers.sales", "lakeside-autos.leads"]


@pytest.fixture(scope="module")
def policy(repo: Path, partners: dict[str, Partner]) -> Policy:
    return load_policy(shipped(repo), partners)


def test_demo_template_grants(policy: Policy) -> None:
    assert policy.templates_for("brand") == ["attribution", "funnel", "lifecycle", "overlap", "sql"]
    assert policy.templates_for("dealer") == ["funnel", "overlap"]
    assert policy.templates_for("finance") == ["funnel", "lifecycle", "overlap"]
    rule = policy.template_rule("attribution")
    assert (rule.roles, rule.consent) == (["brand"], ["attribution", "measurement"])
    assert {t: policy.template_rule(t).consent for t in ("funnel", "overlap", "lifecycle", "sql")} == dict.fromkeys(("funnel", "overlap", "lifecycle", "sql"), ["measurement"])


def test_unknown_and_disallowed_templates_refused(policy: Policy, repo: Path, partners: dict[str, Partner], tmp_path: Path) -> None:
    with pytest.raises(CleanroomError) as exc:
        policy.template_rule("cohort")
    assert exc.value.code == "query.unknown_template"
    text = shipped(repo).read_text()
    start, end = text.index("  sql:   "), text.index("\n# Privacy settings")
    path = tmp_path / "aurora-2026.yaml"
    path.write_text(text[:start] + text[end:])
    with pytest.raises(CleanroomError) as exc:
        load_policy(path, partners).template_rule("sql")
    assert exc.value.code == "policy.template_not_allowed"


def test_demo_joins(policy: Policy) -> None:
    contracts, applications = "aurora-financial.contracts", "aurora-financial.applications"
    for a in BRAND_DEALER:
        for b in BRAND_DEALER:
            assert policy.join_approved(a, b, "brand") and policy.join_approved(a, b, "dealer")
        assert policy.join_approved(a, applications, "dealer")
        assert not policy.join_approved(a, contracts, "dealer")  # dealers never see contracts
        assert policy.join_approved(contracts, a, "finance") and policy.join_approved(a, contracts, "brand")
    assert not policy.join_approved("aurora-motors.web_sessions", "northside-dealers.sales", "finance")
    assert policy.join_approved(applications, contracts, "finance") and not policy.join_approved(applications, contracts, "dealer")
    assert not policy.join_approved("aurora-motors.web_sessions", "aurora-motors.consent", "brand")
    dealer = policy.joins_for("dealer")
    assert frozenset({applications, "lakeside-autos.sales"}) in dealer and not any(contracts in pair for pair in dealer)
    assert len(policy.joins_for("brand")) == 28 + 8 + 8 + 1  # pairs among 8, then x applications, x contracts, and the two


def test_domains(policy: Policy) -> None:
    months = policy.domain("month")
    assert months[0] == "2025-11" and months[-1] == "2026-10" and len(months) == 12
    assert policy.domain("configurator_completed") == ["true", "false"]
    assert policy.domain("price_band") == ["<30k", "30-45k", "45-60k", "60k+"]  # order kept
    assert policy.domain("dealer_group") == ["northside-dealers", "lakeside-autos"]
    with pytest.raises(CleanroomError) as exc:
        policy.domain("salesperson")
    assert exc.value.code == "policy.dimension_not_allowed"


def test_measure_bounds(policy: Policy) -> None:
    assert policy.measure_bounds("northside-dealers.sales.price_eur") == (0, 150000)
    assert policy.measure_bounds("aurora-financial.contracts.amount_eur") == (0, 120000)
    with pytest.raises(CleanroomError) as exc:
        policy.measure_bounds("northside-dealers.sales.salesperson")
    assert exc.value.code == "policy.measure_not_allowed"


def test_epsilons_are_exact(policy: Policy) -> None:
    p = policy.privacy
    assert p.max_epsilon_per_query == Fraction(1) and isinstance(p.max_epsilon_per_query, Fraction)
    assert micro_epsilon(p.monthly_budget_per_partner) == 10_000_000
    assert micro_epsilon(p.report_reservation) == 2_000_000
    assert sum((s.epsilon for s in policy.report.sections), Fraction(0)) == p.report_reservation  # type: ignore[union-attr]
    assert (p.min_threshold, p.mechanism, p.max_groups_per_person, p.max_rows_per_person) == (20, "laplace", 2, 50)


def test_epsilon_parsing(policy_file: Path, partners: dict[str, Partner]) -> None:
    edit(policy_file, "monthly_budget_per_partner: 10.0", "monthly_budget_per_partner: 10.1")
    assert load_policy(policy_file, partners).privacy.monthly_budget_per_partner == Fraction(101, 10)  # not the float
    edit(policy_file, "monthly_budget_per_partner: 10.1", "monthly_budget_per_partner: 10.0000001")
    with pytest.raises(CleanroomError, match="finer than one micro-epsilon"):
        load_policy(policy_file, partners)


def test_decimal_text() -> None:
    assert [decimal_text(Fraction(x)) for x in ("1", "0.5", "10", "1/10", "1e-7")] == ["1", "0.5", "10", "0.1", "0.0000001"]
    assert decimal_text(Fraction(1, 3)) == "1/3"


def test_filterable(policy: Policy) -> None:
    assert policy.is_filterable("model") and policy.is_filterable("month")
    assert not policy.is_filterable("hid") and not policy.is_filterable("salesperson")


def test_canonical_form_ignores_comments_order_and_style(repo: Path, partners: dict[str, Partner], tmp_path: Path) -> None:
    """Re-serialize with sorted keys, reversed set-like lists, no comments, flow style: same bytes."""
    original = load_policy(shipped(repo), partners)
    data = yaml.safe_load(shipped(repo).read_text())
    for key in ("partners", "datasets", "consent_purposes", "filterable"):
        data[key] = list(reversed(data[key]))
    data["joins"] = list(reversed(data["joins"]))
    data["templates"]["funnel"]["roles"].reverse()
    data["privacy"]["max_epsilon_per_query"] = 1  # 1 and 1.0 are the same epsilon
    data["privacy"]["max_rows_per_person"] = 50  # writing a default explicitly changes nothing
    path = tmp_path / "aurora-2026.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=True, default_flow_style=True, width=60))
    assert canonical_bytes(load_policy(path, partners)) == canonical_bytes(original)


def test_one_character_changes_the_hash(policy_file: Path, partners: dict[str, Partner]) -> None:
    before = content_hash(load_policy(policy_file, partners))
    edit(policy_file, "{min: 0, max: 150000}      # transaction price, whole euros\n  lakeside", "{min: 0, max: 150001}      # transaction price, whole euros\n  lakeside")
    assert content_hash(load_policy(policy_file, partners)) != before


def test_domain_order_is_signed(policy_file: Path, partners: dict[str, Partner]) -> None:
    """A public domain's order is its display order, so it is part of the meaning."""
    before = content_hash(load_policy(policy_file, partners))
    edit(policy_file, "domain: [loan, lease, balloon]", "domain: [lease, loan, balloon]")
    assert content_hash(load_policy(policy_file, partners)) != before
