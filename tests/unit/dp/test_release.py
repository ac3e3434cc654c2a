"""The release path: exact epsilon split, calibration, guards, and suppression on noisy values."""

from __future__ import annotations

import ast
import inspect
from fractions import Fraction
from pathlib import Path

import opendp.prelude as dp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cleanroom.aggregate import Bounds, NoisyResult, Part
from cleanroom.dp import ci95, release, split_epsilon
from cleanroom.dp.noise import calibrate_gaussian, calibrate_laplace, zcdp_rho
from cleanroom.errors import BudgetError, InternalError, QueryError
from dp_builders import HUGE_EPSILON, count_part, exact


# --- epsilon split -----------------------------------------------------------------------------


@given(
    num=st.integers(1, 10**6),
    den=st.integers(1, 10**6),
    weights=st.lists(st.integers(1, 1000), min_size=1, max_size=12),
)
def test_split_is_exact_and_proportional(num: int, den: int, weights: list[int]) -> None:
    eps = Fraction(num, den)
    shares = split_epsilon(eps, weights)
    assert sum(shares) == eps
    assert all(s * weights[0] == shares[0] * w for s, w in zip(shares, weights, strict=True))


@pytest.mark.parametrize("weights", [[], [0], [1, -2], [True], [1.5]])
def test_split_rejects_bad_weights(weights: list[object]) -> None:
    with pytest.raises(InternalError):
        split_epsilon(Fraction(1), weights)  # type: ignore[arg-type]


def test_parts_spend_their_exact_share() -> None:
    parts = [count_part("a", [50] * 3), count_part("b", [50] * 3, weight=2), count_part("c", [50] * 3, weight=4)]
    noisy = release(exact(*parts), Fraction(7, 10), threshold=0)
    shares = [Fraction(p.epsilon) for p in noisy.parts]
    assert shares == [Fraction(1, 10), Fraction(2, 10), Fraction(4, 10)]
    assert sum(shares) == Fraction(noisy.epsilon) == Fraction(7, 10)


# --- calibration ---------------------------------------------------------------------------------


@pytest.mark.parametrize("sensitivity", [1, 3, 4, 1000, 2500])
@pytest.mark.parametrize("epsilon", [Fraction(1, 3), Fraction(1, 10), Fraction(7, 1000), Fraction(2), Fraction(123457, 1000000)])
def test_laplace_scale_never_below_sensitivity_over_epsilon(sensitivity: int, epsilon: Fraction) -> None:
    cal = calibrate_laplace(sensitivity, epsilon)
    assert Fraction(cal.scale) >= Fraction(sensitivity) / epsilon
    assert Fraction(cal.measurement.map(sensitivity)) <= epsilon
    assert cal.scale < float(Fraction(sensitivity) / epsilon) * (1 + 1e-12)  # and not wastefully larger


def test_release_reports_mechanism_scale_interval() -> None:
    part = Part(name="amount", bounds=Bounds(kind="sum", max_cells_per_person=2, max_rows_per_cell=3, lower=-5, upper=100), cells=[("x",)], values=[10**6])
    noisy = release(exact(part), Fraction(1, 2), threshold=0).part("amount")
    assert (noisy.mechanism, noisy.sensitivity) == ("laplace", 600)
    assert noisy.scale == pytest.approx(1200) and noisy.scale >= 1200
    assert noisy.ci95 == ci95("laplace", noisy.scale) <= dp.discrete_laplacian_scale_to_accuracy(noisy.scale, 0.05)


def test_gaussian_meets_its_epsilon_delta() -> None:
    part = count_part("persons", [10**6] * 4, k=4)
    noisy = release(exact(part), Fraction(1), threshold=0, mechanism="gaussian", delta=Fraction(1, 10**6)).part("persons")
    assert noisy.mechanism == "gaussian" and noisy.sensitivity == 2  # sqrt(4)
    meas = calibrate_gaussian(2.0, Fraction(1), Fraction(1, 10**6)).measurement
    assert dp.c.make_zCDP_to_approxDP(meas).map(2.0).epsilon(1e-6) <= 1.0
    assert noisy.ci95 == ci95("gaussian", noisy.scale)


@pytest.mark.parametrize(("eps", "delta"), [(Fraction(1), Fraction(1, 10**6)), (Fraction(1, 10), Fraction(1, 10**9)), (Fraction(5), Fraction(1, 100))])
def test_zcdp_conversion_is_the_bun_steinke_bound(eps: Fraction, delta: Fraction) -> None:
    import math

    rho = zcdp_rho(eps, delta)
    implied = rho + 2 * math.sqrt(rho * math.log(1 / float(delta)))
    assert implied <= eps and implied == pytest.approx(float(eps), rel=1e-9)


# --- request validation: no path to exact values ------------------------------------------------


def test_release_has_no_way_to_skip_noise() -> None:
    assert list(inspect.signature(release).parameters) == ["exact", "epsilon", "threshold", "mechanism", "delta"]


def test_small_epsilon_really_adds_noise() -> None:
    noisy = release(exact(count_part("p", [1000] * 200)), Fraction(1, 10), threshold=0).part("p")
    assert sum(v != 1000 for v in noisy.values) > 150  # scale 10: P(noise == 0) is about 0.05


@pytest.mark.parametrize("eps", [Fraction(0), Fraction(-1), 0.5, "1", True, None])
def test_bad_epsilon_is_rejected(eps: object) -> None:
    with pytest.raises(BudgetError) as err:
        release(exact(count_part("p", [1])), eps, threshold=0)  # type: ignore[arg-type]
    assert err.value.code == "budget.invalid_epsilon"


