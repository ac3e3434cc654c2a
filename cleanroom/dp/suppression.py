"""Suppression of small cells, decided on noisy values only (post-processing, no extra budget).

Why on noisy values: a decision taken on a true count is itself a release of that count (a cell
that vanishes exactly when fewer than k persons are in it tells the analyst so, noise-free).
Taken on the noisy person-count it is post-processing of a DP output and costs nothing.
A suppressed cell becomes ``None``, never 0: a 0 would be a (false) released value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cleanroom.aggregate import Part
from cleanroom.errors import InternalError


def guard_values(part: Part, noisy: Mapping[str, Sequence[int]], parts: Mapping[str, Part]) -> tuple[list[int], int]:
    """The noisy values that decide each cell of ``part``, and the unit that turns them into persons."""
    if part.guard is None:
        return list(noisy[part.name]), part.unit
    guard = parts.get(part.guard)
    if guard is None or guard.bounds.kind != "count":
        raise InternalError("internal.invariant", f"part {part.name}: guard {part.guard!r} is not a count part of this result")
    source = noisy[guard.name]
    indices = part.guard_cells or []
    if any(not 0 <= i < len(source) for i in indices):
        raise InternalError("internal.invariant", f"part {part.name}: guard_cells point outside part {guard.name}")
    return [source[i] for i in indices], guard.unit


def suppress(values: Sequence[int], guards: Sequence[int], unit: int, threshold: int) -> list[int | None]:
    """Keep a value only when its guard, in persons (guard / unit), reaches ``threshold``.

    Compared as integers (``guard < threshold * unit``), so no rounding can move a boundary cell.
    """
    limit = threshold * unit
    return [None if g < limit else v for v, g in zip(values, guards, strict=True)]


__all__ = ["guard_values", "suppress"]
