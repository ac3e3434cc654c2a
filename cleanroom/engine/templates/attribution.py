"""``attribution``: sales (and financed sales) credited to campaigns or channels
(docs/explanation/metrics.md, "Attribution"), every credit computed in SQL as integer milli-credits.

One part, ``credit`` (a partition of each sale's credit): cells ``(value, financing)`` over the
campaign (or channel) domain + ``unattributed`` and, when the finance company's ``contracts`` are
in scope, ``financing`` in (``not_financed``, ``financed``); each sale adds exactly 1000
milli-credits in all (``kind="credit"``, ``per_person_total=1000``, ``unit=1000``). Credited
sales per value, financed credits, the financed share and the total number of sales are sums
and ratios of these cells, derived after the noise: no epsilon is spent on a separate count of
sales (it equals the sum of the credits).

One sale per person (its earliest; with ``month`` or ``months``, only if that sale falls in them), so
the credit vector moves by at most 1000 per person.
Credits: non-last touches get ``floor`` of their share (linear and position-based in exact
integer arithmetic; time-decay in floating point plus 1e-9 against representation error), and
the last touch gets the residue, so each sale sums to exactly 1000.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StrictInt, model_validator

from cleanroom.aggregate import Bounds
from cleanroom.engine._sql import Cte, ident, indent, lit_list, position, union_all
from cleanroom.engine.builder import Builder, Params, parse_params
from cleanroom.engine.compiled import CompiledQuery, PartPlan, PartSpec, axis, cross_cells
from cleanroom.engine.scope import DatasetRef, Scope
from cleanroom.engine.views import PERSON
from cleanroom.errors import PolicyError

TEMPLATE = "attribution"
MILLI = 1000
UNATTRIBUTED = "unattributed"
FINANCE_WINDOW = (7, 30)  # contract start within [sale day - 7, sale day + 30]
WEIGHTS = {"credit": 1}
FINANCING = ["not_financed", "financed"]
Model = Literal["first_touch", "last_touch", "linear", "time_decay", "position_based"]
MONTH_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"


class AttributionParams(Params):
    model: Model = "last_touch"
    by: Literal["campaign", "channel"] = "campaign"
    lookback_days: StrictInt = Field(default=30, ge=1, le=90)
    half_life_days: StrictInt = Field(default=7, ge=1, le=60)
    max_touches: StrictInt = Field(default=10, ge=1, le=20)
    month: str | None = Field(default=None, pattern=MONTH_PATTERN, description="Only sales in this month (YYYY-MM).")
    months: list[Annotated[str, Field(pattern=MONTH_PATTERN)]] | None = Field(default=None, min_length=1, max_length=24,
                                                                              description="Only sales in these months.")

    @model_validator(mode="after")
    def _one_period(self) -> AttributionParams:
        if self.month is not None and self.months is not None:
            raise ValueError("give month or months, not both")
        if self.months is not None and len(set(self.months)) != len(self.months):
            raise ValueError("months must be distinct")
        return self

    def period(self) -> list[str] | None:
        return [self.month] if self.month is not None else sorted(self.months) if self.months is not None else None


def raw_credit_sql(model: Model, half_life_days: int) -> str:
    """Milli-credits of touch ``i`` of ``n`` (oldest first) before the residue goes to touch n."""
    if model == "first_touch":
        return f"CASE WHEN i = 1 THEN {MILLI} ELSE 0 END"
    if model == "last_touch":
        return "0"
    if model == "linear":
        return f"{MILLI} // n"
    if model == "position_based":
        return f"CASE WHEN n = 2 THEN {MILLI // 2} WHEN i = 1 THEN 400 ELSE 200 // (n - 2) END"
    weight = f"power(2.0, -(date_diff('microsecond', ts, sold_at) / 86400000000.0) / {half_life_days})"
    return f"CAST(floor({MILLI} * {weight} / sum({weight}) OVER (PARTITION BY {PERSON}) + 1e-9) AS BIGINT)"


def compile_attribution(raw: dict[str, Any], scope: Scope) -> CompiledQuery:
    params = parse_params(AttributionParams, TEMPLATE, raw)
    domain = scope.domain(params.by, TEMPLATE)
    if UNATTRIBUTED in domain:
        message = f"{TEMPLATE}: the domain of {params.by!r} may not contain {UNATTRIBUTED!r}"
        raise PolicyError("policy.dimension_not_allowed", message, dimension=params.by)
    touches = _require(scope, "brand", "campaign_touches")
    sales = _require(scope, "dealer", "sales")
    contracts = scope.datasets_of("finance", "contracts")
    b = Builder(scope, TEMPLATE)
    _joins(b, touches, sales, contracts)
    _sales(b, sales, contracts, params.period())
    _touches(b, touches, params, domain)
    _credits(b, params, unattributed=len(domain) + 1)
    specs = _specs(b, domain, params, financed=bool(contracts))
    omitted = {} if contracts else {"credited_financed_sales": "no finance contracts dataset is in scope for this role"}
    meta = {"omitted": omitted, "financed": bool(contracts), "weights": {s.plan.name: s.plan.weight for s in specs}}
    return b.compiled(params, [params.by], specs, meta)


def _require(scope: Scope, role: Literal["brand", "dealer"], dataset: str) -> list[DatasetRef]:
    refs = scope.datasets_of(role, dataset)
    if not refs:
        raise PolicyError("policy.dataset_not_in_scope", f"{TEMPLATE} needs a {role}'s {dataset!r} dataset in scope", dataset=dataset)
    return refs


def _joins(b: Builder, touches: list[DatasetRef], sales: list[DatasetRef], contracts: list[DatasetRef]) -> None:
    for s in sales:
        for t in touches:
            b.join(t.qualified, s.qualified, "crediting touches to sales")
        for c in contracts:
            b.join(s.qualified, c.qualified, "marking financed sales")


def _union(names: list[str], cols: str) -> str:
    return union_all([f"SELECT {cols} FROM {n}" for n in names])


def _sales(b: Builder, sales: list[DatasetRef], contracts: list[DatasetRef], months: list[str] | None) -> None:
    """Each person's earliest sale (when given: only if it falls in one of ``months``), and which of those a contract started around."""
    srcs = [b.source(f"src_sale_{i}", r, [PERSON, f"CAST({ident(r.event_time)} AS TIMESTAMP) AS ts"]) for i, r in enumerate(sales)]
    earliest = f"SELECT {PERSON}, min(ts) AS sold_at\nFROM (\n{indent(_union(srcs, f'{PERSON}, ts'))}\n)\nGROUP BY {PERSON}"
    if months is not None:
        earliest += f"\nHAVING strftime(min(ts), '%Y-%m') IN {lit_list(months)}"
    b.add(Cte("sale", earliest, materialized=True))
    if not contracts:
        return
    cons = [b.source(f"src_contract_{i}", r, [PERSON, f"CAST({ident(r.event_time)} AS DATE) AS day"]) for i, r in enumerate(contracts)]
    before, after = FINANCE_WINDOW
    body = (
        f"SELECT DISTINCT s.{PERSON}\nFROM sale AS s\n"
        f"JOIN (\n{indent(_union(cons, f'{PERSON}, day'))}\n) AS c ON c.{PERSON} = s.{PERSON}\n"
        f"WHERE c.day BETWEEN CAST(s.sold_at AS DATE) - {before} AND CAST(s.sold_at AS DATE) + {after}"
    )
    b.add(Cte("financed", body, materialized=True))


