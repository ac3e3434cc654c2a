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
# The Fieller pivot of a share is a mix of a few Laplace draws, whose 97.5 % point lies between the
# normal's 1.96 and a single Laplace's 2.12 standard deviations; 2.05 measured 94-96 % coverage
# for one to five draws per count (tests/unit/dp/test_accuracy.py, docs/accuracy.md).
Z_SHARE = 2.05
TAIL = 1e-12  # probability mass left out of a noise distribution's support (both tails together)
MAX_BINS = 4001  # a single draw's distribution is binned to at most this many grid points
NEGLIGIBLE = 1e-4  # a chance of not being shown this small changes coverage by less than 0.01 %


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
    upper: np.ndarray  # upper[i] = P(noise >= values[i]); upper[-1] = 0 (computed once: every shown number reads it)

    def sf(self, k: np.ndarray) -> np.ndarray:
        """Mid-p upper tail: P(noise > k) + P(noise = k) / 2, for grid-aligned ``k`` (vectorized)."""
        upper = self.upper
        idx = np.clip(np.searchsorted(self.values, k), 0, len(self.values))
        exact = (idx < len(self.values)) & (self.values[np.minimum(idx, len(self.values) - 1)] == k)
        at = np.where(exact, self.pmf[np.minimum(idx, len(self.pmf) - 1)], 0.0)
        return upper[idx] - at / 2

    def ge(self, k: np.ndarray) -> np.ndarray:
        """P(noise >= k) (vectorized, grid-aligned ``k``)."""
        return self.upper[np.clip(np.searchsorted(self.values, k), 0, len(self.values))]


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
    kept = pmf[first:last] / pmf[first:last].sum()
    upper = np.concatenate([np.cumsum(kept[::-1])[::-1], [0.0]])
    return NoiseSum(values=values[first:last], pmf=kept, step=step, upper=upper)


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
    e_lo, e_hi = central_cut(mechanism, scale, terms, alpha)
    plain = (float(value - e_hi), float(value - e_lo))
    if threshold is not None and value < threshold:
        raise InternalError("internal.invariant", "count_interval(threshold=...) is for shown values only")
    if threshold is None or float(noise.ge(_align(np.array([threshold - plain[0]]), noise.step))[0]) > 1 - NEGLIGIBLE:
        # Far above the threshold every plausible truth is shown almost surely: conditioning changes nothing.
        return (max(0.0, plain[0]), max(0.0, plain[1])) if value >= 0 else plain
    e = noise.values  # candidate noise values; the candidate truth is value - e
    upper = noise.sf(e)  # mid-p P(V >= value | x)
    lower = 1.0 - upper  # mid-p P(V <= value | x)
    a_low = a_up = np.full(len(e), alpha / 2)
    if threshold is not None:
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


@lru_cache(maxsize=1024)
def central_cut(mechanism: Mechanism, scale: float, terms: int = 1, alpha: float = ALPHA) -> tuple[int, int]:
    """The noise interval ``[e_lo, e_hi]`` of a sum of ``terms`` draws whose probability is CLOSEST to 1 - alpha.

    Why not "at least 1 - alpha": integer noise jumps in coverage (at scale 1, +-2 covers 92.7 %
    and +-3 covers 97.3 %); a cut one step wider on one side (-3..2) covers 95.0 %. The two tails
    stay within one grid step of each other.
    """
    noise = noise_sum(mechanism, scale, terms)
    n = len(noise.values)
    cdf = np.concatenate([[0.0], np.cumsum(noise.pmf)])  # cdf[k] = P(index < k)
    lows = np.arange(n)
    best: tuple[float, float, int, int] | None = None
    for shift in (0, 1):  # upper index mirrors the lower one, or one step less (one side one step wider)
        highs = n - 1 - lows - shift
        valid = highs >= lows
        covered = np.where(valid, cdf[np.clip(highs, 0, n - 1) + 1] - cdf[lows], -1.0)
        k = int(np.argmin(np.where(valid, np.abs(covered - (1 - alpha)), np.inf)))
        key = (abs(float(covered[k]) - (1 - alpha)), -float(covered[k]), int(lows[k]), int(highs[k]))
        if best is None or key < best:
            best = key
    assert best is not None
    return int(noise.values[best[2]]), int(noise.values[best[3]])


def _align(k: np.ndarray, step: int) -> np.ndarray:
    return k if step == 1 else np.round(k / step).astype(np.int64) * step


def share_interval(x: float, y: float, *, var_x: float, var_y: float, alpha: float = ALPHA) -> Interval:
    """A share ``x / (x + y)`` of two independent noisy counts, with a Fieller interval in [0, 1].

    The true share ``p`` satisfies ``E[x - p (x + y)] = 0``; the interval is every ``p`` in
    [0, 1] for which ``x - p (x + y)`` is within ``z`` standard deviations of 0, its variance being
    ``(1 - p)^2 var_x + p^2 var_y``: the roots of a quadratic, solved exactly. It uses the noise of
    the whole ratio (not two boxes), so it is narrower than a union bound and finite even when the
    denominator's noise could reach 0.
    """
    total = x + y
    estimate = None if total <= 0 else min(max(x / total, 0.0), 1.0)
    z2 = _z(alpha) ** 2
    a = total * total - z2 * (var_x + var_y)
    b = -2 * x * total + 2 * z2 * var_x
    c = x * x - z2 * var_x
    low, high = _quadratic_region(a, b, c)
    point = 0.0 if estimate is None else estimate
    if low is None or high is None:  # no share fits the noisy counts: the point itself
        low = high = point
    return Interval(estimate=estimate, low=min(low, point), high=max(high, point), confidence=1 - alpha)


def _quadratic_region(a: float, b: float, c: float) -> tuple[float | None, float | None]:
    """The hull, within [0, 1], of ``{p : a p^2 + b p + c <= 0}`` (None when it is empty)."""
    def inside(p: float) -> bool:
        return a * p * p + b * p + c <= 1e-12 * max(1.0, abs(c))

    points = [p for p in (0.0, 1.0) if inside(p)]
    if abs(a) < 1e-300:
        if abs(b) > 1e-300 and 0.0 <= -c / b <= 1.0:
            points.append(-c / b)
    else:
        disc = b * b - 4 * a * c
        if disc >= 0:
            root = math.sqrt(disc)
            points += [r for r in ((-b - root) / (2 * a), (-b + root) / (2 * a)) if 0.0 <= r <= 1.0]
    if not points:
        return None, None
    return min(points), max(points)


@lru_cache(maxsize=16)
def _z(alpha: float) -> float:
    return Z_SHARE if alpha == ALPHA else float(_inverse_normal(1 - alpha / 2))


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


def half_width(mechanism: Mechanism, scale: float, terms: int = 1) -> float:
    """The half-width of the (unconditional) 95 % interval of a sum of ``terms`` draws."""
    return _half_width(mechanism, scale, terms)


def _half_width(mechanism: Mechanism, scale: float, terms: int) -> float:
    lo, hi = central_cut(mechanism, scale, terms)
    return float(max(-lo, hi))


__all__ = [
    "ALPHA",
    "Interval",
    "NoiseSum",
    "accuracy",
    "central_cut",
    "ci95",
    "count_interval",
    "epsilon_for_half_width",
    "expected_abs_error",
    "half_width",
    "noise_sum",
    "noise_variance",
    "share_interval",
]
