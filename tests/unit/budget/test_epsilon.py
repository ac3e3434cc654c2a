"""Epsilon is exact: parsed into integer micro-epsilon, or refused with budget.invalid_epsilon."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from cleanroom.budget import Epsilon
from cleanroom.errors import BudgetError


@pytest.mark.parametrize(
    ("value", "micro"),
    [(0.1, 100_000), ("0.25", 250_000), (Fraction(1, 4), 250_000), (1, 1_000_000), ("1e-6", 1), (Decimal("2.5"), 2_500_000), (" 3 ", 3_000_000), (0.000001, 1)],
)
def test_parse(value: object, micro: int) -> None:
    assert Epsilon.parse(value).micro == micro


@pytest.mark.parametrize(
    "value",
    [0, -1, "0", float("nan"), float("inf"), float("-inf"), "nan", "Infinity", 1e-9, "0.0000001", "abc", "", Fraction(1, 3), True, None, [1], 10**7, 1e300],
)
def test_invalid_epsilon_is_refused(value: object) -> None:
    with pytest.raises(BudgetError) as err:
        Epsilon.parse(value)
    assert err.value.code == "budget.invalid_epsilon"


def test_zero_only_when_allowed() -> None:
    assert Epsilon.parse(0, allow_zero=True) == Epsilon.zero()
    with pytest.raises(BudgetError):
        Epsilon.parse(-0.5, allow_zero=True)


def test_ten_tenths_are_exactly_one() -> None:
    total = Epsilon.zero()
    for _ in range(10):
        total = total + Epsilon.parse(0.1)
    assert total == Epsilon.parse(1) and str(total) == "1"
    assert sum([0.1] * 10) != 1.0  # what floats would have done


@given(st.integers(1, 10**12))
def test_text_round_trip(micro: int) -> None:
    eps = Epsilon(micro)
    assert Epsilon.parse(str(eps)) == eps
    assert eps.fraction == Fraction(micro, 10**6)


def test_subtraction_floors_at_zero_and_order_is_numeric() -> None:
    assert Epsilon.parse("0.1") - Epsilon.parse(1) == Epsilon.zero()
    assert sorted([Epsilon.parse(2), Epsilon.parse("0.5"), Epsilon.parse(1)]) == [Epsilon.parse("0.5"), Epsilon.parse(1), Epsilon.parse(2)]


def test_in_pydantic_models_epsilon_is_text() -> None:
    class M(BaseModel):
        eps: Epsilon

    m = M(eps="0.3")  # type: ignore[arg-type]
    assert m.eps == Epsilon.parse("0.3")
    assert m.model_dump(mode="json") == {"eps": "0.3"}
    assert M.model_validate_json(m.model_dump_json()) == m
