"""The compiled plan of one query, the statement that releases its parts, and ``execute``.

A template compiles to ONE DuckDB statement: shared steps (consent sets, bounded sources) run
once, and each released part is a ``SELECT`` over the full public domain of its cells (a
``VALUES`` list left-joined to the aggregate, so zeros appear and values outside the domain are
dropped), all stitched with ``UNION ALL``. The cell list is fixed at compile time from the public
domains alone, so ``execute`` can check that the database returned exactly those cells in
exactly that order: what the engine releases never depends on which values occur in the data.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import duckdb
from pydantic import BaseModel, ConfigDict, Field, model_validator

from cleanroom.aggregate import Bounds, Cell, ExactResult, Part
from cleanroom.engine._sql import Cte, ident, indent, lit, union_all, values, with_query
from cleanroom.errors import InternalError


class PartPlan(BaseModel):
    """What one released part will be, known before any data is read."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    cells: list[Cell]
    bounds: Bounds
    weight: int = Field(ge=1)
    unit: int = Field(default=1, ge=1)
    guard: str | None = None
    guard_cells: list[int] | None = None
    derived: bool = False


class CompiledQuery(BaseModel):
    """A validated, bounded query: the SQL to run and the shape of every part it releases.

    ``datasets`` are the qualified datasets the SQL reads (consent datasets included) and
    ``joins`` the qualified pairs it links on ``pid``; both were checked against the scope.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    template: str
    params: dict[str, Any]
    dimensions: list[str]
    sql: str
    parts: list[PartPlan]
    datasets: list[str]
    joins: list[tuple[str, str]]
    meta: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _distinct_parts(self) -> CompiledQuery:
        names = [p.name for p in self.parts]
        if len(set(names)) != len(names) or not names:
            raise InternalError("internal.invariant", f"{self.template}: parts must be non-empty and distinct, got {names}")
        return self

    def part(self, name: str) -> PartPlan:
        for p in self.parts:
            if p.name == name:
                return p
        raise InternalError("internal.invariant", f"no part {name!r} in compiled {self.template}")


Axis = list[tuple[int, str]]


def axis(labels: list[str]) -> Axis:
    """A public domain as (ordinal, label) pairs, ordinals 1-based in domain order."""
    return [(i + 1, v) for i, v in enumerate(labels)]


@dataclass(frozen=True)
class PartSpec:
    """A part while it is being built: its plan plus the CTE that aggregates it.

    ``agg`` names a CTE with integer key columns ``k0..`` and a value column ``n``, one row per
    occurring cell. Keys are ordinals, not labels (grouping small integers is several times
    cheaper than grouping strings): with ``axes`` (a cross product of public domains) ``k{j}``
    is the ordinal on axis ``j``; with ``explicit`` the single key ``k0`` is the 1-based index
    of the cell in ``plan.cells``. With neither the part has the single empty cell ``()``.
    Rows whose keys match no cell (values outside the domain) are dropped by the left join.
    """

    plan: PartPlan
    agg: str
    axes: list[Axis] = field(default_factory=list)
    explicit: bool = False


def count_spec(name: str, agg: str, axes: list[Axis], reach: int, weight: int, **plan: Any) -> PartSpec:
    """A distinct-person count over the cross product of ``axes``: each person adds 1 to at most ``reach`` cells."""
    bounds = Bounds(kind="count", max_cells_per_person=reach)
    return PartSpec(plan=PartPlan(name=name, cells=cross_cells(axes), bounds=bounds, weight=weight, **plan), agg=agg, axes=axes)


def cross_cells(axes: list[Axis]) -> list[Cell]:
    """The labels of the cross product of axes, first axis slowest."""
    cells: list[Cell] = [()]
    for ax in axes:
        cells = [c + (label,) for c in cells for _, label in ax]
    return cells


def _arity(spec: PartSpec) -> int:
    return len(spec.plan.cells[0]) if spec.plan.cells else 0


def _part_select(ordinal: int, spec: PartSpec, width: int) -> str:
    """One part's rows over its full domain, padded to ``width`` key columns."""
    m = _arity(spec)
    head = [f"{ordinal} AS part_ord", f"{lit(spec.plan.name)} AS part"]
    pad_o = [f"0 AS o{j}" for j in range(m, width)]
    pad_k = [f"CAST(NULL AS VARCHAR) AS k{j}" for j in range(m, width)]
    if m == 0:
        cols = head + pad_o + pad_k + [f"coalesce((SELECT sum(n) FROM {ident(spec.agg)}), 0) AS n"]
        return "SELECT " + ", ".join(cols)
    if spec.explicit:
        rows = [(i + 1, *cell) for i, cell in enumerate(spec.plan.cells)]
        labels = ", ".join(f"v{j}" for j in range(m))
        cols = head + ["d.o AS o0"] + [f"0 AS o{j}" for j in range(1, m)] + pad_o
        cols += [f"d.v{j} AS k{j}" for j in range(m)] + pad_k + ["coalesce(a.n, 0) AS n"]
        on = "a.k0 = d.o"
        source = f"FROM {values(rows)} AS d(o, {labels})"
    else:
        cols = head + [f"d{j}.o AS o{j}" for j in range(m)] + pad_o
        cols += [f"d{j}.v AS k{j}" for j in range(m)] + pad_k + ["coalesce(a.n, 0) AS n"]
        on = " AND ".join(f"a.k{j} = d{j}.o" for j in range(m))
        domains = [f"{values(ax)} AS d{j}(o, v)" for j, ax in enumerate(spec.axes)]
        source = "FROM " + "\nCROSS JOIN ".join(domains)
    return f"SELECT {', '.join(cols)}\n{source}\nLEFT JOIN {ident(spec.agg)} AS a ON {on}"


