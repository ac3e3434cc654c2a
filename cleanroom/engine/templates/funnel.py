"""``funnel``: a person-level, time-ordered cohort funnel (docs/explanation/metrics.md, "Funnel").

The cohort is the persons whose *entry* event (their first ever: the first configurator visit
by default, the first lead with ``entry: lead``, the first finance application with
``entry: application``) falls in the period: in a month of the policy's ``month`` domain, and in
the requested ``month`` filter if any. A person reaches stage k when it has a stage-k event at
or after reaching stage k-1 and within ``window_days`` of entry. Stages are therefore nested by
construction and every conversion lies in [0, 1]. Dimensions and filters describe the cohort:
they are read from the entry event (the cohort month is the month of entry).

Finance is a branch, not a step: a person who reached ``sale`` is ``financed`` when a captive
contract started 7 days before to 30 days after that sale (contracts that started before never
count). With ``entry: application`` the finance company's own funnel runs instead:
application -> approved -> contract.

One part, ``reached`` (a partition): each cohort person adds 1 to exactly one cell
``(furthest stage, cohort cell)``, so its L1 sensitivity is 1 whatever the number of stages or
groups. Stage counts, conversions and the financed share are sums and ratios of these cells,
derived after the noise (engine/present.py); their intervals come from dp/accuracy.py.

``view: activity`` is the other question, persons active at each stage (engine/templates/activity.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field, StrictInt, field_validator, model_validator

from cleanroom.aggregate import Bounds
from cleanroom.engine._sql import Cte, ident, indent, position, union_all
from cleanroom.engine.builder import Builder, Params, dim_expr, parse_params
from cleanroom.engine.compiled import CompiledQuery, PartPlan, PartSpec, axis, cross_cells
from cleanroom.engine.scope import DatasetRef, PartnerRole, Scope
from cleanroom.engine.views import PERSON
from cleanroom.errors import PolicyError, QueryError

TEMPLATE = "funnel"
DIMENSIONS = ("model", "region", "channel", "dealer_group", "month")
FINANCE_WINDOW = (7, 30)  # a contract starting within [sale day - 7, sale day + 30] finances the sale
Entry = Literal["configurator", "lead", "application"]


@dataclass(frozen=True)
class StageDef:
    """One step of a funnel: the datasets that hold it and, optionally, a condition on its rows."""

    name: str
    role: PartnerRole
    dataset: str
    where: str | None = None  # e.g. approved applications only
    by_day: bool = False  # the event time is a date: compare calendar days, not instants


CONFIGURATOR = StageDef("configurator", "brand", "web_sessions")
LEAD = StageDef("lead", "dealer", "leads")
TEST_DRIVE = StageDef("test_drive", "dealer", "test_drives")
SALE = StageDef("sale", "dealer", "sales")
APPLICATION = StageDef("application", "finance", "applications")
APPROVED = StageDef("approved", "finance", "applications", where="decision = 'approved'")
CONTRACT = StageDef("contract", "finance", "contracts", by_day=True)
FINANCED = "financed"

FUNNELS: dict[str, tuple[StageDef, ...]] = {
    "configurator": (CONFIGURATOR, LEAD, TEST_DRIVE, SALE),
    "lead": (LEAD, TEST_DRIVE, SALE),
    "application": (APPLICATION, APPROVED, CONTRACT),
}


def stage_names(entry: str) -> list[str]:
    """The released stages of a funnel in order; the financed branch comes after ``sale``."""
    names = [s.name for s in FUNNELS[entry]]
    return names + [FINANCED] if names[-1] == SALE.name else names


class FunnelParams(Params):
    view: Literal["cohort", "activity"] = "cohort"
    entry: Entry = "configurator"
    window_days: StrictInt = Field(default=90, ge=1, le=365)
    dimensions: list[str] = Field(default_factory=list, max_length=2)
    filters: dict[str, list[str]] = Field(default_factory=dict)

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

    @model_validator(mode="after")
    def _activity_has_no_cohort(self) -> FunnelParams:
        if self.view == "activity" and {"entry", "window_days"} & self.model_fields_set:
            raise ValueError("entry and window_days describe a cohort; view 'activity' counts stages independently")
        return self


@dataclass
class _Stage:
    """A stage of this query: its definition, position and the sources that read it."""

    defn: StageDef
    index: int
    refs: list[DatasetRef]
    sources: list[str] = field(default_factory=list)


def compile_funnel(raw: dict[str, Any], scope: Scope) -> CompiledQuery:
    params = parse_params(FunnelParams, TEMPLATE, raw)
    if params.view == "activity":
        from cleanroom.engine.templates.activity import compile_activity

        return compile_activity(params, scope)
    return _compile_cohort(params, scope)


def _compile_cohort(params: FunnelParams, scope: Scope) -> CompiledQuery:
    keys = _cohort_keys(params, scope)
    b = Builder(scope, TEMPLATE)
    entry = _entry_stage(params, scope)
    stages, omitted = _reachable(b, entry, params, scope)
    financed, why_not = _finance_branch(b, stages, scope)
    if why_not:
        omitted[FINANCED] = why_not
    _entry_sources(b, entry, keys)
    for stage in stages[1:]:
        _stage_sources(b, stage)
    _cohort(b, entry, keys, params, scope)
    for prev, stage in zip(stages, stages[1:], strict=False):
        _reach(b, prev, stage, params.window_days)
    if financed:
        _financed(b, stages[-1], financed)
    names = [s.defn.name for s in stages] + ([FINANCED] if financed else [])
    spec = _reached(b, names, keys, stages, bool(financed))
    meta = {
        "view": "cohort",
        "entry": params.entry,
        "stages": names,
        "stages_omitted": omitted,
        "window_days": params.window_days,
        "weights": {"reached": 1},
    }
    return b.compiled(params, params.dimensions, [spec], meta)


@dataclass(frozen=True)
class _Keys:
    """The cohort's dimensions (grouped) and filters, as domains and filter ordinals."""

    dims: list[str]
    axes: list[list[str]]
    filters: dict[str, list[int]]  # filter-only dimension -> allowed 1-based ordinals
    all_dims: list[str]  # grouped first, then filter-only dimensions, then month for the period
    domains: dict[str, list[str]]  # the values each of all_dims can take (a grouped, filtered dimension: its filter)


