"""diff explains changes in words and flags those that loosen privacy."""

from __future__ import annotations

from pathlib import Path

from _policy_env import copy_policy, edit

from cleanroom.partners import Partner
from cleanroom.policy import Change, diff_policies, load_policy


def _diff(repo: Path, tmp_path: Path, partners: dict[str, Partner], *edits: tuple[str, str]) -> list[Change]:
    old = copy_policy(repo, tmp_path / "old")
    new = copy_policy(repo, tmp_path / "new")
    for before, after in edits:
        edit(new, before, after)
    return diff_policies(load_policy(old, partners), load_policy(new, partners))


def _lines(changes: list[Change]) -> list[str]:
    return [c.render() for c in changes]


def test_no_change(repo: Path, tmp_path: Path, partners: dict[str, Partner]) -> None:
    assert _diff(repo, tmp_path, partners, ("# brand\n", "# the brand\n")) == []


def test_threshold_lowered_loosens(repo: Path, tmp_path: Path, partners: dict[str, Partner]) -> None:
    changes = _diff(repo, tmp_path, partners, ("min_threshold: 20 ", "min_threshold: 15 "))
    assert _lines(changes) == ["+ privacy.min_threshold: minimum cell size (threshold) lowered from 20 to 15  [LOOSENS PRIVACY]"]


def test_template_granted_and_consent_removed(repo: Path, tmp_path: Path, partners: dict[str, Partner]) -> None:
    changes = _diff(
        repo,
        tmp_path,
        partners,
        ("roles: [brand]                          # brand only: campaign", "roles: [brand, dealer]                  # campaign"),
        ("consent: [measurement, attribution] ", "consent: [measurement]              "),
    )
    assert "+ templates.attribution.roles: attribution newly granted to role dealer  [LOOSENS PRIVACY]" in _lines(changes)
    consent = [c for c in changes if c.path == "templates.attribution.consent"]
    assert len(consent) == 1 and consent[0].loosens_privacy and "no longer requires consent purpose attribution" in consent[0].message


def test_join_approved_for_dealers(repo: Path, tmp_path: Path, partners: dict[str, Partner]) -> None:
    changes = _diff(repo, tmp_path, partners, ("roles: [brand, finance]                 # NOT dealers: contract", "roles: [brand, dealer, finance]         # contract"))
    assert len(changes) == 8  # contracts x the 8 brand and dealer datasets
    assert all(c.kind == "allows" and c.loosens_privacy and c.message.startswith("role dealer may now join aurora-financial.contracts with ") for c in changes)


def test_budget_and_cap_changes(repo: Path, tmp_path: Path, partners: dict[str, Partner]) -> None:
    changes = _diff(
        repo,
        tmp_path,
        partners,
        ("max_epsilon_per_query: 1.0 ", "max_epsilon_per_query: 0.5 "),
        ("monthly_budget_per_partner: 10.0", "monthly_budget_per_partner: 12.5"),
    )
    assert _lines(changes) == [
        "- privacy.max_epsilon_per_query: epsilon cap per query lowered from 1 to 0.5",
        "+ privacy.monthly_budget_per_partner: monthly epsilon budget per partner raised from 10 to 12.5  [LOOSENS PRIVACY]",
    ]


def test_domain_and_bounds(repo: Path, tmp_path: Path, partners: dict[str, Partner]) -> None:
    changes = _diff(
        repo,
        tmp_path,
        partners,
        ("domain: [north, south, east, west, central]", "domain: [north, south, east, west, central, islands]"),
        ("domain: {from: 2025-11, to: 2026-10}", "domain: {from: 2026-01, to: 2026-10}"),
        ("amount_eur: {min: 0, max: 120000}", "amount_eur: {min: 0, max: 200000}"),
    )
    by_path = {c.path: c for c in changes}
    assert by_path["dimensions.region.domain"].message.startswith("region gains public values islands") and by_path["dimensions.region.domain"].loosens_privacy
    assert by_path["dimensions.month.domain"].kind == "forbids" and "2025-11, 2025-12" in by_path["dimensions.month.domain"].message
    bounds = by_path["measures.aurora-financial.contracts.amount_eur"]
    assert bounds.kind == "allows" and "widened [0, 120000] -> [0, 200000]" in bounds.message and not bounds.loosens_privacy


def test_only_labels_changed(repo: Path, tmp_path: Path, partners: dict[str, Partner]) -> None:
    changes = _diff(repo, tmp_path, partners, ("name: finance-internal", "name: applications-with-contracts"))
    assert [c.kind for c in changes] == ["changes"] and "only labels changed" in changes[0].message
