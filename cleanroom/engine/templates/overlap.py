"""``overlap``: how many consented persons two datasets share (metrics.md, "Overlap").

One part, ``venn`` (a partition per pair): cells ``(dataset_a, dataset_b, region)`` with region
in (``a_only``, ``b_only``, ``both``); a person adds 1 to exactly one region of each pair it
appears in, so the L1 sensitivity is the number of pairs (1 for the usual single pair). Persons
of each dataset, shared persons and match rates are sums and ratios of the regions, derived
after the noise. Distinct persons do not depend on how many rows a person has, so the
per-person row bound is skipped here (it would change nothing).
"""

from __future__ import annotations

from itertools import combinations
from typing import Any, Literal

from pydantic import field_validator

from cleanroom.aggregate import Bounds
from cleanroom.engine._sql import Cte, union_all
from cleanroom.engine.builder import Builder, Params, parse_params
from cleanroom.engine.compiled import CompiledQuery, PartPlan, PartSpec
from cleanroom.engine.scope import Scope
from cleanroom.engine.views import PERSON
from cleanroom.errors import PolicyError, QueryError

TEMPLATE = "overlap"
WEIGHTS = {"venn": 1}
REGIONS = ("a_only", "b_only", "both")


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
    regions = [
        f"SELECT {3 * j} + CASE WHEN a.{PERSON} IS NULL THEN 2 WHEN c.{PERSON} IS NULL THEN 1 ELSE 3 END AS k0, count(*) AS n\n"
        f"FROM people_{idx[a]} AS a FULL JOIN people_{idx[c]} AS c ON a.{PERSON} = c.{PERSON}\nGROUP BY 1"
        for j, (a, c) in enumerate(pairs)
    ]
    b.add(Cte("agg_venn", union_all(regions)))
    cells = [(a, c, region) for a, c in pairs for region in REGIONS]
    bounds = Bounds(kind="count", max_cells_per_person=len(pairs))
    spec = PartSpec(PartPlan(name="venn", cells=cells, bounds=bounds, weight=WEIGHTS["venn"], derived=True), "agg_venn", explicit=True)
    return b.compiled(params, [], [spec], {"pairs": [list(p) for p in pairs], "weights": WEIGHTS})


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


__all__ = ["REGIONS", "WEIGHTS", "OverlapParams", "compile_overlap"]