def _cohort_keys(params: FunnelParams, scope: Scope) -> _Keys:
    for dim in params.dimensions:
        if dim not in DIMENSIONS:
            raise PolicyError("policy.dimension_not_allowed", f"{TEMPLATE}: {dim!r} is not a funnel dimension {list(DIMENSIONS)}", dimension=dim)
    domains = {d: scope.domain(d, TEMPLATE) for d in params.dimensions}
    filters: dict[str, list[int]] = {}
    for dim, wanted in params.filters.items():
        domain = scope.domain(dim, TEMPLATE)
        unknown = [v for v in wanted if v not in domain]
        if unknown:
            raise QueryError("query.invalid_params", f"{TEMPLATE}: filters.{dim}: {unknown} not in the public domain {domain}", field=f"filters.{dim}")
        if dim in domains:  # grouped and filtered: the cells are the filter's values (others would be structural zeros)
            domains[dim] = [v for v in domain if v in wanted]
        else:
            filters[dim] = [domain.index(v) + 1 for v in wanted]
            domains[dim] = domain
    all_dims = list(params.dimensions) + [d for d in params.filters if d not in params.dimensions]
    if "month" in scope.domains and "month" not in all_dims:
        all_dims.append("month")  # the period: entry in a month of the public month domain
        domains["month"] = scope.domain("month", TEMPLATE)
    axes = [domains[d] for d in params.dimensions]
    return _Keys(dims=list(params.dimensions), axes=axes, filters=filters, all_dims=all_dims, domains=domains)


def _entry_stage(params: FunnelParams, scope: Scope) -> _Stage:
    defn = FUNNELS[params.entry][0]
    refs = scope.datasets_of(defn.role, defn.dataset)
    if not refs:
        raise PolicyError("policy.dataset_not_in_scope", f"{TEMPLATE}: entry {params.entry!r} needs a {defn.role}'s {defn.dataset!r} dataset in scope",
                          dataset=defn.dataset)
    for dim in [*params.dimensions, *params.filters]:
        lacking = [r.qualified for r in refs if dim_expr(r, dim) is None]
        if lacking:
            hint = " (dealer_group needs entry: lead)" if dim == "dealer_group" else ""
            raise QueryError("query.invalid_params", f"{TEMPLATE}: the cohort is grouped by its entry event, and {lacking[0]} has no {dim!r}{hint}",
                             field="dimensions")
        if dim in params.filters:
            for r in refs:
                if not scope.is_filterable(dim, r.qualified):
                    raise PolicyError("policy.filter_not_allowed", f"{TEMPLATE}: the policy does not allow filtering {r.qualified} on {dim!r}",
                                      column=f"{r.qualified}.{dim}")
    return _Stage(defn, 0, refs)