def release_statement(ctes: list[Cte], specs: list[PartSpec]) -> str:
    """The one statement of a query: shared CTEs, then every part over its full domain."""
    width = max(_arity(s) for s in specs)
    selects = [f"({_part_select(i, s, width)})" for i, s in enumerate(specs)]
    order = ", ".join(["part_ord"] + [f"o{j}" for j in range(width)])
    return with_query(ctes, "SELECT * FROM (\n" + indent(union_all(selects)) + f"\n)\nORDER BY {order}")


def execute(compiled: CompiledQuery, con: duckdb.DuckDBPyConnection) -> ExactResult:
    """Run the compiled statement and return exact aggregates (server-internal, never released).

    ``con`` is the store's sandboxed reader cursor with the scope's views. Database errors
    propagate unchanged (the store wraps them). A returned cell list that differs from the
    compiled one is a bug and raises ``internal.invariant`` rather than releasing anything.
    """
    rows = con.execute(compiled.sql).fetchall()
    by_part: dict[str, list[tuple[Any, ...]]] = {p.name: [] for p in compiled.parts}
    for row in rows:
        by_part[row[1]].append(row)
    width = max((len(p.cells[0]) if p.cells else 0) for p in compiled.parts)
    parts = [_to_part(plan, by_part[plan.name], width) for plan in compiled.parts]
    return ExactResult(template=compiled.template, dimensions=compiled.dimensions, parts=parts, meta=compiled.meta)


def _to_part(plan: PartPlan, rows: list[tuple[Any, ...]], width: int) -> Part:
    m = len(plan.cells[0]) if plan.cells else 0
    first_key = 2 + width
    cells = [tuple(row[first_key : first_key + m]) for row in rows]
    if cells != plan.cells:
        raise InternalError("internal.invariant", f"part {plan.name}: the statement returned cells other than its public domain")
    values_ = [int(row[-1]) for row in rows]
    return Part(
        name=plan.name,
        bounds=plan.bounds,
        weight=plan.weight,
        cells=plan.cells,
        values=values_,
        unit=plan.unit,
        guard=plan.guard,
        guard_cells=plan.guard_cells,
        derived=plan.derived,
    )


def timed_execute(compiled: CompiledQuery, con: duckdb.DuckDBPyConnection, repeat: int = 3) -> dict[str, float]:
    """Wall-clock seconds of ``execute`` (best, median of ``repeat`` runs): for benchmarks only.

    Never call this on a path that answers an analyst: precise timings are a side channel.
    """
    times = []
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        execute(compiled, con)
        times.append(time.perf_counter() - start)
    times.sort()
    return {"best_s": times[0], "median_s": times[len(times) // 2], "runs": float(len(times))}


__all__ = ["Axis", "CompiledQuery", "PartPlan", "PartSpec", "axis", "count_spec", "cross_cells", "execute", "release_statement", "timed_execute"]
