"""lint reports every problem with file, line and key path; load_policy refuses on errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from _policy_env import edit, line_of, shipped

from cleanroom.errors import PolicyError
from cleanroom.partners import Partner
from cleanroom.policy import lint, load_policy

# (case, old text, new text, expected check id, level, text on the line the issue must point at)
CASES = [
    ("unknown dataset", "lakeside-autos.test_drives              # test drives", "lakeside-autos.test_drivez              # test drives", "unknown-dataset", "error", "- lakeside-autos.test_drivez"),
    ("unknown column", "aurora-financial.contracts.amount_eur:", "aurora-financial.contracts.amount_euro:", "unknown-column", "error", "amount_euro:"),
    ("measure without bounds", "{min: 0, max: 120000}", "{min: 0}", "measure-bounds", "error", "amount_eur: {min: 0}"),
    ("measure of a dimension column", "lakeside-autos.sales.price_eur:", "lakeside-autos.sales.price_band:", "wrong-tag", "error", "lakeside-autos.sales.price_band:"),
    ("join on a non-key column", "    key: hid                                # the join column", "    key: dealer_id                          # the join column", "join-key", "error", "key: dealer_id"),
    ("dimension without a domain", "    domain: [web, walk_in, phone, event]", "    description: lead source", "dimension-domain", "error", "  source:"),
    ("template groups by an undeclared dimension", "dimensions: [product, amount_band, model]", "dimensions: [product, amount_band, model, colour]", "dimension-domain", "error", "dimensions: [product, amount_band, model, colour]"),
    ("dimension column tagged private", "  decision:  ", "  salesperson:  ", "wrong-tag", "error", "  salesperson:"),
    ("unknown consent purpose", "consent: [measurement, attribution] ", "consent: [measurement, marketting] ", "consent-purpose", "error", "consent: [measurement, marketting]"),
    ("unknown template", "  overlap:      ", "  overlaps:     ", "unknown-template", "error", "  overlaps:"),
    ("report section epsilon above the cap", "epsilon: 0.3                          # spends 0.3 of the reservation\n      dimensions: [month]", "epsilon: 1.5\n      dimensions: [month]", "epsilon-cap", "error", "epsilon: 1.5"),
    ("per-query cap above the monthly budget", "max_epsilon_per_query: 1.0 ", "max_epsilon_per_query: 12.0", "epsilon-cap", "error", "max_epsilon_per_query: 12.0"),
    ("join key filterable", "filterable: [model,", "filterable: [hid, model,", "join-key-filter", "error", "filterable: [hid, model,"),
    ("cap smaller than the report reservation", "collaboration_monthly_cap: 30.0", "collaboration_monthly_cap: 1.5 ", "report-budget", "warning", "collaboration_monthly_cap: 1.5"),
    ("reservation below what the report needs", "report_reservation: 2.0", "report_reservation: 1.0", "report-budget", "warning", "report_reservation: 1.0"),
    ("epsilon per query above 1", "max_epsilon_per_query: 1.0 ", "max_epsilon_per_query: 1.5 ", "epsilon-high", "warning", "max_epsilon_per_query: 1.5"),
    ("threshold under 20", "min_threshold: 20 ", "min_threshold: 10 ", "threshold-low", "warning", "min_threshold: 10"),
    ("unknown partner", "  - lakeside-autos                          # dealer group", "  - lakeshore-autos                         # dealer group", "unknown-partner", "error", "- lakeshore-autos"),
    ("misspelt key", "title: Aurora", "titel: Aurora", "schema", "error", "titel: Aurora"),
]


@pytest.mark.parametrize(("case", "old", "new", "check", "level", "where"), CASES, ids=[c[0] for c in CASES])
def test_lint_finds_problem_at_its_line(policy_file: Path, partners: dict[str, Partner], case: str, old: str, new: str, check: str, level: str, where: str) -> None:
    edit(policy_file, old, new)
    issues = lint(policy_file, partners)
    line = line_of(policy_file, where)
    found = [i for i in issues if i.check == check and i.line == line]
    assert found, f"{case}: no {check} at line {line}; got:\n" + "\n".join(i.render() for i in issues)
    assert found[0].level == level
    assert found[0].file == str(policy_file)
    assert found[0].hint or level == "warning"


def test_shipped_policy_is_clean(repo: Path, partners: dict[str, Partner]) -> None:
    assert lint(shipped(repo), partners) == []


def test_message_format_matches_the_docs(policy_file: Path, partners: dict[str, Partner]) -> None:
    edit(policy_file, "consent: [measurement, attribution] ", "consent: [measurement, marketting] ")
    (issue,) = lint(policy_file, partners)
    line = line_of(policy_file, "marketting")
    expected = f'{policy_file}:{line} templates.attribution.consent[1]: unknown purpose "marketting" (known: measurement, attribution, analytics)'
    assert issue.render().splitlines()[0] == expected


def test_every_problem_is_reported_at_once(policy_file: Path, partners: dict[str, Partner]) -> None:
    """A shape error in one section must not hide cross-check errors in the others."""
    edit(policy_file, "mechanism: laplace", "mechanism: gausian")  # privacy fails shape validation
    edit(policy_file, "title: Aurora", "titel: Aurora")
    edit(policy_file, "  - aurora-financial.contracts  ", "  - aurora-financial.contractz  ")
    edit(policy_file, "consent: [measurement, attribution] ", "consent: [measurement, marketting] ")
    edit(policy_file, "  overlap:      ", "  overlaps:     ")
    edit(policy_file, "{min: 0, max: 120000}", "{min: 0}")
    checks = {i.check for i in lint(policy_file, partners)}
    assert {"schema", "unknown-dataset", "consent-purpose", "unknown-template", "measure-bounds", "not-in-scope"} <= checks


def test_yaml_syntax_error_has_its_line(policy_file: Path, partners: dict[str, Partner]) -> None:
    edit(policy_file, "  region:                                   # sales region", "  region: [unclosed                         # sales region")
    (issue,) = lint(policy_file, partners)
    assert issue.check == "yaml-syntax"
    assert issue.line >= line_of(policy_file, "region: [unclosed")


def test_duplicate_key_is_an_error(policy_file: Path, partners: dict[str, Partner]) -> None:
    """PyYAML silently keeps the last of two equal keys; a signed text must not be ambiguous."""
    edit(policy_file, "  min_threshold: 20 ", "  min_threshold: 25\n  min_threshold: 20 ")
    issues = [i for i in lint(policy_file, partners) if i.check == "duplicate-key"]
    assert [i.line for i in issues] == [line_of(policy_file, "min_threshold: 20")]


def test_yes_and_no_stay_text(policy_file: Path, partners: dict[str, Partner]) -> None:
    """YAML 1.1 would read `no` as False (the Norway problem); the loader does not."""
    edit(policy_file, "domain: [approved, declined]", "domain: [approved, declined, no, on]")
    assert load_policy(policy_file, partners).domain("decision") == ["approved", "declined", "no", "on"]


def test_load_policy_lists_errors_with_file_and_line(policy_file: Path, partners: dict[str, Partner]) -> None:
    edit(policy_file, "consent: [measurement, attribution] ", "consent: [measurement, marketting] ")
    edit(policy_file, "{min: 0, max: 120000}", "{min: 0}")
    with pytest.raises(PolicyError) as exc:
        load_policy(policy_file, partners)
    assert exc.value.code == "policy.invalid"
    assert f"{policy_file}:{line_of(policy_file, 'marketting')} templates.attribution.consent" in exc.value.message
    assert f"{policy_file}:{line_of(policy_file, 'amount_eur: {min: 0}')} measures" in exc.value.message
    assert len(exc.value.details["problems"]) == 2


def test_missing_file_is_not_found(tmp_path: Path, partners: dict[str, Partner]) -> None:
    with pytest.raises(PolicyError) as exc:
        load_policy(tmp_path / "nope.yaml", partners)
    assert exc.value.code == "policy.not_found"


def test_dealer_group_domain_must_name_dealers(policy_file: Path, partners: dict[str, Partner]) -> None:
    edit(policy_file, "domain: [northside-dealers, lakeside-autos]", "domain: [northside-dealers, aurora-financial]")
    issues = {(i.check, i.level) for i in lint(policy_file, partners)}
    assert ("domain", "error") in issues  # aurora-financial is not a dealer
    assert ("domain", "warning") in issues  # lakeside-autos rows would fall outside every cell


def test_gaussian_needs_delta(policy_file: Path, partners: dict[str, Partner]) -> None:
    edit(policy_file, "mechanism: laplace", "mechanism: gaussian")
    (issue,) = lint(policy_file, partners)
    assert issue.path == "privacy" and "needs a delta" in issue.message
    edit(policy_file, "mechanism: gaussian", "mechanism: gaussian\n  delta: 1.0e-7")
    assert load_policy(policy_file, partners).privacy.delta is not None
