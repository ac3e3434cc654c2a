"""Intervals for released numbers: the one module that owns interval arithmetic.

Why pure functions of released values: an interval is post-processing. It may use only what
was released (noisy values, mechanism, scale, the public threshold), never a true count, so
computing it costs no budget and leaks nothing.

Three kinds of number reach an analyst, and each gets the interval that is honest for it:

- **A count** that is a sum of ``terms`` noisy cells of one part (a partition cell, or a total
  derived from several). Its noise is the sum of ``terms`` independent draws; its distribution
  is computed exactly (discrete convolution, :class:`NoiseSum`).
- **A count shown only because it passed the threshold.** Deciding suppression on the released
  value itself biases what is shown: a small true count is shown only when its noise was
  positive. The interval is therefore computed *conditional on being shown* (test inversion of
  the noise distribution truncated at the threshold, :func:`count_interval`), so 95 % of the
  intervals of shown values hold their true value at every true size, the smallest included
  (docs/decisions/0005-honest-intervals.md).
- **A share** ``x / (x + y)`` of two independent noisy counts (a conversion, a financed share, a
  match rate): a Fieller interval for the whole ratio (:func:`share_interval`), from the noise of
  both counts together rather than two separate 95 % boxes, clipped to [0, 1] and always finite.

Tails use the mid-p rule (half the probability of the observed value on each side): with
integer noise no interval covers exactly 95 %; mid-p keeps coverage close to it instead of
rounding every interval up to 97-99 %.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import opendp.prelude as dp
from pydantic import BaseModel, ConfigDict

from cleanroom.dp.noise import Mechanism, ensure_features
from cleanroom.errors import InternalError

ensure_features()

ALPHA = 0.05
Z95 = 1.959963984540054
TAIL = 1e-12  # probability mass left out of a noise distribution's support (both tails together)
MAX_BINS = 4001  # a single draw's distribution is binned to at most this many grid points


class Interval(BaseModel):
    """A post-processed estimate with its 95 % interval; ``estimate`` is None when not computable."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    estimate: float | None
    low: float
    high: float
    confidence: float = 1 - ALPHA


@lru_cache(maxsize=1024)
def accuracy(mechanism: Mechanism, scale: float, alpha: float) -> float:
    """Half-width ``a`` with P(|noise| >= a) <= alpha for ONE draw, from OpenDP's accuracy functions."""
    if not 0 < alpha < 1 or not scale > 0:
        raise InternalError("internal.invariant", f"accuracy needs scale > 0 and 0 < alpha < 1, got {scale}, {alpha}")
    if mechanism == "laplace":
        return float(dp.discrete_laplacian_scale_to_accuracy(float(scale), float(alpha)))
    if mechanism == "gaussian":
        return float(dp.discrete_gaussian_scale_to_accuracy(float(scale), float(alpha)))
    raise InternalError("internal.invariant", f"unknown mechanism {mechanism!r}")


def ci95(mechanism: Mechanism, scale: float) -> float:
    """Half-width of the central 95 % interval of one noisy value, from the noise distribution itself.

    OpenDP's :func:`accuracy` is a bound (coverage at least 95 %, often 97-99 % for integer noise,
    and -inf for scales far below one); this is the interval the release path shows.
    """
    return _half_width(mechanism, scale, 1)


def noise_variance(mechanism: Mechanism, scale: float) -> float:
    """Variance of one draw: discrete Laplace ``2q / (1 - q)^2`` with ``q = exp(-1/scale)``; Gaussian ~ scale^2."""
    if mechanism == "laplace":
        q = math.exp(-1.0 / scale)
        return 2.0 * q / (1.0 - q) ** 2
    return float(scale) ** 2


def expected_abs_error(mechanism: Mechanism, scale: float, terms: int = 1) -> float:
    """Mean absolute error of a sum of ``terms`` draws (exact, from the distribution): the ideal MAE."""
    noise = noise_sum(mechanism, scale, terms)
    return float(np.sum(np.abs(noise.values) * noise.pmf))


