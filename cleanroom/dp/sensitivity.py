"""Sensitivity: the only place it is derived, and only from bounds the SQL enforced.

Why one small module: every privacy guarantee cleanroom makes rests on one number per released
vector, the most that adding or removing one person (the privacy unit) can move it. The engine's
SQL enforces :class:`~cleanroom.aggregate.Bounds`; this module turns those bounds into that
number and nothing else anywhere may compute one. The tests add or remove one extreme person to a
DuckDB table and check the exact aggregates never move further than declared, and that the
extreme person moves them exactly that far (so the bound is tight, not just safe).

- ``count``: a person adds 1 to at most ``k`` cells: L1 = k, L2 = sqrt(k).
- ``sum``: a person adds at most ``r`` clamped values to each of at most ``k`` cells, each value of
  magnitude at most ``m = max(|lower|, |upper|)``: L1 = k * r * m, L2 = sqrt(k) * r * m.
- ``credit``: a person's non-negative credits total at most ``T`` over all cells: L1 = T, and
  L2 = T (reached when the whole credit lands in one cell).
"""

from __future__ import annotations

import math
from fractions import Fraction

from cleanroom.aggregate import Bounds
from cleanroom.errors import InternalError


def l1_sensitivity(bounds: Bounds) -> int:
    """The largest L1 change of the part's vector when one person is added or removed."""
    if bounds.kind == "count":
        return bounds.max_cells_per_person
    if bounds.kind == "sum":
        return bounds.max_cells_per_person * _per_cell_max(bounds)
    return _credit_total(bounds)


def l2_sensitivity(bounds: Bounds) -> float:
    """The largest L2 change for one person, rounded *up* to a float (for the Gaussian)."""
    return _sqrt_up(l2_sensitivity_squared(bounds))


def l2_sensitivity_squared(bounds: Bounds) -> int:
    """The squared L2 sensitivity, exact: k * (per-cell maximum)^2, or T^2 for credits."""
    if bounds.kind == "count":
        return bounds.max_cells_per_person
    if bounds.kind == "sum":
        return bounds.max_cells_per_person * _per_cell_max(bounds) ** 2
    return _credit_total(bounds) ** 2


def _per_cell_max(bounds: Bounds) -> int:
    """How far one person can move one cell of a clamped, row-capped sum."""
    return bounds.max_rows_per_cell * max(abs(bounds.lower), abs(bounds.upper))


def _credit_total(bounds: Bounds) -> int:
    if bounds.per_person_total is None:  # Bounds validation makes this unreachable
        raise InternalError("internal.invariant", "a credit part without per_person_total")
    return bounds.per_person_total


def _sqrt_up(square: int) -> float:
    """sqrt(square) as the smallest float whose square is at least ``square``.

    Why: a float square root may round down, and a sensitivity rounded down would under-noise.
    """
    root = math.sqrt(square)
    while Fraction(root) ** 2 < square:
        root = math.nextafter(root, math.inf)
    return root


__all__ = ["l1_sensitivity", "l2_sensitivity", "l2_sensitivity_squared"]
