"""Effective rules: the strictest of the policy and every data owner's [restrictions]."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest
from _policy_env import shipped

from cleanroom.errors import CleanroomError
from cleanroom.partners import Partner, load_partners
from cleanroom.policy import effective_rules, load_policy


def test_brand_restriction_raises_threshold(repo: Path, partners: dict[str, Partner]) -> None:
    policy = load_policy(shipped(repo), partners)
    dealer_only = effective_rules(policy, partners, ["northside-dealers.sales", "lakeside-autos.leads"])
    assert dealer_only.min_threshold == 20 and dealer_only.binding["min_threshold"] == ["policy"]
    with_brand = effective_rules(policy, partners, ["northside-dealers.sales", "aurora-motors.web_sessions"])
    assert with_brand.min_threshold == 25 and with_brand.binding["min_threshold"] == ["aurora-motors"]
    assert with_brand.max_epsilon_per_query == Fraction(1)


def test_strictest_of_several_owners(repo: Path, partners_dir: Path) -> None:
    finance = partners_dir / "aurora-financial.toml"
    text = finance.read_text().replace("[datasets.applications]", "[restrictions]\nmin_threshold = 30\nmax_epsilon_per_query = 0.25\ndimensions = [\"product\", \"model\", \"month\"]\n\n[datasets.applications]", 1)
    finance.write_text(text)
    partners = load_partners(partners_dir)
    policy = load_policy(shipped(repo), partners)
    rules = effective_rules(policy, partners, ["aurora-motors.web_sessions", "aurora-financial.contracts"])
    assert rules.min_threshold == 30 and rules.binding["min_threshold"] == ["aurora-financial"]
    assert rules.max_epsilon_per_query == Fraction(1, 4)
    assert rules.dimensions == ["model", "month", "product"]
    brand_only = effective_rules(policy, partners, ["aurora-motors.web_sessions"])
    assert brand_only.min_threshold == 25 and len(brand_only.dimensions) == len(policy.dimensions)


def test_dataset_out_of_scope_refused(repo: Path, partners: dict[str, Partner]) -> None:
    policy = load_policy(shipped(repo), partners)
    with pytest.raises(CleanroomError) as exc:
        effective_rules(policy, partners, ["aurora-motors.crm"])
    assert exc.value.code == "policy.dataset_not_in_scope"
