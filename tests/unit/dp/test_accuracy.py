"""Post-processed intervals: conservative by construction, and their coverage checked on real noise."""

from __future__ import annotations

import math
from fractions import Fraction

import opendp.prelude as dp
import pytest

from cleanroom.aggregate import Bounds, Part
from cleanroom.dp import accuracy, ci95, median_from_histogram, ratio_interval, release
from cleanroom.errors import InternalError
from dp_builders import exact

FAILURE = 1e-6


def hoeffding(n: int) -> float:
    return math.sqrt(math.log(1 / FAILURE) / (2 * n))


def test_ci95_matches_opendp() -> None:
    assert ci95("laplace", 2.0) == pytest.approx(6.4296, abs=1e-3)
    assert ci95("gaussian", 3.0) == dp.discrete_gaussian_scale_to_accuracy(3.0, 0.05)
    assert accuracy("laplace", 2.0, 0.01) > ci95("laplace", 2.0)


@pytest.mark.parametrize(("mechanism", "scale", "alpha"), [("uniform", 1.0, 0.05), ("laplace", 0.0, 0.05), ("laplace", 1.0, 1.5)])
def test_accuracy_rejects_nonsense(mechanism: str, scale: float, alpha: float) -> None:
    with pytest.raises(InternalError):
        accuracy(mechanism, scale, alpha)  # type: ignore[arg-type]


def test_ratio_interval_is_the_box_extremes() -> None:
    got = ratio_interval(40, 100, mechanism="laplace", numerator_scale=2.0, denominator_scale=2.0)
    a = math.floor(accuracy("laplace", 2.0, 0.025))
    assert got.estimate == pytest.approx(0.4)
    assert got.low == pytest.approx((40 - a) / (100 + a)) and got.high == pytest.approx((40 + a) / (100 - a))
    assert got.confidence == pytest.approx(0.95)


def test_ratio_interval_with_a_possibly_zero_denominator() -> None:
    got = ratio_interval(3, 2, mechanism="laplace", numerator_scale=5.0, denominator_scale=5.0, clip=None)
    assert got.low == 0.0 and got.high is None
    clipped = ratio_interval(3, 2, mechanism="laplace", numerator_scale=5.0, denominator_scale=5.0)
    assert (clipped.estimate, clipped.low, clipped.high) == (1.0, 0.0, 1.0)
    assert ratio_interval(5, -3, mechanism="laplace", numerator_scale=1.0, denominator_scale=1.0).estimate is None


def test_median_interval_brackets_the_estimate() -> None:
    edges = [0, 7, 14, 30, 60, 366]
    got = median_from_histogram([500, 2000, 3000, 1000, 300], edges, mechanism="laplace", scale=2.0)
    assert got.estimate is not None and got.low <= got.estimate <= (got.high or math.inf)
    assert (got.low, got.high) == (14.0, 30.0)  # the noise is tiny next to these counts


def test_median_of_an_empty_histogram() -> None:
    got = median_from_histogram([0, -3, None], [0, 1, 2, 3], mechanism="laplace", scale=1.0, threshold=5)
    assert got.estimate is None and (got.low, got.high) == (0.0, 3.0)


def test_median_needs_matching_edges() -> None:
    with pytest.raises(InternalError):
        median_from_histogram([1, 2], [0, 1], mechanism="laplace", scale=1.0)
    with pytest.raises(InternalError):
        median_from_histogram([1, 2], [0, 5, 3], mechanism="laplace", scale=1.0)


def test_ratio_interval_coverage_on_real_noise() -> None:
    """Many (numerator, denominator) pairs noised in one release: the interval covers >= 95%."""
    trials, num, den = 10_000, 37, 90
    part = Part(name="p", bounds=Bounds(kind="count", max_cells_per_person=2), cells=[(str(i),) for i in range(2 * trials)], values=[num, den] * trials)
    noisy = release(exact(part), Fraction(1, 2), threshold=0).part("p")  # scale 4
    vals = [v if v is not None else 0 for v in noisy.values]
    hits = 0
    for i in range(trials):
        iv = ratio_interval(vals[2 * i], vals[2 * i + 1], mechanism="laplace", numerator_scale=noisy.scale, denominator_scale=noisy.scale)
        hits += iv.low <= num / den <= (iv.high if iv.high is not None else math.inf)
    assert hits / trials >= 0.95 - hoeffding(trials)


def test_median_interval_coverage_on_real_noise() -> None:
    """Many noisy histograms of the same true days: the rank-uncertainty interval covers >= 95%."""
    edges = [0, 1, 2, 4, 7, 14, 30, 60, 366]
    true = [3, 5, 9, 14, 10, 6, 4, 2]  # median bucket [4, 7)
    trials, b = 2000, len(true)
    part = Part(name="h", bounds=Bounds(kind="count", max_cells_per_person=1), cells=[(str(i),) for i in range(b * trials)], values=true * trials)
    noisy = release(exact(part), Fraction(1, 2), threshold=0).part("h")  # scale 2
    hits = 0
    for i in range(trials):
        counts = [v if v is not None else 0 for v in noisy.values[b * i : b * (i + 1)]]
        iv = median_from_histogram(counts, edges, mechanism="laplace", scale=noisy.scale)
        hits += iv.low <= 4 and 7 <= (iv.high or math.inf)
    assert hits / trials >= 0.95 - hoeffding(trials)