def _reachable(b: Builder, entry: _Stage, params: FunnelParams, scope: Scope) -> tuple[list[_Stage], dict[str, str]]:
    """The funnel's stages up to the first one the caller cannot link; the rest are omitted with the reason.

    Reaching stage k compares its rows with stage k-1 and with entry, so both joins must be
    approved for the caller's role. Stages after a missing one cannot be reached at all.
    """
    stages, omitted = [entry], {}
    defs = FUNNELS[params.entry]
    for index, defn in enumerate(defs[1:], start=1):
        refs = scope.datasets_of(defn.role, defn.dataset)
        why = _why_unlinkable(refs, [*stages[-1].refs, *entry.refs], defn, scope)
        if why:
            omitted.update({d.name: why if d is defn else f"follows {defn.name}, which is omitted" for d in defs[index:]})
            if defs[-1].name == SALE.name:
                omitted[FINANCED] = f"follows {SALE.name}, which is omitted" if defn is not SALE else why
            break
        stages.append(_Stage(defn, index, refs))
        for ref in refs:
            for other in {r.qualified for r in [*stages[-2].refs, *entry.refs]}:
                b.join(other, ref.qualified, f"reaching {defn.name}")
    return stages, omitted


def _why_unlinkable(refs: list[DatasetRef], before: list[DatasetRef], defn: StageDef, scope: Scope) -> str | None:
    if not refs:
        return f"no {defn.role}'s {defn.dataset!r} dataset is in scope"
    for ref in refs:
        for other in before:
            if other.qualified != ref.qualified and not scope.join_approved(other.qualified, ref.qualified):
                return f"the policy does not approve the join {other.qualified} <-> {ref.qualified} for this role"
    return None


def _finance_branch(b: Builder, stages: list[_Stage], scope: Scope) -> tuple[list[DatasetRef], str | None]:
    """The captive's contracts that can mark a sale as financed, or why the branch is omitted."""
    if stages[-1].defn.name != SALE.name:
        return [], None
    contracts = scope.datasets_of(CONTRACT.role, CONTRACT.dataset)
    why = _why_unlinkable(contracts, stages[-1].refs, CONTRACT, scope)
    if why:
        return [], why
    for c in contracts:
        for s in stages[-1].refs:
            b.join(s.qualified, c.qualified, "marking financed sales")
    return contracts, None


def _select_time(ref: DatasetRef) -> str:
    return f"CAST({ident(ref.event_time)} AS TIMESTAMP) AS ts"


def _condition_column(defn: StageDef, ref: DatasetRef) -> list[str]:
    """The column a stage's condition reads, selected so the condition applies AFTER the row bound.

    Why after: the bound keeps a person's earliest rows of the dataset; filtering first would keep
    the earliest *approved* applications instead, another function of the data than the one defined.
    """
    if defn.where is None:
        return []
    column = defn.where.split(" ", 1)[0]
    if column not in ref.columns:
        raise QueryError("query.invalid_params", f"{TEMPLATE}: stage {defn.name!r} needs column {column!r} in {ref.qualified}")
    return [ident(column)]


def _entry_sources(b: Builder, entry: _Stage, keys: _Keys) -> None:
    """Entry rows with every cohort dimension as its ordinal in the public domain (NULL outside it)."""
    for i, ref in enumerate(entry.refs):
        select = [PERSON, _select_time(ref)]
        for j, dim in enumerate(keys.all_dims):
            expr = dim_expr(ref, dim)
            select.append(f"{position(keys.domains[dim], expr) if expr else 'CAST(NULL AS INTEGER)'} AS d{j}")
        entry.sources.append(b.source(f"src_{entry.defn.name}_{i}", entry.refs[i], select + _condition_column(entry.defn, ref)))


def _stage_sources(b: Builder, stage: _Stage) -> None:
    for i, ref in enumerate(stage.refs):
        stage.sources.append(b.source(f"src_{stage.defn.name}_{i}", ref, [PERSON, _select_time(ref), *_condition_column(stage.defn, ref)]))


def _rows(stage: _Stage, columns: str) -> str:
    """The stage's bounded rows that meet its condition (the condition applied after the bound)."""
    where = f" WHERE {stage.defn.where}" if stage.defn.where else ""
    return union_all([f"SELECT {columns} FROM {src}{where}" for src in stage.sources])