@dataclass(frozen=True)
class NoiseSum:
    """The distribution of the sum of ``terms`` independent draws, on an integer grid of ``step``.

    ``values[i]`` is a noise value (in the part's integer units) and ``pmf[i]`` its probability.
    For scales up to a few hundred the grid is every integer (exact); larger scales (milli-credits)
    are binned to ``step`` so a sum of many draws stays a short vector.
    """

    values: np.ndarray
    pmf: np.ndarray
    step: int

    def sf(self, k: np.ndarray) -> np.ndarray:
        """Mid-p upper tail: P(noise > k) + P(noise = k) / 2, for grid-aligned ``k`` (vectorized)."""
        upper = np.concatenate([np.cumsum(self.pmf[::-1])[::-1], [0.0]])  # upper[i] = P(noise >= values[i])
        idx = np.clip(np.searchsorted(self.values, k), 0, len(self.values))
        exact = (idx < len(self.values)) & (self.values[np.minimum(idx, len(self.values) - 1)] == k)
        at = np.where(exact, self.pmf[np.minimum(idx, len(self.pmf) - 1)], 0.0)
        return upper[idx] - at / 2

    def ge(self, k: np.ndarray) -> np.ndarray:
        """P(noise >= k) (vectorized, grid-aligned ``k``)."""
        upper = np.concatenate([np.cumsum(self.pmf[::-1])[::-1], [0.0]])
        return upper[np.clip(np.searchsorted(self.values, k), 0, len(self.values))]


@lru_cache(maxsize=256)
def noise_sum(mechanism: Mechanism, scale: float, terms: int) -> NoiseSum:
    """The distribution of a sum of ``terms`` draws (memoized: pure in its arguments)."""
    if terms < 1 or not scale > 0:
        raise InternalError("internal.invariant", f"noise_sum needs terms >= 1 and scale > 0, got {terms}, {scale}")
    reach = _support(mechanism, scale)
    step = max(1, math.ceil(2 * reach / MAX_BINS))
    if step == 1:  # every integer, exactly
        base = np.arange(-reach, reach + 1, dtype=np.int64)
        single = _pmf(mechanism, scale, base)
    else:  # bins of `step` integers centred on multiples of step; at these scales the noise is continuous to within 1/step
        half = reach // step + 1
        base = np.arange(-half, half + 1, dtype=np.int64) * step
        single = np.diff(_cdf(mechanism, scale, np.append(base - step / 2, base[-1] + step / 2)))
        single = single / single.sum()
    pmf = single
    for _ in range(terms - 1):
        pmf = np.convolve(pmf, single)
    lo = base[0] * terms
    values = lo + np.arange(len(pmf), dtype=np.int64) * step
    keep = pmf > TAIL / (10 * len(pmf))
    first, last = int(np.argmax(keep)), len(keep) - int(np.argmax(keep[::-1]))
    return NoiseSum(values=values[first:last], pmf=pmf[first:last] / pmf[first:last].sum(), step=step)


def _support(mechanism: Mechanism, scale: float) -> int:
    """A half-width outside which one draw falls with probability below ``TAIL``."""
    if mechanism == "laplace":
        return int(math.ceil(scale * math.log(2 / TAIL))) + 1
    return int(math.ceil(scale * math.sqrt(2 * math.log(2 / TAIL)))) + 1


def _cdf(mechanism: Mechanism, scale: float, x: np.ndarray) -> np.ndarray:
    """The continuous CDF the noise approaches at large scales (Laplace of scale ``scale``, or a normal)."""
    if mechanism == "laplace":
        return np.where(x < 0, 0.5 * np.exp(np.minimum(x, 0) / scale), 1 - 0.5 * np.exp(-np.maximum(x, 0) / scale))
    from math import erf, sqrt

    return np.array([0.5 * (1 + erf(v / (scale * sqrt(2)))) for v in x])


def _pmf(mechanism: Mechanism, scale: float, ks: np.ndarray) -> np.ndarray:
    if mechanism == "laplace":
        log_w = -np.abs(ks) / scale
    else:
        log_w = -(ks.astype(float) ** 2) / (2 * scale**2)
    w = np.exp(log_w - log_w.max())
    return w / w.sum()


