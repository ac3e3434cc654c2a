"""The noise that the release path adds has exactly the distribution it claims (Tumult-style).

For a fixed scale we release a long constant vector and compare the empirical CDF of the noise
with the exact CDF of the claimed distribution. The tolerance comes from the
Dvoretzky-Kiefer-Wolfowitz inequality, P(sup |F_n - F| > t) <= 2 exp(-2 n t^2), which holds for
any distribution (discrete ones too), with no seed: a correct sampler fails with probability
below 1e-6. The same test must *reject* the scale x0.7 and x1.3; n is chosen so that the distance
between those CDFs exceeds 2t, which makes a false acceptance less likely than 1e-6 as well.
Interval coverage is checked against the exact coverage with Hoeffding's bound at the same level.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction

import pytest

from cleanroom.aggregate import Bounds, NoisyPart, Part
from cleanroom.dp import release
from dp_builders import exact

FAILURE = 1e-6
CENTER = 10**7  # far from 0, so a threshold of 0 never suppresses a sample

Cdf = Callable[[int], float]


def tolerance(n: int) -> float:
    """DKW (and two-sided Hoeffding) half-width with false-failure probability FAILURE."""
    return math.sqrt(math.log(2 / FAILURE) / (2 * n))


def laplace_cdf(scale: float) -> Cdf:
    """P(X <= x) for the discrete Laplace with P(x) proportional to exp(-|x| / scale)."""
    p = math.exp(-1 / scale)
    return lambda x: p ** (-x) / (1 + p) if x < 0 else 1 - p ** (x + 1) / (1 + p)


def gaussian_cdf(sigma: float) -> Cdf:
    """P(X <= x) for the discrete Gaussian with P(x) proportional to exp(-x^2 / (2 sigma^2))."""
    span = int(40 * sigma) + 10
    weights = [math.exp(-(k * k) / (2 * sigma * sigma)) for k in range(-span, span + 1)]
    total, running, cdf = sum(weights), 0.0, {}
    for k, w in zip(range(-span, span + 1), weights, strict=True):
        running += w
        cdf[k] = running / total
    return lambda x: 0.0 if x < -span else 1.0 if x > span else cdf[x]


def sup_distance(samples: list[int], cdf: Cdf) -> float:
    """sup_x |F_n(x) - F(x)|; both are step functions on the integers, so integers suffice."""
    counts: dict[int, int] = {}
    for s in samples:
        counts[s] = counts.get(s, 0) + 1
    n, running, worst = len(samples), 0, 0.0
    for x in range(min(samples) - 1, max(samples) + 1):
        running += counts.get(x, 0)
        worst = max(worst, abs(running / n - cdf(x)))
    return worst


def noise_samples(n: int, epsilon: Fraction, bounds: Bounds, **kw: object) -> tuple[list[int], NoisyPart]:
    part = Part(name="v", bounds=bounds, cells=[(str(i),) for i in range(n)], values=[CENTER] * n)
    noisy = release(exact(part), epsilon, threshold=0, **kw).part("v")  # type: ignore[arg-type]
    return [v - CENTER for v in noisy.values if v is not None], noisy


def exact_coverage(cdf: Cdf, half_width: float) -> float:
    a = math.floor(half_width)
    return cdf(a) - cdf(-a - 1)


def check_distribution(samples: list[int], cdf_of: Callable[[float], Cdf], scale: float) -> None:
    t, claimed = tolerance(len(samples)), cdf_of(scale)
    assert sup_distance(samples, claimed) <= t, "the claimed scale is rejected"
    for wrong in (0.7 * scale, 1.3 * scale):
        wrong_cdf = cdf_of(wrong)
        gap = max(abs(claimed(x) - wrong_cdf(x)) for x in range(-int(6 * scale) - 2, int(6 * scale) + 2))
        assert gap > 2 * t, "test too weak to tell the scales apart: raise n"
        assert sup_distance(samples, cdf_of(wrong)) > t, f"a wrong scale {wrong} is accepted"


def check_coverage(samples: list[int], cdf: Cdf, half_width: float) -> None:
    expected = exact_coverage(cdf, half_width)
    observed = sum(abs(s) <= half_width for s in samples) / len(samples)
    assert 0.93 <= expected <= 0.97, "the central interval: close to 95 %, not a loose bound"
    assert abs(observed - expected) <= tolerance(len(samples))


N_FAST = 50_000


@pytest.fixture(scope="module")
def laplace_draw() -> tuple[list[int], NoisyPart]:
    return noise_samples(N_FAST, Fraction(1, 10), Bounds(kind="count", max_cells_per_person=1))


@pytest.fixture(scope="module")
def gaussian_draw() -> tuple[list[int], NoisyPart]:
    return noise_samples(N_FAST, Fraction(1, 2), Bounds(kind="count", max_cells_per_person=1), mechanism="gaussian", delta=Fraction(1, 10**6))


def test_laplace_noise_has_the_claimed_scale(laplace_draw: tuple[list[int], NoisyPart]) -> None:
    samples, part = laplace_draw
    assert part.scale == pytest.approx(10.0)
    check_distribution(samples, laplace_cdf, part.scale)


def test_laplace_interval_covers_95_percent(laplace_draw: tuple[list[int], NoisyPart]) -> None:
    samples, part = laplace_draw
    check_coverage(samples, laplace_cdf(part.scale), part.ci95)


def test_gaussian_noise_has_the_claimed_scale(gaussian_draw: tuple[list[int], NoisyPart]) -> None:
    samples, part = gaussian_draw
    check_distribution(samples, gaussian_cdf, part.scale)


def test_gaussian_interval_covers_95_percent(gaussian_draw: tuple[list[int], NoisyPart]) -> None:
    samples, part = gaussian_draw
    check_coverage(samples, gaussian_cdf(part.scale), part.ci95)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("epsilon", "bounds"),
    [
        (Fraction(1), Bounds(kind="count", max_cells_per_person=1)),  # scale 1: mostly 0 and +-1
        (Fraction(2, 7), Bounds(kind="count", max_cells_per_person=3)),  # scale 10.5
        (Fraction(1), Bounds(kind="credit", max_cells_per_person=2, per_person_total=1000)),  # scale 1000
        (Fraction(3, 10), Bounds(kind="sum", max_cells_per_person=2, max_rows_per_cell=2, lower=-3, upper=5)),
    ],
)
def test_laplace_many_scales(epsilon: Fraction, bounds: Bounds) -> None:
    samples, part = noise_samples(200_000, epsilon, bounds)
    check_distribution(samples, laplace_cdf, part.scale)
    check_coverage(samples, laplace_cdf(part.scale), part.ci95)


@pytest.mark.slow
@pytest.mark.parametrize(("epsilon", "delta", "k"), [(Fraction(1), Fraction(1, 10**9), 1), (Fraction(1, 10), Fraction(1, 10**6), 4), (Fraction(3), Fraction(1, 10**5), 2)])
def test_gaussian_many_scales(epsilon: Fraction, delta: Fraction, k: int) -> None:
    samples, part = noise_samples(200_000, epsilon, Bounds(kind="count", max_cells_per_person=k), mechanism="gaussian", delta=delta)
    check_distribution(samples, gaussian_cdf, part.scale)
    check_coverage(samples, gaussian_cdf(part.scale), part.ci95)
