"""Intervals for released numbers, as pure functions of noisy values and noise scales.

Why pure: an interval is post-processing. It may use only what was released (noisy values,
mechanism, scale), never a true count, so computing it costs no budget and leaks nothing.

"95% interval" means: before the noise was drawn, the probability that the released value ends
up further than ``ci95`` from the true value is at most 5%. For discrete noise the coverage is
*at least* 95% (integers cannot hit the boundary exactly). Derived quantities (ratios, medians)
combine several noisy values; their intervals split the 5% over the values they use (a union
bound), so they are conservative: wider than necessary, never narrower.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import opendp.prelude as dp
from pydantic import BaseModel, ConfigDict

from cleanroom.dp.noise import Mechanism, ensure_features
from cleanroom.errors import InternalError

ensure_features()


class Interval(BaseModel):
    """A post-processed estimate with its interval; ``estimate`` is None when not computable.

    ``high`` is None when the interval is unbounded above (a denominator that may be zero).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    estimate: float | None
    low: float
    high: float | None
    confidence: float


@lru_cache(maxsize=1024)
def accuracy(mechanism: Mechanism, scale: float, alpha: float) -> float:
    """Half-width ``a`` with P(|noise| >= a) <= alpha, from OpenDP's accuracy functions (memoized: pure)."""
    if not 0 < alpha < 1 or not scale > 0:
        raise InternalError("internal.invariant", f"accuracy needs scale > 0 and 0 < alpha < 1, got {scale}, {alpha}")
    if mechanism == "laplace":
        return float(dp.discrete_laplacian_scale_to_accuracy(float(scale), float(alpha)))
    if mechanism == "gaussian":
        return float(dp.discrete_gaussian_scale_to_accuracy(float(scale), float(alpha)))
    raise InternalError("internal.invariant", f"unknown mechanism {mechanism!r}")


def ci95(mechanism: Mechanism, scale: float) -> float:
    """Half-width of the 95% interval of one noisy value."""
    return accuracy(mechanism, scale, 0.05)


def ratio_interval(
    numerator: int,
    denominator: int,
    *,
    mechanism: Mechanism,
    numerator_scale: float,
    denominator_scale: float,
    alpha: float = 0.05,
    clip: tuple[float, float] | None = (0.0, 1.0),
) -> Interval:
    """Estimate and interval of a ratio of two noisy counts (e.g. a stage-to-stage conversion).

    Each count gets an interval at level alpha/2, so both hold together with probability at least
    1 - alpha; the ratio interval is the extreme ratios over that box. ``clip`` bounds what the
    true ratio can be (a conversion rate lies in [0, 1]) and is applied to all three numbers.
    """
    a_num = math.floor(accuracy(mechanism, numerator_scale, alpha / 2))
    a_den = math.floor(accuracy(mechanism, denominator_scale, alpha / 2))
    num_lo, num_hi = max(numerator - a_num, 0), max(numerator + a_num, 0)
    den_lo, den_hi = max(denominator - a_den, 0), max(denominator + a_den, 0)
    estimate = max(numerator, 0) / denominator if denominator > 0 else None
    low = num_lo / den_hi if den_hi > 0 else 0.0
    high = num_hi / den_lo if den_lo > 0 else None
    return _clipped(estimate, low, high, clip, 1 - alpha)


def _clipped(estimate: float | None, low: float, high: float | None, clip: tuple[float, float] | None, confidence: float) -> Interval:
    if clip is not None:
        lo, hi = clip
        estimate = None if estimate is None else min(max(estimate, lo), hi)
        low = min(max(low, lo), hi)
        high = hi if high is None else min(max(high, lo), hi)
    return Interval(estimate=estimate, low=low, high=high, confidence=confidence)


def median_from_histogram(
    counts: Sequence[int | None],
    edges: Sequence[int],
    *,
    mechanism: Mechanism,
    scale: float,
    threshold: int = 0,
    alpha: float = 0.05,
) -> Interval:
    """Median of a value (e.g. days between funnel stages) from a noisy histogram over public buckets.

    Bucket ``i`` holds values in ``[edges[i], edges[i+1])``. Negative noisy counts are read as 0;
    a suppressed bucket (None: its noisy count was below ``threshold``) as a noisy count somewhere
    in [0, threshold - 1]. The estimate interpolates linearly inside
    the bucket where the cumulative count reaches half the total. The interval comes from rank
    uncertainty: every true count lies within ``a`` of its noisy count simultaneously with
    probability >= 1 - alpha (``a`` at level alpha / buckets), and the true median bucket then lies
    between the first bucket that *could* hold the median and the first that *must*.
    """
    if len(edges) != len(counts) + 1 or list(edges) != sorted(edges) or not counts:
        raise InternalError("internal.invariant", f"{len(counts)} buckets need {len(counts) + 1} increasing edges")
    a = math.floor(accuracy(mechanism, scale, alpha / len(counts)))
    lows = [0 if c is None else max(c - a, 0) for c in counts]
    highs = [max(threshold - 1, 0) + a if c is None else max(c + a, 0) for c in counts]
    first_could, first_must = _first_bucket(highs, lows), _first_bucket(lows, highs)
    low = float(edges[0] if first_could is None else edges[first_could])
    high = float(edges[-1] if first_must is None else edges[first_must + 1])
    points = [0 if c is None else max(c, 0) for c in counts]
    return Interval(estimate=_interpolated_median(points, edges), low=low, high=high, confidence=1 - alpha)


def _first_bucket(below: Sequence[int], above: Sequence[int]) -> int | None:
    """First bucket b where sum(below[:b+1]) >= sum(above[b+1:]) (median at or before b)."""
    left, right = 0, sum(above)
    for b in range(len(below)):
        left += below[b]
        right -= above[b]
        if left > 0 and left >= right:
            return b
    return None


def _interpolated_median(counts: Sequence[int], edges: Sequence[int]) -> float | None:
    total = sum(counts)
    if total <= 0:
        return None
    half, running = total / 2, 0
    for i, c in enumerate(counts):
        if c > 0 and running + c >= half:
            return edges[i] + (half - running) / c * (edges[i + 1] - edges[i])
        running += c
    return float(edges[-1])  # unreachable: the cumulative count reaches the total


__all__ = ["Interval", "accuracy", "ci95", "median_from_histogram", "ratio_interval"]