def count_interval(value: int, *, mechanism: Mechanism, scale: float, terms: int = 1, threshold: int | None = None,
                   alpha: float = ALPHA) -> tuple[float, float]:
    """The 95 % interval ``[low, high]`` (value units) of a noisy count that is a sum of ``terms`` draws.

    With ``threshold`` the value was shown only because it reached it (``value >= threshold``),
    and the interval is conditional on that: the true counts ``x`` for which the observed value
    is not in either ``alpha/2`` tail of the noise distribution truncated to ``x + noise >=
    threshold``. Without it, the central interval of the noise. ``low`` is not below 0 unless the noisy value is.
    """
    noise = noise_sum(mechanism, scale, terms)
    e = noise.values  # candidate noise values; the candidate truth is value - e
    upper = noise.sf(e)  # mid-p P(V >= value | x)
    lower = 1.0 - upper  # mid-p P(V <= value | x)
    a_low = a_up = np.full(len(e), alpha / 2)
    if threshold is not None:
        if value < threshold:
            raise InternalError("internal.invariant", "count_interval(threshold=...) is for shown values only")
        at = _align(threshold - value + e, noise.step)
        shown = np.maximum(noise.ge(at), 1e-300)  # P(V >= threshold | x)
        upper = upper / shown
        lower = (shown - noise.sf(e)) / shown
        # Where even the smallest shown value is not in the lower alpha/2 tail, that tail can
        # never reject: give its alpha to the upper tail, or coverage would be 97.5 % there.
        floor = (noise.ge(at) - noise.ge(at + noise.step)) / 2 / shown
        blocked = floor >= alpha / 2
        a_low = np.where(blocked, 0.0, alpha / 2)
        a_up = np.where(blocked, alpha, alpha / 2)
    ok = (upper > a_up) & (lower > a_low)
    if not ok.any():  # unreachable for a proper distribution; keep a safe answer
        return max(0.0, float(value - e[-1])), float(value - e[0])
    accepted = e[ok]
    low, high = float(value - accepted.max()), float(value - accepted.min())
    # True counts and sums of non-negative measures are >= 0; a negative noisy value keeps its plain interval.
    return (max(0.0, low), max(0.0, high)) if value >= 0 else (low, high)


def _align(k: np.ndarray, step: int) -> np.ndarray:
    return k if step == 1 else np.round(k / step).astype(np.int64) * step


def share_interval(x: float, y: float, *, var_x: float, var_y: float, alpha: float = ALPHA) -> Interval:
    """A share ``x / (x + y)`` of two independent noisy counts, with a Fieller interval in [0, 1].

    The true share ``p`` satisfies ``E[x - p (x + y)] = 0``; the interval is every ``p`` in
    [0, 1] for which ``x - p (x + y)`` is within ``z`` standard deviations of 0, its variance being
    ``(1 - p)^2 var_x + p^2 var_y``. It uses the noise of the whole ratio (not two boxes), so it is
    narrower than a union bound and finite even when the denominator's noise could reach 0.
    """
    total = x + y
    estimate = None if total <= 0 else min(max(x / total, 0.0), 1.0)
    z = _z(alpha)
    p = np.linspace(0.0, 1.0, 4001)
    inside = (x - p * total) ** 2 <= z * z * ((1 - p) ** 2 * var_x + p**2 * var_y)
    if not inside.any():
        point = 0.0 if estimate is None else estimate
        return Interval(estimate=estimate, low=point, high=point, confidence=1 - alpha)
    return Interval(estimate=estimate, low=float(p[inside].min()), high=float(p[inside].max()), confidence=1 - alpha)


@lru_cache(maxsize=16)
def _z(alpha: float) -> float:
    return Z95 if alpha == ALPHA else float(_inverse_normal(1 - alpha / 2))


def _inverse_normal(q: float) -> float:
    lo, hi = 0.0, 10.0
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if 0.5 * math.erfc(-mid / math.sqrt(2)) < q else (lo, mid)
    return (lo + hi) / 2


def epsilon_for_half_width(mechanism: Mechanism, sensitivity_per_share: float, terms: int, half_width: float) -> float:
    """Smallest epsilon share (to 1e-4) whose scale ``sensitivity / epsilon`` gives a 95 % half-width <= ``half_width``.

    Used by ``explain`` to say what a target accuracy would cost; never on a release path.
    """
    lo, hi = 1e-3, 1e3
    if _half_width(mechanism, sensitivity_per_share / hi, terms) > half_width:
        return math.inf
    for _ in range(30):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if _half_width(mechanism, sensitivity_per_share / mid, terms) > half_width else (lo, mid)
    return hi


def count_interval_bounds(noise: NoiseSum, alpha: float = ALPHA) -> tuple[float, float]:
    """The central mid-p interval of the noise itself: ``value - high <= truth <= value - low``."""
    sf = noise.sf(noise.values)
    ok = (sf > alpha / 2) & (1 - sf > alpha / 2)
    return float(noise.values[ok].min()), float(noise.values[ok].max())


def half_width(mechanism: Mechanism, scale: float, terms: int = 1) -> float:
    """The half-width of the (unconditional) 95 % interval of a sum of ``terms`` draws."""
    return _half_width(mechanism, scale, terms)


def _half_width(mechanism: Mechanism, scale: float, terms: int) -> float:
    lo, hi = count_interval_bounds(noise_sum(mechanism, scale, terms))
    return max(-lo, hi)


__all__ = [
    "ALPHA",
    "Interval",
    "NoiseSum",
    "accuracy",
    "ci95",
    "count_interval",
    "epsilon_for_half_width",
    "expected_abs_error",
    "half_width",
    "noise_sum",
    "noise_variance",
    "share_interval",
]
