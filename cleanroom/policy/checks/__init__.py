"""Cross-checks of a policy against partners/ and against itself; each yields Issues.

Checks register themselves with the sections they need (``@check("templates", ...)``); a check
whose sections failed shape validation is skipped, so one broken section never hides the
problems of the others.
"""

from __future__ import annotations

from cleanroom.policy.checks import rules, scope  # noqa: F401 - importing registers the checks
from cleanroom.policy.checks.context import REGISTRY, Context
from cleanroom.policy.issues import Issue


def run_checks(ctx: Context) -> list[Issue]:
    issues: list[Issue] = []
    for needs, fn in REGISTRY:
        if needs <= ctx.sections.keys():
            issues.extend(fn(ctx))
    return issues


__all__ = ["Context", "run_checks"]
