"""The funnel's ``view: activity``: distinct persons active at each journey stage in the period,
by up to two public dimensions (docs/explanation/metrics.md, "Stage activity").

Volumes, not conversion: the stages are counted independently (a person may be active at a
later stage without an earlier one), so the view never divides one stage by another.

One part, ``persons``: cells ``(stage, dim...)``; a person counts once per cell, in at most
``max_groups_per_person`` cells per stage (its earliest cells win), so at most
``stages x min(max_groups_per_person, |cells per stage|)`` cells in all. Each cell is
suppressed on its own noisy value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cleanroom.engine._sql import Cte, ident, position, union_all
from cleanroom.engine.builder import Builder, check_filters, dim_expr, filter_predicates
from cleanroom.engine.compiled import CompiledQuery, PartSpec, axis, count_spec, cross_cells
from cleanroom.engine.scope import DatasetRef, PartnerRole, Scope
from cleanroom.engine.views import PERSON
from cleanroom.errors import QueryError

if TYPE_CHECKING:
    from cleanroom.engine.templates.funnel import FunnelParams

TEMPLATE = "funnel"
ACTIVITY_STAGES: tuple[tuple[str, PartnerRole, str], ...] = (
    ("configurator", "brand", "web_sessions"),
    ("lead", "dealer", "leads"),
    ("test_drive", "dealer", "test_drives"),
    ("application", "finance", "applications"),
    ("sale", "dealer", "sales"),
    ("contract", "finance", "contracts"),
)
STAGE_NAMES = tuple(s[0] for s in ACTIVITY_STAGES)
WEIGHTS = {"persons": 1}


class _Stage:
    """One stage: its global id (``STAGES`` index + 1), datasets with their filters, sources."""

    def __init__(self, index: int, name: str, refs: list[DatasetRef], wheres: list[list[str]], dims: list[str]) -> None:
        self.id, self.name, self.refs, self.wheres = index + 1, name, refs, wheres
        self.grouped = all(dim_expr(r, d) is not None for r in refs for d in dims)
        self.sources: list[str] = []


def compile_activity(params: FunnelParams, scope: Scope) -> CompiledQuery:
    """Persons active at each stage (``view: activity``); ``params`` were validated by the funnel."""
    axes = _axes(params, scope)
    stages, unavailable = _stages(params, scope)
    grouped = [s for s in stages if s.grouped]
    if not grouped:
        raise QueryError("query.invalid_params", f"{TEMPLATE}: no stage in scope has all of {params.dimensions + list(params.filters)}")
    b = Builder(scope, TEMPLATE)
    for stage in grouped:
        _add_sources(b, stage, params.dimensions, axes)
    _stage_rows(b, grouped, len(axes), materialized=False)
    if not axes:
        _first_days(b, materialized=False)
    specs = [_persons(b, grouped, axes, scope.max_groups_per_person)]
    omitted = {s: "no dataset in scope has every requested dimension and filter" for s in STAGE_NAMES if s not in {g.name for g in grouped}}
    meta = {"view": "activity", "stages": [g.name for g in grouped], "stages_omitted": omitted, "stages_unavailable": unavailable,
            "weights": {s.plan.name: s.plan.weight for s in specs}}
    return b.compiled(params, params.dimensions, specs, meta)


def _axes(params: FunnelParams, scope: Scope) -> list[list[str]]:
    check_filters(scope, params.filters, TEMPLATE)
    return [scope.domain(d, TEMPLATE) for d in params.dimensions]


def _stages(params: FunnelParams, scope: Scope) -> tuple[list[_Stage], list[str]]:
    """Stages with datasets in scope; a stage drops out when a dataset lacks a filtered column."""
    stages, unavailable = [], []
    for index, (name, role, dataset) in enumerate(ACTIVITY_STAGES):
        refs = scope.datasets_of(role, dataset)
        wheres = [filter_predicates(scope, r, params.filters, TEMPLATE) for r in refs]
        if not refs or any(w is None for w in wheres):
            unavailable.append(name)
            continue
        stages.append(_Stage(index, name, refs, [w or [] for w in wheres], params.dimensions))
    return stages, unavailable


def _add_sources(b: Builder, stage: _Stage, dims: list[str], axes: list[list[str]]) -> None:
    """One bounded source per dataset of a stage that is read.

    Dimension values become their ordinal in the public domain (NULL outside it) right at the
    source, so everything downstream groups small integers.
    """
    for i, (ref, where) in enumerate(zip(stage.refs, stage.wheres, strict=True)):
        exprs = [dim_expr(ref, d) for d in dims]
        select = [PERSON, f"CAST({ident(ref.event_time)} AS TIMESTAMP) AS ts"]
        select += [f"{position(ax, e) if e else 'CAST(NULL AS INTEGER)'} AS d{j}" for j, (ax, e) in enumerate(zip(axes, exprs, strict=True))]
        stage.sources.append(b.source(f"src_{stage.name}_{i}", ref, select, where))


def _stage_rows(b: Builder, stages: list[_Stage], m: int, materialized: bool) -> None:
    """Every stage row as ``(s, pid, ts, d0..)``; materialized when two steps read it."""
    dims = "".join(f", d{j}" for j in range(m))
    rows = [f"SELECT {s.id} AS s, {PERSON}, ts{dims} FROM {src}" for s in stages for src in s.sources]
    b.add(Cte("stage_rows", union_all(rows), materialized=materialized))


def _first_days(b: Builder, materialized: bool) -> None:
    """Each person's first day at each stage: the ungrouped persons count and the gaps read it."""
    b.add(Cte("first_days", f"SELECT s, {PERSON}, CAST(min(ts) AS DATE) AS day\nFROM stage_rows\nGROUP BY s, {PERSON}", materialized=materialized))


def _persons(b: Builder, stages: list[_Stage], axes: list[list[str]], groups: int) -> PartSpec:
    """Distinct persons per (stage, cell), at most ``groups`` cells per person and stage.

    A person's cells in a stage are ranked by their earliest row (then by ordinal), so which
    cells survive the bound is deterministic. Ungrouped, it is a count of ``first_days``.
    """
    m = len(axes)
    keys = ["s"] + [f"d{j}" for j in range(m)]
    ids = ", ".join(str(s.id) for s in stages)
    if m:
        known = " AND ".join(f"d{j} IS NOT NULL" for j in range(m))
        order = ", ".join(["min(ts)"] + keys[1:])
        body = (
            f"SELECT {', '.join(keys)}, {PERSON}\nFROM stage_rows\nWHERE s IN ({ids}) AND {known}\n"
            f"GROUP BY {', '.join(keys)}, {PERSON}\n"
            f"QUALIFY row_number() OVER (PARTITION BY s, {PERSON} ORDER BY {order}) <= {groups}"
        )
        b.add(Cte("persons_cells", body))
        source = "persons_cells"
    else:
        source = f"first_days\nWHERE s IN ({ids})"
    out = ", ".join(f"{k} AS k{j}" for j, k in enumerate(keys))
    b.add(Cte("agg_persons", f"SELECT {out}, count(*) AS n\nFROM {source}\nGROUP BY {', '.join(keys)}"))
    all_axes = [[(s.id, s.name) for s in stages], *map(axis, axes)]
    per_stage = min(groups, len(cross_cells([axis(a) for a in axes]))) if m else 1
    return count_spec("persons", "agg_persons", all_axes, reach=len(stages) * per_stage, weight=WEIGHTS["persons"])


__all__ = ["ACTIVITY_STAGES", "compile_activity"]