def _touches(b: Builder, touches: list[DatasetRef], params: AttributionParams, domain: list[str]) -> None:
    """The last ``max_touches`` in-domain touches within the lookback, numbered oldest first."""
    srcs = []
    for i, r in enumerate(touches):
        select = [PERSON, f"CAST({ident(r.event_time)} AS TIMESTAMP) AS ts"]
        select += ["CAST(campaign AS VARCHAR) AS campaign", "CAST(channel AS VARCHAR) AS channel"]
        srcs.append(b.source(f"src_touch_{i}", r, select))
    body = (
        f"SELECT t.{PERSON}, {position(domain, f't.{params.by}')} AS k, t.ts, s.sold_at,\n"
        f"  row_number() OVER (PARTITION BY t.{PERSON} ORDER BY t.ts DESC, t.campaign DESC, t.channel DESC) AS back\n"
        f"FROM (\n{indent(_union(srcs, f'{PERSON}, ts, campaign, channel'))}\n) AS t\n"
        f"JOIN sale AS s ON s.{PERSON} = t.{PERSON}\n"
        f"WHERE t.ts BETWEEN s.sold_at - INTERVAL {params.lookback_days} DAY AND s.sold_at\n"
        f"  AND t.{params.by} IN {lit_list(domain)}\n"
        f"QUALIFY back <= {params.max_touches}"
    )
    b.add(Cte("touch", body, materialized=True))


