"""``Epsilon``: an exact, validated privacy-loss value stored as integer micro-epsilon.

Why integers: budgets are compared and summed thousands of times over a collaboration's life.
Floats drift (ten charges of 0.1 sum to 0.9999999999999999, which would either refuse a charge
that fits or, worse, accept one that does not). Micro-epsilon integers make every sum and
comparison exact, in Python and in SQLite alike, and six decimals are finer than any policy needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

from cleanroom.errors import BudgetError

MICRO = 1_000_000
MAX_EPSILON = 1_000_000  # far above any sane budget; keeps SQLite sums far from int64 overflow


@dataclass(frozen=True, order=True)
class Epsilon:
    """A non-negative epsilon in micro units. Build it with :meth:`parse`, not the constructor."""

    micro: int

    def __post_init__(self) -> None:
        if isinstance(self.micro, bool) or not isinstance(self.micro, int) or not 0 <= self.micro <= MAX_EPSILON * MICRO:
            raise BudgetError("budget.invalid_epsilon", f"micro-epsilon must be an integer in [0, {MAX_EPSILON * MICRO}], got {self.micro!r}")

    @classmethod
    def parse(cls, value: object, *, allow_zero: bool = False) -> Epsilon:
        """Parse a float, int, str, Decimal, Fraction or Epsilon; finite, positive, <= 6 decimals.

        ``allow_zero`` admits 0 for budgets such as a report reservation that a policy may set to
        nothing; a requested or charged epsilon is always strictly positive.
        """
        micro = _to_micro(value)
        if micro < 0 or (micro == 0 and not allow_zero):
            raise BudgetError("budget.invalid_epsilon", f"epsilon must be positive, got {value!r}", value=str(value))
        return cls(micro)

    @classmethod
    def zero(cls) -> Epsilon:
        return cls(0)

    @property
    def fraction(self) -> Fraction:
        """The exact value, for :func:`cleanroom.dp.release`."""
        return Fraction(self.micro, MICRO)

    def __add__(self, other: Epsilon) -> Epsilon:
        return Epsilon(self.micro + other.micro)

    def __sub__(self, other: Epsilon) -> Epsilon:
        """Subtract, never below zero (what is left of a budget cannot be negative)."""
        return Epsilon(max(self.micro - other.micro, 0))

    def __str__(self) -> str:
        whole, frac = divmod(self.micro, MICRO)
        return f"{whole}.{frac:06d}".rstrip("0").rstrip(".") if frac else str(whole)

    def __repr__(self) -> str:
        return f"Epsilon('{self}')"

    def __float__(self) -> float:
        return self.micro / MICRO

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        """In pydantic models an Epsilon validates from any parseable value and serializes as text."""
        return core_schema.no_info_plain_validator_function(
            lambda v: v if isinstance(v, Epsilon) else Epsilon.parse(v, allow_zero=True),
            serialization=core_schema.plain_serializer_function_ser_schema(str),
        )


def _to_micro(value: object) -> int:
    """Exact micro-epsilon of ``value``, or ``budget.invalid_epsilon`` naming what is wrong."""
    number = _to_decimal(value)
    if not number.is_finite():
        raise BudgetError("budget.invalid_epsilon", f"epsilon must be finite, got {value!r}", value=str(value))
    if abs(number) > MAX_EPSILON:
        raise BudgetError("budget.invalid_epsilon", f"epsilon must be at most {MAX_EPSILON}, got {value!r}", value=str(value))
    micro = number.scaleb(6)
    if micro != micro.to_integral_value():
        raise BudgetError("budget.invalid_epsilon", f"epsilon may have at most 6 decimals, got {value!r}", value=str(value))
    return int(micro)


def _to_decimal(value: object) -> Decimal:
    if isinstance(value, Epsilon):
        return Decimal(value.micro).scaleb(-6)
    if isinstance(value, Fraction):
        return _fraction_decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))  # the shortest text that round-trips: 0.1 -> "0.1"
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return Decimal(value)
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            pass
    raise BudgetError("budget.invalid_epsilon", f"epsilon must be a number, got {value!r}", value=str(value))


def _fraction_decimal(value: Fraction) -> Decimal:
    scaled = value * MICRO
    if scaled.denominator != 1:
        raise BudgetError("budget.invalid_epsilon", f"epsilon may have at most 6 decimals, got {value}", value=str(value))
    return Decimal(scaled.numerator).scaleb(-6)


__all__ = ["MAX_EPSILON", "MICRO", "Epsilon"]
