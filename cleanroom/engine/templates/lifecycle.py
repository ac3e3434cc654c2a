"""``lifecycle``: contracts ending in a window, by segment, and how many of those persons were
seen again at the brand or a dealer (metrics.md, "Lifecycle").

Parts (epsilon weights in brackets):

- ``ending`` [1]: cells ``(segment,)``; distinct persons with a contract whose ``end_date`` is in
  ``[window_start, window_end]``, in at most ``max_groups_per_person`` segments (earliest end wins).
- ``seen_again`` [1]: cells ``(segment,)``; of those, persons with a ``web_sessions``, ``leads``
  or ``test_drives`` row at or after ``end_date - 180 days`` (the earliest such end date of
  the person in that segment). Omitted when none of those datasets is in scope.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import model_validator

from cleanroom.engine._sql import Cte, date_lit, ident, indent, position, union_all
from cleanroom.engine.builder import Builder, Params, dim_expr, parse_params
from cleanroom.engine.compiled import CompiledQuery, axis, count_spec
from cleanroom.engine.scope import DatasetRef, PartnerRole, Scope
from cleanroom.engine.views import PERSON
from cleanroom.errors import PolicyError

TEMPLATE = "lifecycle"
MAX_WINDOW_DAYS = 366
SEEN_WITHIN_DAYS = 180
ACTIVITY: tuple[tuple[PartnerRole, str], ...] = (("brand", "web_sessions"), ("dealer", "leads"), ("dealer", "test_drives"))
WEIGHTS = {"ending": 1, "seen_again": 1}


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
    _ending(b, contracts, params, domain, scope.max_groups_per_person)
    reach = min(scope.max_groups_per_person, len(domain))
    seg_axis = axis(domain)
    specs = [count_spec("ending", "agg_ending", [seg_axis], reach=reach, weight=WEIGHTS["ending"])]
    if activity:
        _seen(b, activity)
        specs.append(count_spec("seen_again", "agg_seen_again", [seg_axis], reach=reach, weight=WEIGHTS["seen_again"]))
    meta = {"parts_omitted": [] if activity else ["seen_again"], "weights": {s.plan.name: s.plan.weight for s in specs}}
    return b.compiled(params, [params.by], specs, meta)


def _ending(b: Builder, contracts: list[DatasetRef], params: LifecycleParams, domain: list[str], groups: int) -> None:
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
        f"SELECT {PERSON}, seg AS k0, min(end_day) AS end_day\nFROM (\n{indent(rows)}\n)\n"
        f"WHERE end_day BETWEEN {date_lit(params.window_start)} AND {date_lit(params.window_end)}\n"
        f"  AND seg IS NOT NULL\nGROUP BY {PERSON}, seg\n"
        f"QUALIFY row_number() OVER (PARTITION BY {PERSON} ORDER BY min(end_day), seg) <= {groups}"
    )
    b.add(Cte("ending", body, materialized=True))
    b.add(Cte("agg_ending", "SELECT k0, count(*) AS n\nFROM ending\nGROUP BY k0"))


def _seen(b: Builder, activity: list[DatasetRef]) -> None:
    srcs = [b.source(f"src_activity_{i}", r, [PERSON, f"CAST({ident(r.event_time)} AS TIMESTAMP) AS ts"]) for i, r in enumerate(activity)]
    rows = union_all([f"SELECT {PERSON}, ts FROM {s}" for s in srcs])
    b.add(Cte("last_seen", f"SELECT {PERSON}, max(ts) AS ts\nFROM (\n{indent(rows)}\n)\nGROUP BY {PERSON}"))
    body = (
        f"SELECT e.k0, count(*) AS n\nFROM ending AS e\nJOIN last_seen AS l ON l.{PERSON} = e.{PERSON}\n"
        f"WHERE l.ts >= CAST(e.end_day AS TIMESTAMP) - INTERVAL {SEEN_WITHIN_DAYS} DAY\nGROUP BY e.k0"
    )
    b.add(Cte("agg_seen_again", body))


__all__ = ["WEIGHTS", "LifecycleParams", "compile_lifecycle"]
