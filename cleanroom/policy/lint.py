"""``lint``: every problem of a policy file at once, each with file, line, key path and a hint."""

from __future__ import annotations

from pathlib import Path

from cleanroom.partners import Partner
from cleanroom.policy.checks import Context, run_checks
from cleanroom.policy.issues import Issue, errors_of
from cleanroom.policy.model import Policy
from cleanroom.policy.source import parse
from cleanroom.policy.structure import validate


def check_file(path: Path, partners: dict[str, Partner]) -> tuple[list[Issue], Policy | None]:
    """All issues of ``path`` sorted by line, and the policy when there is no error."""
    source, issues = parse(path)
    if source is None:
        return issues, None
    shape = validate(source)
    ctx = Context(source=source, partners=partners, sections=shape.sections, salvaged=shape.salvaged)
    issues = [*issues, *shape.issues, *run_checks(ctx)]
    issues.sort(key=lambda i: (i.line, i.level != "error", i.path))
    return issues, shape.policy if not errors_of(issues) else None


def lint(path: Path, partners: dict[str, Partner]) -> list[Issue]:
    """Every error and warning of the policy at ``path``, checked against ``partners``."""
    return check_file(path, partners)[0]


__all__ = ["check_file", "lint"]
