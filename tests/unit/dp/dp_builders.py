"""Builders for exact results, shared by the dp tests (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

from fractions import Fraction

from cleanroom.aggregate import Bounds, ExactResult, Part

COUNT1 = Bounds(kind="count", max_cells_per_person=1)


def count_part(name: str, values: list[int], *, k: int = 1, **extra: object) -> Part:
    cells = [(f"c{i}",) for i in range(len(values))]
    return Part(name=name, bounds=Bounds(kind="count", max_cells_per_person=k), cells=cells, values=values, **extra)  # type: ignore[arg-type]


def exact(*parts: Part, template: str = "test") -> ExactResult:
    return ExactResult(template=template, dimensions=["cell"], parts=list(parts))


# Large enough that the discrete Laplace is 0 with probability 1 - 2e-434: a "deterministic" release.
HUGE_EPSILON = Fraction(10**6)