def _cohort(b: Builder, entry: _Stage, keys: _Keys, params: FunnelParams, scope: Scope) -> None:
    """Each person's first entry event; the cohort keeps those whose cell is known and in the filters/period."""
    dims = "".join(f", d{j}" for j in range(len(keys.all_dims)))
    rows = _rows(entry, f"{PERSON}, ts{dims}")
    order = ", ".join(["ts"] + [f"d{j}" for j in range(len(keys.all_dims))])
    first = f"SELECT {PERSON}, ts AS t0{dims}\nFROM (\n{indent(rows)}\n)\nQUALIFY row_number() OVER (PARTITION BY {PERSON} ORDER BY {order}) = 1"
    b.add(Cte("first_entry", first))
    conds = [f"d{j} IS NOT NULL" for j in range(len(keys.all_dims))]
    conds += [f"d{keys.all_dims.index(d)} IN ({', '.join(map(str, ords))})" for d, ords in keys.filters.items()]
    where = "\nWHERE " + "\n  AND ".join(conds) if conds else ""
    b.add(Cte("cohort", f"SELECT *\nFROM first_entry{where}", materialized=True, comment="the cohort: first entry in the period"))


def _reach(b: Builder, prev: _Stage, stage: _Stage, window: int) -> None:
    """When each person first reached ``stage``: at or after reaching ``prev``, within the window of entry."""
    rows = _rows(stage, f"{PERSON}, ts")
    before = "c" if prev.index == 0 else f"r{prev.index}"
    t_prev = "c.t0" if prev.index == 0 else f"{before}.t"
    if stage.defn.by_day:
        cond = f"CAST(x.ts AS DATE) >= CAST({t_prev} AS DATE) AND CAST(x.ts AS DATE) <= CAST(c.t0 AS DATE) + {window}"
    else:
        cond = f"x.ts >= {t_prev} AND x.ts <= c.t0 + INTERVAL {window} DAY"
    join_prev = "" if prev.index == 0 else f"JOIN reach_{prev.index} AS {before} ON {before}.{PERSON} = c.{PERSON}\n"
    body = (
        f"SELECT c.{PERSON}, min(x.ts) AS t\nFROM cohort AS c\n{join_prev}"
        f"JOIN (\n{indent(rows)}\n) AS x ON x.{PERSON} = c.{PERSON}\nWHERE {cond}\nGROUP BY c.{PERSON}"
    )
    b.add(Cte(f"reach_{stage.index}", body, materialized=True, comment=f"reached {stage.defn.name}"))


def _financed(b: Builder, sale: _Stage, contracts: list[DatasetRef]) -> None:
    srcs = [b.source(f"src_contract_{i}", r, [PERSON, f"CAST({ident(r.event_time)} AS DATE) AS day"]) for i, r in enumerate(contracts)]
    rows = union_all([f"SELECT {PERSON}, day FROM {s}" for s in srcs])
    before, after = FINANCE_WINDOW
    body = (
        f"SELECT DISTINCT s.{PERSON}\nFROM reach_{sale.index} AS s\nJOIN (\n{indent(rows)}\n) AS f ON f.{PERSON} = s.{PERSON}\n"
        f"WHERE f.day BETWEEN CAST(s.t AS DATE) - {before} AND CAST(s.t AS DATE) + {after}"
    )
    b.add(Cte("financed", body, materialized=True, comment="sales a captive contract started around"))


def _reached(b: Builder, names: list[str], keys: _Keys, stages: list[_Stage], financed: bool) -> PartSpec:
    """Cohort persons by furthest stage reached and cohort cell: one cell per person (L1 = 1)."""
    whens = []
    if financed:
        whens.append(f"WHEN c.{PERSON} IN (SELECT {PERSON} FROM financed) THEN {len(names)}")
    whens += [f"WHEN c.{PERSON} IN (SELECT {PERSON} FROM reach_{s.index}) THEN {s.index + 1}" for s in reversed(stages[1:])]
    furthest = f"CASE {' '.join(whens)} ELSE 1 END" if whens else "1"
    m = len(keys.dims)
    out = ", ".join([f"{furthest} AS k0"] + [f"c.d{j} AS k{j + 1}" for j in range(m)])
    group = ", ".join(f"k{j}" for j in range(m + 1))
    b.add(Cte("agg_reached", f"SELECT {out}, count(*) AS n\nFROM cohort AS c\nGROUP BY {group}"))
    axes = [axis(names), *(axis(a) for a in keys.axes)]
    plan = PartPlan(name="reached", cells=cross_cells(axes), bounds=Bounds(kind="count", max_cells_per_person=1), weight=1, derived=True)
    return PartSpec(plan=plan, agg="agg_reached", axes=axes)


__all__ = ["DIMENSIONS", "FINANCED", "FUNNELS", "FunnelParams", "StageDef", "compile_funnel", "stage_names"]