@pytest.mark.parametrize(
    ("mechanism", "delta"),
    [("laplace", Fraction(1, 10**6)), ("gaussian", None), ("gaussian", Fraction(0)), ("gaussian", Fraction(1)), ("gaussian", 1e-6), ("uniform", None)],
)
def test_mechanism_and_delta_must_agree(mechanism: str, delta: object) -> None:
    with pytest.raises(QueryError) as err:
        release(exact(count_part("p", [1])), Fraction(1), threshold=0, mechanism=mechanism, delta=delta)  # type: ignore[arg-type]
    assert err.value.code == "query.invalid"


def test_duplicate_part_names_are_a_bug() -> None:
    with pytest.raises(InternalError):
        release(exact(count_part("p", [1]), count_part("p", [2])), Fraction(1), threshold=0)


def test_dp_package_uses_no_randomness_but_opendp(repo: Path) -> None:
    """Only OpenDP draws noise. numpy may do the deterministic interval arithmetic (accuracy.py) but never ``.random``."""
    banned = {"random", "secrets", "numpy.random", "os"}
    for path in (repo / "cleanroom" / "dp").rglob("*.py"):
        tree = ast.parse(path.read_text())
        docstrings = {id(n.body[0].value) for n in ast.walk(tree) if isinstance(n, ast.Module | ast.FunctionDef | ast.ClassDef) and n.body and isinstance(n.body[0], ast.Expr)}
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not banned & set(names), f"{path.name} imports {names}"
            assert path.name == "accuracy.py" or "numpy" not in names, f"{path.name}: only accuracy.py may use numpy"
            assert not (isinstance(node, ast.Attribute) and node.attr in ("random", "default_rng")), f"{path.name}: .{node.attr}"
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                assert "random" not in node.value.lower(), f"{path.name}: {node.value!r}"


# --- suppression ---------------------------------------------------------------------------------


def test_self_guarded_cells_below_threshold_become_none_not_zero() -> None:
    noisy = release(exact(count_part("persons", [100, 9, 10, 0])), HUGE_EPSILON, threshold=10).part("persons")
    assert noisy.values == [100, None, 10, None]


def test_guard_part_decides_for_guarded_part() -> None:
    persons = count_part("persons", [3, 50, 10])
    amount = Part(
        name="amount",
        bounds=Bounds(kind="sum", max_cells_per_person=1, lower=0, upper=10**6),
        cells=[("c0",), ("c1",), ("c2",)],
        values=[900_000, 5, 10],  # large sum in a tiny group, tiny sum in a large one
        guard="persons",
        guard_cells=[0, 1, 2],
    )
    result = release(exact(persons, amount), HUGE_EPSILON * 10**6, threshold=10)
    assert result.part("persons").values == [None, 50, 10]
    assert result.part("amount").values == [None, 5, 10]


def test_guard_cells_map_many_to_one() -> None:
    persons = count_part("persons", [4, 40])
    credit = Part(
        name="credit",
        bounds=Bounds(kind="credit", max_cells_per_person=2, per_person_total=1000),
        cells=[("x", "c0"), ("y", "c0"), ("x", "c1"), ("y", "c1")],
        values=[60_000, 0, 1_000, 2_000],
        unit=1000,
        guard="persons",
        guard_cells=[0, 0, 1, 1],
    )
    result = release(exact(persons, credit), HUGE_EPSILON * 10**3, threshold=5)
    assert result.part("credit").values == [None, None, 1000, 2000]


def test_self_guarded_credit_part_compares_in_persons() -> None:
    credit = Part(name="credit", bounds=Bounds(kind="credit", max_cells_per_person=2, per_person_total=1000), cells=[("a",), ("b",)], values=[9_999, 10_000], unit=1000)
    assert release(exact(credit), HUGE_EPSILON * 10**3, threshold=10).part("credit").values == [None, 10_000]


def test_suppression_is_decided_on_noisy_counts() -> None:
    """Every true count is above the threshold; only noise can suppress a cell, and it does."""
    n, threshold = 4000, 10
    persons = count_part("persons", [threshold + 2] * n)
    amount = Part(
        name="amount", bounds=Bounds(kind="sum", max_cells_per_person=1, lower=0, upper=10),
        cells=persons.cells, values=[10**6] * n, guard="persons", guard_cells=list(range(n)),
    )
    result = release(exact(persons, amount), Fraction(1, 2), threshold=threshold)  # scale 4 per part
    guard, guarded = result.part("persons").values, result.part("amount").values
    for g, v in zip(guard, guarded, strict=True):
        assert (g is None) == (v is None)
        assert g is None or g >= threshold
    # P(noise <= -3) at scale 4 is about 0.26: a decision on true counts would suppress nothing.
    assert 0.15 < sum(g is None for g in guard) / n < 0.4
    assert 0 not in guarded


def test_guard_errors_are_bugs() -> None:
    persons = count_part("persons", [1, 2])
    missing = count_part("x", [1, 2], guard="nope", guard_cells=[0, 1])
    outside = count_part("y", [1, 2], guard="persons", guard_cells=[0, 2])
    not_a_count = Part(name="z", bounds=Bounds(kind="sum", max_cells_per_person=1), cells=[("a",), ("b",)], values=[1, 2])
    guarded_by_sum = count_part("w", [1, 2], guard="z", guard_cells=[0, 1])
    for bad in ([persons, missing], [persons, outside], [not_a_count, guarded_by_sum]):
        with pytest.raises(InternalError):
            release(exact(*bad), Fraction(1), threshold=1)


def test_result_is_the_noisy_contract() -> None:
    result = release(exact(count_part("p", [20, 30])), Fraction(1), threshold=0)
    assert isinstance(result, NoisyResult)
    again = NoisyResult.model_validate_json(result.model_dump_json())
    assert again == result and result.epsilon == "1/1"
