"""Effective rules: the strictest of the policy and each data owner's own ``[restrictions]``.

A partner may demand more for its own datasets than the collaboration agreed (a higher
threshold, a smaller epsilon per query, fewer groupable dimensions) in ``partners/<id>.toml``.
A query touching several partners' datasets is bound by the strictest rule among all of them, so
no partner's data is ever released under rules laxer than its owner accepts.
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction

from pydantic import BaseModel, ConfigDict

from cleanroom.errors import ConfigError
from cleanroom.partners import Partner, Restrictions
from cleanroom.policy.model import Epsilon, Policy


class EffectiveRules(BaseModel):
    """What binds a query over some datasets; ``binding`` names who set each rule."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_threshold: int
    max_epsilon_per_query: Epsilon
    dimensions: list[str]
    binding: dict[str, list[str]]


def effective_rules(policy: Policy, partners: dict[str, Partner], datasets: Iterable[str]) -> EffectiveRules:
    """The strictest rules over ``datasets`` (qualified ``partner.dataset``, each in scope)."""
    owners = sorted({_owner(policy, d) for d in datasets})
    threshold, by_threshold = policy.privacy.min_threshold, ["policy"]
    epsilon, by_epsilon = policy.privacy.max_epsilon_per_query, ["policy"]
    dims, by_dims = set(policy.dimensions), ["policy"]
    for owner in owners:
        r = _restrictions(partners, owner)
        if r.min_threshold is not None and r.min_threshold >= threshold:
            by_threshold = [owner] if r.min_threshold > threshold else [*by_threshold, owner]
            threshold = r.min_threshold
        if r.max_epsilon_per_query is not None and (eps := Fraction(repr(r.max_epsilon_per_query))) <= epsilon:
            by_epsilon = [owner] if eps < epsilon else [*by_epsilon, owner]
            epsilon = eps
        if r.dimensions is not None:
            dims &= set(r.dimensions)
            by_dims.append(owner)
    binding = {"min_threshold": by_threshold, "max_epsilon_per_query": by_epsilon, "dimensions": by_dims}
    return EffectiveRules(min_threshold=threshold, max_epsilon_per_query=epsilon, dimensions=sorted(dims), binding=binding)


def _owner(policy: Policy, dataset: str) -> str:
    policy.require_in_scope(dataset)
    return dataset.partition(".")[0]


def _restrictions(partners: dict[str, Partner], owner: str) -> Restrictions:
    if owner not in partners:
        raise ConfigError("partner.unknown", f"no partner {owner!r} among the loaded partner files", partner=owner)
    return partners[owner].restrictions


def effective_by_partner(policy: Policy, partners: dict[str, Partner]) -> dict[str, EffectiveRules]:
    """Effective rules over each partner's in-scope datasets, and over all of them (key ``*``)."""
    out = {p: effective_rules(policy, partners, [d for d in policy.datasets if d.startswith(f"{p}.")]) for p in policy.partners}
    out["*"] = effective_rules(policy, partners, policy.datasets)
    return out


__all__ = ["EffectiveRules", "effective_by_partner", "effective_rules"]