def _credits(b: Builder, params: AttributionParams, unattributed: int) -> None:
    """Per touch milli-credits (residue to the last touch), plus 1000 per untouched sale.

    ``k`` is the touch's ordinal in the public domain; ``unattributed`` is the ordinal after it.
    """
    n = f"count(*) OVER (PARTITION BY {PERSON})"
    b.add(Cte("positioned", f"SELECT {PERSON}, k, ts, sold_at, {n} AS n,\n  {n} - back + 1 AS i\nFROM touch"))
    b.add(Cte("weighted", f"SELECT {PERSON}, k, i, n, {raw_credit_sql(params.model, params.half_life_days)} AS raw\nFROM positioned"))
    body = (
        f"SELECT {PERSON}, k,\n"
        f"  CASE WHEN i = n THEN {MILLI} - sum(CASE WHEN i < n THEN raw ELSE 0 END) OVER (PARTITION BY {PERSON}) ELSE raw END AS milli\n"
        "FROM weighted\nUNION ALL\n"
        f"SELECT {PERSON}, {unattributed} AS k, {MILLI} AS milli\nFROM sale\nWHERE {PERSON} NOT IN (SELECT {PERSON} FROM touch)"
    )
    b.add(Cte("credited", body, materialized=True))


def _specs(b: Builder, domain: list[str], params: AttributionParams, financed: bool) -> list[PartSpec]:
    """The one released part: milli-credits by (value, financing), a partition of every sale's 1000."""
    cells_axis = axis([*domain, UNATTRIBUTED])
    reach = max(1, min(params.max_touches, len(domain)))
    credit = Bounds(kind="credit", max_cells_per_person=reach, lower=0, upper=MILLI, per_person_total=MILLI)
    if financed:
        fin = f"CASE WHEN {PERSON} IN (SELECT {PERSON} FROM financed) THEN 2 ELSE 1 END"
        b.add(Cte("agg_credit", f"SELECT k AS k0, {fin} AS k1, sum(milli) AS n\nFROM credited\nGROUP BY ALL"))
        axes = [cells_axis, axis(FINANCING)]
    else:
        b.add(Cte("agg_credit", "SELECT k AS k0, sum(milli) AS n\nFROM credited\nGROUP BY k"))
        axes = [cells_axis]
    plan = PartPlan(name="credit", cells=cross_cells(axes), bounds=credit, weight=WEIGHTS["credit"], unit=MILLI, derived=True)
    return [PartSpec(plan=plan, agg="agg_credit", axes=axes)]


__all__ = ["FINANCING", "MILLI", "UNATTRIBUTED", "WEIGHTS", "AttributionParams", "compile_attribution", "raw_credit_sql"]
