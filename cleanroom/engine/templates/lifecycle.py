"""``lifecycle``: contracts ending in a window, by segment, and how many of those persons were
seen again at the brand or a dealer (metrics.md, "Lifecycle").

One part, ``ending`` (a partition): cells ``(segment, seen)`` with ``seen`` in (``not_seen``,
``seen_again``). A person with a contract whose ``end_date`` is in ``[window_start,
window_end]`` counts once, in the segment of its earliest such contract (so L1 = 1), as
``seen_again`` when it has a ``web_sessions``, ``leads`` or ``test_drives`` row at or after
``end_date - 180 days``. Contracts ending per segment, persons seen again and the rate are sums
and ratios of these cells, derived after the noise. Without any activity dataset in scope
every person is ``not_seen`` and the seen-again numbers are omitted.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import model_validator

from cleanroom.engine._sql import Cte, date_lit, ident, indent, position, union_all
from cleanroom.engine.builder import Builder, Params, dim_expr, parse_params
from cleanroom.aggregate import Bounds
from cleanroom.engine.compiled import CompiledQuery, PartPlan, PartSpec, axis, cross_cells
from cleanroom.engine.scope import DatasetRef, PartnerRole, Scope
from cleanroom.engine.views import PERSON
from cleanroom.errors import PolicyError

TEMPLATE = "lifecycle"
MAX_WINDOW_DAYS = 366
SEEN_WITHIN_DAYS = 180
ACTIVITY: tuple[tuple[PartnerRole, str], ...] = (("brand", "web_sessions"), ("dealer", "leads"), ("dealer", "test_drives"))
WEIGHTS = {"ending": 1}
SEEN = ["not_seen", "seen_again"]


class LifecycleParams(Params):
    window_start: date
    window_end: date
    by: Literal["product", "amount_band", "model"] = "product"

    @model_validator(mode="after")
    def _window(self) -> LifecycleParams:
        if self.window_end < self.window_start:
            raise ValueError("window_end must not be before window_start")
        if (self.window_end - self.window_start).days > MAX_WINDOW_DAYS:
            raise ValueError(f"the window may span at most {MAX_WINDOW_DAYS} days")
        return self


def compile_lifecycle(raw: dict[str, Any], scope: Scope) -> CompiledQuery:
    params = parse_params(LifecycleParams, TEMPLATE, raw)
    domain = scope.domain(params.by, TEMPLATE)
    contracts = scope.datasets_of("finance", "contracts")
    if not contracts:
        raise PolicyError("policy.dataset_not_in_scope", f"{TEMPLATE} needs a finance partner's 'contracts' dataset in scope", dataset="contracts")
    activity = [r for role, name in ACTIVITY for r in scope.datasets_of(role, name)]
    b = Builder(scope, TEMPLATE)
    for c in contracts:
        for a in activity:
            b.join(c.qualified, a.qualified, "seen again")
    _ending(b, contracts, params, domain)
    seen = "0"
    if activity:
        _seen(b, activity)
        seen = f"CASE WHEN {PERSON} IN (SELECT {PERSON} FROM seen_again) THEN 1 ELSE 0 END"
    b.add(Cte("agg_ending", f"SELECT k0, 1 + {seen} AS k1, count(*) AS n\nFROM ending\nGROUP BY ALL"))
    axes = [axis(domain), axis(SEEN)]
    plan = PartPlan(name="ending", cells=cross_cells(axes), bounds=Bounds(kind="count", max_cells_per_person=1), weight=1, derived=True)
    omitted = {} if activity else {"seen_again": "no web_sessions, leads or test_drives dataset is in scope for this role"}
    meta = {"omitted": omitted, "window": [params.window_start.isoformat(), params.window_end.isoformat()], "weights": WEIGHTS}
    return b.compiled(params, [params.by], [PartSpec(plan=plan, agg="agg_ending", axes=axes)], meta)


def _ending(b: Builder, contracts: list[DatasetRef], params: LifecycleParams, domain: list[str]) -> None:
    """Each person's earliest contract end in the window, and its segment (one per person)."""
    srcs = []
    for i, r in enumerate(contracts):
        seg = dim_expr(r, params.by)
        if r.columns.get("end_date") != "timestamp":
            raise PolicyError("policy.dataset_not_in_scope", f"{TEMPLATE}: {r.qualified} exposes no end_date", dataset=r.qualified)
        if seg is None:
            raise PolicyError("policy.dimension_not_allowed", f"{TEMPLATE}: {r.qualified} has no dimension {params.by!r}", dimension=params.by)
        srcs.append(b.source(f"src_contract_{i}", r, [PERSON, f"CAST({ident('end_date')} AS DATE) AS end_day", f"{position(domain, seg)} AS seg"]))
    rows = union_all([f"SELECT {PERSON}, end_day, seg FROM {s}" for s in srcs])
    body = (
        f"SELECT {PERSON}, seg AS k0, end_day\nFROM (\n{indent(rows)}\n)\n"
        f"WHERE end_day BETWEEN {date_lit(params.window_start)} AND {date_lit(params.window_end)}\n"
        f"  AND seg IS NOT NULL\n"
        f"QUALIFY row_number() OVER (PARTITION BY {PERSON} ORDER BY end_day, seg) = 1"
    )
    b.add(Cte("ending", body, materialized=True))


def _seen(b: Builder, activity: list[DatasetRef]) -> None:
    srcs = [b.source(f"src_activity_{i}", r, [PERSON, f"CAST({ident(r.event_time)} AS TIMESTAMP) AS ts"]) for i, r in enumerate(activity)]
    rows = union_all([f"SELECT {PERSON}, ts FROM {s}" for s in srcs])
    b.add(Cte("last_seen", f"SELECT {PERSON}, max(ts) AS ts\nFROM (\n{indent(rows)}\n)\nGROUP BY {PERSON}"))
    body = (
        f"SELECT e.{PERSON}\nFROM ending AS e\nJOIN last_seen AS l ON l.{PERSON} = e.{PERSON}\n"
        f"WHERE l.ts >= CAST(e.end_day AS TIMESTAMP) - INTERVAL {SEEN_WITHIN_DAYS} DAY"
    )
    b.add(Cte("seen_again", body))


__all__ = ["SEEN", "WEIGHTS", "LifecycleParams", "compile_lifecycle"]
