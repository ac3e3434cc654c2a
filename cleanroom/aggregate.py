"""Exact aggregates: what the engine hands to ``dp`` and nothing else ever sees.

The engine compiles a template into SQL that *enforces* per-person contribution bounds, runs it,
and returns one :class:`Part` per released vector, each with the :class:`Bounds` its SQL
enforced. ``cleanroom.dp.sensitivity`` (the only place sensitivity is derived) turns those bounds
into an L1 sensitivity; ``cleanroom.dp`` adds noise. An ``ExactResult`` never leaves the server
process and is never serialized to a caller: only its noisy counterpart is.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cleanroom.errors import InternalError

Cell = tuple[str, ...]


class Bounds(BaseModel):
    """Per-person contribution limits that the SQL of one part enforces.

    - ``count``: each person adds 1 to at most ``max_cells_per_person`` cells.
    - ``sum``: each person adds at most ``max_rows_per_cell`` clamped values in ``[lower, upper]``
      to each of at most ``max_cells_per_person`` cells.
    - ``credit``: each person's contributions over all cells sum to at most ``per_person_total``
      (attribution milli-credits: 1000), each cell receiving a value in ``[0, per_person_total]``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["count", "sum", "credit"]
    max_cells_per_person: int = Field(ge=1)
    max_rows_per_cell: int = Field(default=1, ge=1)
    lower: int = 0
    upper: int = 1
    per_person_total: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _consistent(self) -> Bounds:
        if self.lower > self.upper:
            raise ValueError("lower must not exceed upper")
        if self.kind == "count" and (self.lower, self.upper, self.max_rows_per_cell) != (0, 1, 1):
            raise ValueError("a count adds 0 or 1 per person and cell")
        if self.kind == "credit" and self.per_person_total is None:
            raise ValueError("a credit part needs per_person_total")
        return self


class Part(BaseModel):
    """One vector of exact integer aggregates released by one mechanism call.

    ``cells`` covers the full public domain of the grouping (zeros included), in a stable order.
    ``weight`` is this part's share of the query's epsilon, relative to the other parts' weights.
    ``unit`` converts a value to persons for threshold checks (1 for counts, 1000 for
    milli-credits). ``guard`` names the person-count part whose noisy cell decides suppression of
    this part's cells; ``guard_cells[i]`` is the index of the guarding cell for cell ``i``.
    A part with ``guard=None`` is guarded by itself (its own noisy value / unit).
    ``derived`` marks a partition whose cells are never shown one by one: the numbers shown are
    sums and ratios of its cells, and the presenter suppresses each of those on its own noisy
    value (a small cell of a partition may be part of a large total).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    bounds: Bounds
    weight: int = Field(default=1, ge=1)
    cells: list[Cell]
    values: list[int]
    unit: int = Field(default=1, ge=1)
    guard: str | None = None
    guard_cells: list[int] | None = None
    derived: bool = False

    @model_validator(mode="after")
    def _aligned(self) -> Part:
        if len(self.cells) != len(self.values):
            raise InternalError("internal.invariant", f"part {self.name}: {len(self.cells)} cells but {len(self.values)} values")
        if self.guard is not None and (self.guard_cells is None or len(self.guard_cells) != len(self.cells)):
            raise InternalError("internal.invariant", f"part {self.name}: guard_cells must map every cell")
        return self


class ExactResult(BaseModel):
    """Everything one template execution computed exactly, before any noise."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    template: str
    dimensions: list[str]
    parts: list[Part]
    meta: dict[str, Any] = Field(default_factory=dict, description="Public facts only (stages omitted, parameters echoed).")

    def part(self, name: str) -> Part:
        for p in self.parts:
            if p.name == name:
                return p
        raise InternalError("internal.invariant", f"no part {name!r} in {self.template} result")


class NoisyPart(BaseModel):
    """One released vector: noisy values (``None`` where suppressed) and how they were made.

    ``ci95`` is the half-width of the 95% interval of each value, in the part's value units
    (divide by ``unit`` for persons or credits). ``epsilon`` is this part's exact share.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    cells: list[Cell]
    values: list[int | None]
    unit: int = 1
    mechanism: str
    scale: float
    sensitivity: int
    epsilon: str = Field(description="This part's exact share of the query's epsilon, as a fraction 'p/q'.")
    ci95: float
    derived: bool = Field(default=False, description="Values are unsuppressed partition cells; only sums and ratios of them are shown.")
    guard: str | None = Field(default=None, description="The part whose noisy counts decided this part's suppression (None: its own values).")


class NoisyResult(BaseModel):
    """The only form of a result that may leave the server: every number noised, then post-processed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    template: str
    dimensions: list[str]
    parts: list[NoisyPart]
    epsilon: str
    threshold: int
    meta: dict[str, Any] = Field(default_factory=dict)

    def part(self, name: str) -> NoisyPart:
        for p in self.parts:
            if p.name == name:
                return p
        raise InternalError("internal.invariant", f"no part {name!r} in noisy {self.template} result")


__all__ = ["Bounds", "Cell", "ExactResult", "NoisyPart", "NoisyResult", "Part"]
