"""The one function that turns exact aggregates into releasable numbers.

``release`` is deliberately narrow: it takes an :class:`~cleanroom.aggregate.ExactResult`, an
exact epsilon and the policy threshold, and returns a :class:`~cleanroom.aggregate.NoisyResult`.
There is no flag, mechanism or epsilon value that returns exact numbers: every part is noised by
an OpenDP measurement whose privacy map is checked against the part's exact share of epsilon.

Order of work (each step a small function):
1. split epsilon (and delta) exactly over the parts by weight (:func:`split_epsilon`);
2. per part: sensitivity from its bounds -> calibrated measurement -> noisy vector;
3. post-processing on noisy values only: suppression by the guard's noisy person-count (for a
   ``derived`` partition the presenter suppresses each sum it shows instead).
Sequential composition makes the query (epsilon, delta)-DP: the parts' shares sum exactly to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Literal

from cleanroom.aggregate import ExactResult, NoisyPart, NoisyResult, Part
from cleanroom.dp.noise import Calibrated, Mechanism, add_noise, calibrate_gaussian, calibrate_laplace
from cleanroom.dp.accuracy import ci95
from cleanroom.dp.sensitivity import l1_sensitivity, l2_sensitivity
from cleanroom.dp.suppression import guard_values, suppress
from cleanroom.errors import BudgetError, InternalError, QueryError

MECHANISMS: tuple[Mechanism, ...] = ("laplace", "gaussian")


def split_epsilon(epsilon: Fraction, weights: Sequence[int]) -> list[Fraction]:
    """Shares of ``epsilon`` proportional to ``weights``; they sum to ``epsilon`` exactly.

    Why Fractions: a float split (0.1 / 3 * 3) drifts, and a drift upwards would spend budget
    nobody granted. Exact shares make the composition theorem hold to the last digit.
    """
    if not weights or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in weights):
        raise InternalError("internal.invariant", f"weights must be positive integers, got {list(weights)}")
    total = sum(weights)
    shares = [epsilon * w / total for w in weights]
    if sum(shares) != epsilon:  # exact arithmetic makes this unreachable; keep it as a tripwire
        raise InternalError("internal.invariant", "epsilon shares do not sum to epsilon")
    return shares


def release(
    exact: ExactResult,
    epsilon: Fraction,
    *,
    threshold: int,
    mechanism: Literal["laplace", "gaussian"] = "laplace",
    delta: Fraction | None = None,
) -> NoisyResult:
    """Noise every part of ``exact`` under ``epsilon`` (and ``delta`` for the Gaussian), then suppress.

    A cell is suppressed (``None``) when its guard's noisy value divided by the guard's unit is
    below ``threshold``. ``NoisyPart.sensitivity`` is the L1 sensitivity for the Laplace and the
    L2 sensitivity rounded up to an integer for the Gaussian (the scale uses the exact L2 value).
    """
    eps = _valid_epsilon(epsilon)
    _check_request(exact, threshold, mechanism, delta)
    weights = [p.weight for p in exact.parts]
    eps_shares = split_epsilon(eps, weights)
    delta_shares = split_epsilon(delta, weights) if delta is not None else [None] * len(weights)
    calibrated = [_calibrate(p, e, d, mechanism) for p, e, d in zip(exact.parts, eps_shares, delta_shares, strict=True)]
    noisy = {p.name: add_noise(c, p.values) for p, c in zip(exact.parts, calibrated, strict=True)}
    parts = [_noisy_part(p, c, e, noisy, exact, threshold) for p, c, e in zip(exact.parts, calibrated, eps_shares, strict=True)]
    return NoisyResult(
        template=exact.template,
        dimensions=list(exact.dimensions),
        parts=parts,
        epsilon=fraction_text(eps),
        threshold=threshold,
        meta=dict(exact.meta),
    )


def fraction_text(value: Fraction) -> str:
    """An exact fraction as ``'p/q'`` (always both parts, so readers parse one shape)."""
    return f"{value.numerator}/{value.denominator}"


def _calibrate(part: Part, epsilon: Fraction, delta: Fraction | None, mechanism: Mechanism) -> Calibrated:
    if mechanism == "laplace":
        return calibrate_laplace(l1_sensitivity(part.bounds), epsilon)
    if delta is None:  # _check_request makes this unreachable
        raise InternalError("internal.invariant", "gaussian without delta")
    return calibrate_gaussian(l2_sensitivity(part.bounds), epsilon, delta)


def _noisy_part(part: Part, cal: Calibrated, epsilon: Fraction, noisy: dict[str, list[int]], exact: ExactResult, threshold: int) -> NoisyPart:
    by_name = {p.name: p for p in exact.parts}
    guards, unit = guard_values(part, noisy, by_name)
    return NoisyPart(
        name=part.name,
        cells=list(part.cells),
        values=list(noisy[part.name]) if part.derived else suppress(noisy[part.name], guards, unit, threshold),
        unit=part.unit,
        mechanism=cal.mechanism,
        scale=cal.scale,
        sensitivity=_reported_sensitivity(cal),
        epsilon=fraction_text(epsilon),
        ci95=ci95(cal.mechanism, cal.scale),
        derived=part.derived,
        guard=part.guard,
    )


def _reported_sensitivity(cal: Calibrated) -> int:
    whole = int(cal.sensitivity)
    return whole if whole == cal.sensitivity else whole + 1


def _valid_epsilon(epsilon: Fraction) -> Fraction:
    """Only exact, positive epsilons: a float here would already have lost exactness."""
    if isinstance(epsilon, bool) or not isinstance(epsilon, Fraction | int):
        raise BudgetError("budget.invalid_epsilon", f"epsilon must be an exact Fraction, got {type(epsilon).__name__} {epsilon!r}")
    if epsilon <= 0:
        raise BudgetError("budget.invalid_epsilon", f"epsilon must be positive, got {epsilon}")
    return Fraction(epsilon)


def _check_request(exact: ExactResult, threshold: int, mechanism: str, delta: Fraction | None) -> None:
    if mechanism not in MECHANISMS:
        raise QueryError("query.invalid", f"unknown noise mechanism {mechanism!r}; use one of {list(MECHANISMS)}")
    if mechanism == "laplace" and delta is not None:
        raise QueryError("query.invalid", "the laplace mechanism is pure epsilon-DP: do not pass delta")
    if mechanism == "gaussian" and not (isinstance(delta, Fraction) and 0 < delta < 1):
        raise QueryError("query.invalid", f"the gaussian mechanism needs an exact delta in (0, 1), got {delta!r}")
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 0:
        raise InternalError("internal.invariant", f"threshold must be a non-negative integer, got {threshold!r}")
    names = [p.name for p in exact.parts]
    if not names or len(set(names)) != len(names):
        raise InternalError("internal.invariant", f"{exact.template}: parts must be non-empty with unique names, got {names}")


__all__ = ["MECHANISMS", "fraction_text", "release", "split_epsilon"]
