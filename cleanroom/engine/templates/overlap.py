"""``overlap``: how many consented persons two datasets share (metrics.md, "Overlap").

Parts (epsilon weights in brackets):

- ``persons`` [1]: cells ``(dataset,)``, distinct consented persons of each dataset involved.
- ``shared`` [1]: cells ``(dataset_a, dataset_b)``, persons in both, per approved pair.

A dataset's count is released once even when it is in several pairs (``persons_a`` and
``persons_b`` of every pair come from the ``persons`` part), which halves the noise of a naive
per-pair layout. Distinct persons do not depend on how many rows a person has, so the per-person
row bound is skipped here (it would change nothing).
"""

from __future__ import annotations

from itertools import combinations
from typing import Any, Literal

from pydantic import field_validator

from cleanroom.aggregate import Bounds
from cleanroom.engine._sql import Cte, union_all
from cleanroom.engine.builder import Builder, Params, parse_params
from cleanroom.engine.compiled import CompiledQuery, PartPlan, PartSpec, axis, count_spec
from cleanroom.engine.scope import Scope
from cleanroom.engine.views import PERSON
from cleanroom.errors import PolicyError, QueryError

TEMPLATE = "overlap"
WEIGHTS = {"persons": 1, "shared": 1}


class OverlapParams(Params):
    datasets: list[str] | Literal["all"] = "all"

    @field_validator("datasets")
    @classmethod
    def _two(cls, value: list[str] | str) -> list[str] | str:
        if isinstance(value, list) and (len(value) != 2 or value[0] == value[1]):
            raise ValueError("give exactly two distinct qualified dataset names, or 'all'")
        return value


def compile_overlap(raw: dict[str, Any], scope: Scope) -> CompiledQuery:
    params = parse_params(OverlapParams, TEMPLATE, raw)
    pairs = _pairs(params, scope)
    names = sorted({q for pair in pairs for q in pair})
    b = Builder(scope, TEMPLATE)
    for a, c in pairs:
        b.join(a, c, "overlap")
    src = {q: b.source(f"src_{i}", scope.ref(q), [PERSON], bound_rows=False) for i, q in enumerate(names)}
    for i, q in enumerate(names):
        b.add(Cte(f"people_{i}", f"SELECT DISTINCT {PERSON} FROM {src[q]}", materialized=True))
    idx = {q: i for i, q in enumerate(names)}
    b.add(Cte("agg_persons", union_all([f"SELECT {idx[q] + 1} AS k0, count(*) AS n FROM people_{idx[q]}" for q in names])))
    shared = [
        f"SELECT {j + 1} AS k0, count(*) AS n FROM people_{idx[a]} JOIN people_{idx[c]} USING ({PERSON})" for j, (a, c) in enumerate(pairs)
    ]
    b.add(Cte("agg_shared", union_all(shared)))
    specs = [
        count_spec("persons", "agg_persons", [axis(names)], reach=len(names), weight=WEIGHTS["persons"]),
        PartSpec(PartPlan(name="shared", cells=list(pairs), bounds=Bounds(kind="count", max_cells_per_person=len(pairs)), weight=WEIGHTS["shared"]),
                 "agg_shared", explicit=True),
    ]
    return b.compiled(params, [], specs, {"pairs": [list(p) for p in pairs], "weights": WEIGHTS})


def _pairs(params: OverlapParams, scope: Scope) -> list[tuple[str, str]]:
    """The requested pair, or every approved pair of non-consent datasets in scope (sorted)."""
    if isinstance(params.datasets, list):
        a, c = sorted(params.datasets)
        for q in (a, c):
            if scope.ref(q).is_consent:
                raise QueryError("query.invalid_params", f"{TEMPLATE}: {q} is a consent dataset, not an audience", field="datasets")
        scope.require_join(a, c, TEMPLATE)
        return [(a, c)]
    candidates = sorted(q for q, r in scope.datasets.items() if not r.is_consent)
    pairs = [(a, c) for a, c in combinations(candidates, 2) if scope.join_approved(a, c)]
    if not pairs:
        raise PolicyError("policy.join_not_approved", f"{TEMPLATE}: the policy approves no join between datasets in scope")
    return pairs


__all__ = ["WEIGHTS", "OverlapParams", "compile_overlap"]
