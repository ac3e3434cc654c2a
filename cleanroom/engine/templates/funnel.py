"""``funnel``: distinct persons per journey stage, by up to two public dimensions, and the days
between consecutive stages as a histogram (docs/explanation/metrics.md, "Funnel").

Parts (epsilon weights in brackets):

- ``persons`` [3]: cells ``(stage, dim...)``; a person counts once per cell, in at most
  ``max_groups_per_person`` cells per stage (its earliest cells win), so at most
  ``stages x min(max_groups_per_person, |cells per stage|)`` cells in all.
- ``days_persons`` [1]: cells ``(stage_pair,)``; persons having both stages with ``days >= 0``.
  It is the guard (suppression decider) of ``days``.
- ``days`` [1]: cells ``(stage_pair, bucket)``; each person adds 1 to one bucket per pair.

The days parts are ungrouped (the median is over all persons) and need the join of every
dataset of stage k-1 with every dataset of stage k: a stage pair whose joins the caller's role
may not make is left out (listed in ``meta["stage_pairs_omitted"]``); ``include_medians=false``
drops the days parts altogether.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, StrictBool, field_validator

from cleanroom.engine._sql import Cte, ident, position, union_all
from cleanroom.engine.builder import Builder, Params, check_filters, dim_expr, filter_predicates, parse_params
from cleanroom.engine.compiled import CompiledQuery, PartSpec, axis, count_spec, cross_cells
from cleanroom.engine.scope import DatasetRef, PartnerRole, Scope
from cleanroom.engine.views import PERSON
from cleanroom.errors import PolicyError, QueryError

TEMPLATE = "funnel"
STAGES: tuple[tuple[str, PartnerRole, str], ...] = (
    ("configurator", "brand", "web_sessions"),
    ("lead", "dealer", "leads"),
    ("test_drive", "dealer", "test_drives"),
    ("application", "finance", "applications"),
    ("sale", "dealer", "sales"),
    ("contract", "finance", "contracts"),
)
STAGE_NAMES = tuple(s[0] for s in STAGES)
DIMENSIONS = ("model", "region", "channel", "dealer_group", "month")
MAX_DAYS = 365
DAY_BUCKETS: tuple[tuple[int, int], ...] = tuple((d, d) for d in range(15)) + (
    (15, 21), (22, 30), (31, 45), (46, 60), (61, 90), (91, 120), (121, 180), (181, MAX_DAYS),
)
WEIGHTS = {"persons": 3, "days_persons": 1, "days": 1}


def bucket_label(lo: int, hi: int) -> str:
    return str(lo) if lo == hi else f"{lo}-{hi}"


BUCKET_LABELS = [bucket_label(lo, hi) for lo, hi in DAY_BUCKETS]


def pair_label(a: str, b: str) -> str:
    return f"{a}->{b}"


class FunnelParams(Params):
    dimensions: list[str] = Field(default_factory=list, max_length=2)
    filters: dict[str, list[str]] = Field(default_factory=dict)
    include_medians: StrictBool = True

    @field_validator("dimensions")
    @classmethod
    def _distinct(cls, dims: list[str]) -> list[str]:
        if len(set(dims)) != len(dims):
            raise ValueError("dimensions must be distinct")
        return dims

    @field_validator("filters")
    @classmethod
    def _non_empty(cls, filters: dict[str, list[str]]) -> dict[str, list[str]]:
        for dim, vals in filters.items():
            if not vals or len(set(vals)) != len(vals):
                raise ValueError(f"filter {dim!r} needs a non-empty list of distinct values")
        return filters


class _Stage:
    """One stage: its global id (``STAGES`` index + 1), datasets with their filters, sources."""

    def __init__(self, index: int, name: str, refs: list[DatasetRef], wheres: list[list[str]], dims: list[str]) -> None:
        self.id, self.name, self.refs, self.wheres = index + 1, name, refs, wheres
        self.grouped = all(dim_expr(r, d) is not None for r in refs for d in dims)
        self.sources: list[str] = []


def compile_funnel(raw: dict[str, Any], scope: Scope) -> CompiledQuery:
    params = parse_params(FunnelParams, TEMPLATE, raw)
    axes = _axes(params, scope)
    stages, unavailable = _stages(params, scope)
    grouped = [s for s in stages if s.grouped]
    if not grouped:
        raise QueryError("query.invalid_params", f"{TEMPLATE}: no stage in scope has all of {params.dimensions + list(params.filters)}")
    pairs, unjoinable = _pairs(stages, scope) if params.include_medians else ([], {})
    b = Builder(scope, TEMPLATE)
    used = [s for s in stages if s.grouped or any(s in pair for pair in pairs)]
    for stage in used:
        _add_sources(b, stage, params.dimensions, axes)
    _stage_rows(b, used, len(axes), materialized=bool(pairs and axes))
    if pairs or not axes:
        _first_days(b, materialized=bool(pairs and not axes))
    specs = [_persons(b, grouped, axes, scope.max_groups_per_person)]
    if pairs:
        specs += _days(b, pairs)
    meta = {
        "stages_omitted": [s for s in STAGE_NAMES if s not in {g.name for g in grouped}],
        "stages_unavailable": unavailable,
        "stage_pairs": [pair_label(a.name, c.name) for a, c in pairs],
        "stage_pairs_omitted": unjoinable,
        "weights": {s.plan.name: s.plan.weight for s in specs},
    }
    return b.compiled(params, params.dimensions, specs, meta)


def _axes(params: FunnelParams, scope: Scope) -> list[list[str]]:
    for dim in params.dimensions:
        if dim not in DIMENSIONS:
            raise PolicyError("policy.dimension_not_allowed", f"{TEMPLATE}: {dim!r} is not a funnel dimension {list(DIMENSIONS)}", dimension=dim)
    check_filters(scope, params.filters, TEMPLATE)
    return [scope.domain(d, TEMPLATE) for d in params.dimensions]


def _stages(params: FunnelParams, scope: Scope) -> tuple[list[_Stage], list[str]]:
    """Stages with datasets in scope; a stage drops out when a dataset lacks a filtered column."""
    stages, unavailable = [], []
    for index, (name, role, dataset) in enumerate(STAGES):
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


def _pairs(stages: list[_Stage], scope: Scope) -> tuple[list[tuple[_Stage, _Stage]], dict[str, str]]:
    """Consecutive available stages whose datasets the policy lets the caller join.

    A pair whose join is not approved (e.g. contracts with sales for a dealer analyst) is left
    out of the medians and reported, rather than failing the whole funnel: its stage counts
    need no join at all.
    """
    by_id = {s.id: s for s in stages}
    pairs, unjoinable = [], {}
    for a, c in ((by_id[i], by_id[i + 1]) for i in range(1, len(STAGES)) if i in by_id and i + 1 in by_id):
        refused = [(x.qualified, y.qualified) for x in a.refs for y in c.refs if not scope.join_approved(x.qualified, y.qualified)]
        if refused:
            unjoinable[pair_label(a.name, c.name)] = f"the policy does not approve the join {refused[0][0]} <-> {refused[0][1]}"
        else:
            pairs.append((a, c))
    return pairs, unjoinable


def _days(b: Builder, pairs: list[tuple[_Stage, _Stage]]) -> list[PartSpec]:
    """Days from each person's first day at stage k-1 to its first day at stage k, bucketed."""
    for a, c in pairs:
        for ra in a.refs:
            for rc in c.refs:
                b.join(ra.qualified, rc.qualified, f"median days {pair_label(a.name, c.name)}")
    labels = [pair_label(a.name, c.name) for a, c in pairs]
    b.add(Cte("gaps", _gaps_sql([a.id for a, _ in pairs]), materialized=True))
    b.add(Cte("agg_days_persons", "SELECT k0, count(*) AS n\nFROM gaps\nGROUP BY k0"))
    b.add(Cte("agg_days", f"SELECT k0, {_bucket_case()} AS k1, count(*) AS n\nFROM gaps\nGROUP BY ALL"))
    n, pair_axis, bucket_axis = len(pairs), axis(labels), axis(BUCKET_LABELS)
    guard_cells = [i // len(BUCKET_LABELS) for i in range(n * len(BUCKET_LABELS))]
    return [
        count_spec("days_persons", "agg_days_persons", [pair_axis], reach=n, weight=WEIGHTS["days_persons"]),
        count_spec("days", "agg_days", [pair_axis, bucket_axis], reach=n, weight=WEIGHTS["days"], guard="days_persons", guard_cells=guard_cells),
    ]


def _gaps_sql(from_ids: list[int]) -> str:
    """Days between first days at consecutive stages (ids differ by 1), keyed by pair ordinal."""
    ids = ", ".join(map(str, from_ids))
    return (
        f"SELECT list_position([{ids}], a.s) AS k0, least(date_diff('day', a.day, c.day), {MAX_DAYS}) AS days\n"
        "FROM first_days AS a\n"
        f"JOIN first_days AS c ON c.{PERSON} = a.{PERSON} AND c.s = a.s + 1\n"
        f"WHERE a.s IN ({ids}) AND c.day >= a.day"
    )


def _bucket_case() -> str:
    """The 1-based bucket ordinal of ``days`` (buckets 0..14 are single days)."""
    whens = ["WHEN days <= 14 THEN days + 1"]
    whens += [f"WHEN days <= {hi} THEN {i + 1}" for i, (_, hi) in enumerate(DAY_BUCKETS) if i >= 15 and hi < MAX_DAYS]
    return "CASE " + " ".join(whens) + f" ELSE {len(DAY_BUCKETS)} END"


__all__ = ["BUCKET_LABELS", "DAY_BUCKETS", "DIMENSIONS", "STAGES", "WEIGHTS", "FunnelParams", "compile_funnel", "pair_label"]
