"""Noise, from OpenDP only: the discrete Laplace (pure DP) and the discrete Gaussian (zCDP).

Why integers: every aggregate cleanroom releases is an integer (persons, whole euros, days,
milli-credits), and OpenDP's integer samplers are exact, so no floating-point attack (Mironov
2012) applies. Why OpenDP only: its samplers draw from a CSPRNG and are proven; cleanroom never
calls ``random``, numpy's generators or SQL ``random()``.

Calibration rounds *towards more noise*. A scale computed in floating point can land one ulp
below the exact ``sensitivity / epsilon``; we step it up until OpenDP's own privacy map (which
also rounds conservatively) confirms the part's budget, and then check that map once more as a
guard: a failure there is a bug (``internal.invariant``), never something to retry around.

Gaussian budgets are stated as (epsilon, delta) and converted to rho-zCDP with the standard bound
of Bun & Steinke (2016, Prop. 1.3): rho-zCDP implies (rho + 2*sqrt(rho*ln(1/delta)), delta)-DP,
so the largest admissible rho is ``eps^2 / (sqrt(ln(1/delta) + eps) + sqrt(ln(1/delta)))^2``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from typing import Literal

import opendp.prelude as dp

from cleanroom.errors import InternalError

Mechanism = Literal["laplace", "gaussian"]

# Features that would trade away the exactness or the trust model of the samplers.
FORBIDDEN_FEATURES = frozenset({"floating-point", "honest-but-curious", "idealized-numerics"})
MAX_NUDGES = 64


def ensure_features() -> None:
    """Enable OpenDP's ``contrib`` and refuse to run if an unsafe feature is on in this process."""
    dp.enable_features("contrib")
    unsafe = FORBIDDEN_FEATURES & set(dp.GLOBAL_FEATURES)  # type: ignore[attr-defined]
    if unsafe:
        raise InternalError("internal.invariant", f"unsafe OpenDP features enabled: {sorted(unsafe)}")


ensure_features()


@dataclass(frozen=True)
class Calibrated:
    """A measurement ready to noise one vector, with the numbers every release reports."""

    mechanism: Mechanism
    scale: float
    sensitivity: float
    measurement: dp.Measurement = field(repr=False, compare=False)


@lru_cache(maxsize=512)
def _laplace(scale: float) -> dp.Measurement:
    space = dp.vector_domain(dp.atom_domain(T="i64")), dp.l1_distance(T="i64")
    return space >> dp.m.then_laplace(scale)


@lru_cache(maxsize=512)
def _gaussian(scale: float) -> dp.Measurement:
    # f64 L2 distance over i64 atoms: an L2 sensitivity such as sqrt(4 cells) need not be an
    # integer, and an i64 metric would force rounding it up to the next integer (wasted budget).
    space = dp.vector_domain(dp.atom_domain(T="i64")), dp.l2_distance(T="f64")
    return space >> dp.m.then_gaussian(scale)


def _float_up(value: Fraction) -> float:
    """The smallest float not below ``value``."""
    out = float(value)
    return math.nextafter(out, math.inf) if Fraction(out) < value else out


def _nudge_until(scale: float, fits: _Fits) -> float:
    """Step ``scale`` up one ulp at a time until the privacy map fits the budget."""
    for _ in range(MAX_NUDGES):
        if fits(scale):
            return scale
        scale = math.nextafter(scale, math.inf)
    raise InternalError("internal.invariant", f"could not calibrate a scale near {scale}")


class _Fits:
    """Does the measurement at a given scale stay within its budget? (a named predicate)"""

    def __init__(self, mechanism: Mechanism, sensitivity: float, budget: float | Fraction) -> None:
        self.mechanism, self.sensitivity, self.budget = mechanism, sensitivity, budget

    def __call__(self, scale: float) -> bool:
        meas = _laplace(scale) if self.mechanism == "laplace" else _gaussian(scale)
        return bool(Fraction(meas.map(self.sensitivity)) <= Fraction(self.budget))


def calibrate_laplace(sensitivity: int, epsilon: Fraction) -> Calibrated:
    """Discrete Laplace with scale = sensitivity / epsilon (rounded up), guarded by OpenDP's map."""
    _require_positive(sensitivity, epsilon)
    scale = _nudge_until(_float_up(Fraction(sensitivity) / epsilon), _Fits("laplace", sensitivity, epsilon))
    meas = _laplace(scale)
    if not Fraction(meas.map(sensitivity)) <= epsilon:
        raise InternalError("internal.invariant", f"laplace scale {scale} spends more than epsilon {epsilon}")
    return Calibrated("laplace", scale, float(sensitivity), meas)


def zcdp_rho(epsilon: Fraction, delta: Fraction) -> float:
    """The largest rho whose zCDP guarantee implies (epsilon, delta)-DP (Bun & Steinke 2016)."""
    log_term = math.log(1 / float(delta))
    rho = float(epsilon) ** 2 / (math.sqrt(log_term + float(epsilon)) + math.sqrt(log_term)) ** 2
    while rho + 2 * math.sqrt(rho * log_term) > epsilon:  # never round the guarantee up
        rho = math.nextafter(rho, 0.0)
    return rho


def calibrate_gaussian(l2: float, epsilon: Fraction, delta: Fraction) -> Calibrated:
    """Discrete Gaussian with the scale that makes it rho-zCDP for this part's (epsilon, delta)."""
    _require_positive(l2, epsilon)
    rho = zcdp_rho(epsilon, delta)
    start = _float_up(Fraction(l2) / Fraction(math.sqrt(2 * rho)))
    scale = _nudge_until(start, _Fits("gaussian", l2, rho))
    meas = _gaussian(scale)
    approx_eps = dp.c.make_zCDP_to_approxDP(meas).map(l2).epsilon(float(delta))
    if not (Fraction(meas.map(l2)) <= Fraction(rho) and Fraction(approx_eps) <= epsilon):
        raise InternalError("internal.invariant", f"gaussian scale {scale} exceeds ({epsilon}, {delta})")
    return Calibrated("gaussian", scale, l2, meas)


def add_noise(calibrated: Calibrated, values: Sequence[int]) -> list[int]:
    """Noise a vector of exact integers; the result has the same length, in the same order."""
    noisy = calibrated.measurement([int(v) for v in values])
    if len(noisy) != len(values):
        raise InternalError("internal.invariant", f"noise returned {len(noisy)} values for {len(values)}")
    return [int(v) for v in noisy]


def _require_positive(sensitivity: float, epsilon: Fraction) -> None:
    if not (sensitivity > 0 and epsilon > 0):
        raise InternalError("internal.invariant", f"calibration needs sensitivity > 0 and epsilon > 0, got {sensitivity}, {epsilon}")


__all__ = ["Calibrated", "Mechanism", "add_noise", "calibrate_gaussian", "calibrate_laplace", "ensure_features", "zcdp_rho"]
