"""Intervals of shown numbers: coverage checked on real OpenDP noise, for the cells that are shown."""

from __future__ import annotations

import math
from fractions import Fraction

import opendp.prelude as dp
import pytest

from cleanroom.aggregate import Bounds, Part
from cleanroom.dp import accuracy, ci95, count_interval, noise_variance, release, share_interval
from cleanroom.dp.accuracy import expected_abs_error, half_width, noise_sum
from cleanroom.errors import InternalError
from dp_builders import exact

FAILURE = 1e-6


def hoeffding(n: int) -> float:
    return math.sqrt(math.log(1 / FAILURE) / (2 * n))


def test_ci95_is_the_central_interval_within_opendps_bound() -> None:
    assert accuracy("laplace", 2.0, 0.05) == pytest.approx(6.4296, abs=1e-3)
    assert accuracy("gaussian", 3.0, 0.05) == dp.discrete_gaussian_scale_to_accuracy(3.0, 0.05)
    for mechanism, scale in (("laplace", 2.0), ("laplace", 40.0), ("gaussian", 3.0)):
        assert 0 < ci95(mechanism, scale) <= accuracy(mechanism, scale, 0.05)  # type: ignore[arg-type]
    assert ci95("laplace", 0.001) == 0.0, "noise far below one person: an exact integer (OpenDP's bound says -inf)"


@pytest.mark.parametrize(("mechanism", "scale", "alpha"), [("uniform", 1.0, 0.05), ("laplace", 0.0, 0.05), ("laplace", 1.0, 1.5)])
def _noisy(values: list[int], epsilon: Fraction) -> tuple[list[int], float]:
    part = Part(name="p", bounds=Bounds(kind="count", max_cells_per_person=1), cells=[(str(i),) for i in range(len(values))], values=values, derived=True)
    noisy = release(exact(part), epsilon, threshold=0).part("p")
    return [int(v) for v in noisy.values if v is not None], noisy.scale  # derived: nothing suppressed


def test_noise_sum_has_the_variance_of_the_sum() -> None:
    for terms in (1, 3):
        noise = noise_sum("laplace", 2.0, terms)
        var = float(((noise.values.astype(float)) ** 2 * noise.pmf).sum())
        assert var == pytest.approx(terms * noise_variance("laplace", 2.0), rel=1e-6)
    assert expected_abs_error("laplace", 1.0) == pytest.approx(2 * math.exp(-1) / (1 - math.exp(-2)), rel=1e-6)
    assert half_width("laplace", 2.0) <= ci95("laplace", 2.0)


@pytest.mark.parametrize("truth", [14, 20, 30, 200])
def test_shown_counts_are_covered_at_every_size(truth: int) -> None:
    """Suppression on the value itself: intervals conditional on being shown cover ~95 % even just above the threshold."""
    values, scale = _noisy([truth] * 6000, Fraction(1, 4))  # scale 4, threshold 20
    shown = [v for v in values if v >= 20]
    hits = 0
    for v in shown:
        low, high = count_interval(v, mechanism="laplace", scale=scale, threshold=20)
        hits += low <= truth <= high
    assert len(shown) > 300
    assert 0.93 - hoeffding(len(shown)) <= hits / len(shown) <= 0.97 + hoeffding(len(shown))


def test_sums_of_cells_use_the_noise_of_the_sum() -> None:
    values, scale = _noisy([40, 25, 10] * 3000, Fraction(1, 2))
    hits = 0
    for i in range(3000):
        total = sum(values[3 * i : 3 * i + 3])
        low, high = count_interval(total, mechanism="laplace", scale=scale, terms=3)
        hits += low <= 75 <= high
    assert 0.93 - hoeffding(3000) <= hits / 3000 <= 0.97 + hoeffding(3000)


def test_share_intervals_lie_in_zero_one_and_cover() -> None:
    values, scale = _noisy([30, 70] * 4000, Fraction(1, 4))
    var = noise_variance("laplace", scale)
    hits = 0
    for i in range(4000):
        iv = share_interval(values[2 * i], values[2 * i + 1], var_x=var, var_y=var)
        assert 0.0 <= iv.low <= iv.high <= 1.0
        hits += iv.low <= 0.3 <= iv.high
    assert 0.93 - hoeffding(4000) <= hits / 4000 <= 0.97 + hoeffding(4000)


def test_share_interval_stays_finite_when_the_denominator_could_be_zero() -> None:
    iv = share_interval(3, -2, var_x=100.0, var_y=100.0)
    assert (iv.low, iv.high) == (0.0, 1.0) and iv.estimate == 1.0
    assert share_interval(-5, 3, var_x=1.0, var_y=1.0).estimate is None


def test_count_interval_refuses_a_value_that_was_not_shown() -> None:
    with pytest.raises(InternalError):
        count_interval(5, mechanism="laplace", scale=1.0, threshold=20)
