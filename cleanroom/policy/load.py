"""``load_policy``: the one way the gateway gets a policy, validated and cross-checked."""

from __future__ import annotations

from pathlib import Path

from cleanroom.errors import PolicyError
from cleanroom.partners import Partner
from cleanroom.policy.issues import errors_of
from cleanroom.policy.lint import check_file
from cleanroom.policy.model import Policy


def load_policy(path: Path, partners: dict[str, Partner]) -> Policy:
    """Load ``path`` and cross-check it against ``partners``; warnings do not stop it.

    Raises ``policy.invalid`` listing every error as ``file:line key.path: message``.
    """
    issues, policy = check_file(path, partners)
    errors = errors_of(issues)
    if policy is None or errors:
        listing = "\n".join(i.render() for i in errors)
        raise PolicyError(
            "policy.invalid",
            f"{path}: {len(errors)} error{'s' if len(errors) != 1 else ''}\n{listing}",
            path=str(path),
            problems=[i.model_dump() for i in errors],
        )
    return policy


__all__ = ["load_policy"]
