"""Exact ground truth, computed from the generator's typed rows the way docs/explanation/metrics.md
and the template modules define each number.

Everything is keyed by the identity ``prepare`` derives (email where valid, else phone, else the
row is dropped), never by the generator's internal person id; every partner's rows count only
where *that partner's* consent holds the template's purposes at query time, and only each
person's earliest ``max_rows_per_person`` rows of each dataset count (the policy's row bound; the
synthetic data never reaches the demo's 50). The accuracy tests compare the engine's noisy
releases with these numbers, so this module never rounds, samples or shortcuts: it is the
reference the rest of the system is measured against.

It is an independent implementation: nothing here imports the engine. Consent, the row bound and
the simple metrics are DuckDB over the truth tables; the cohort funnel is computed person by
person in numpy (entry, then each stage reached in time order), not in the engine's SQL.

``funnel`` holds the cohort funnel (``cohort``: persons by furthest stage, stage counts and
conversions per entry and grouping) and, apart, ``stage_activity``: distinct persons active at
each stage, counted independently (volumes, not conversion: the funnel's ``view: activity``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cleanroom.synth import credits
from cleanroom.synth.calendar import Period
from cleanroom.synth.domains import (
    ATTRIBUTION_MODELS,
    CAMPAIGNS,
    CHANNELS,
    COHORT_FUNNELS,
    COHORT_GROUPINGS,
    DOMAINS,
    FINANCED,
    FINANCED_AFTER_DAYS,
    FINANCED_BEFORE_DAYS,
    FUNNEL_DIMENSIONS,
    FUNNEL_WINDOW_DAYS,
    HALF_LIFE_DAYS,
    LIFECYCLE_SEGMENTS,
    LOOKBACK_DAYS,
    MAX_ROWS_PER_PERSON,
    MAX_TOUCHES,
    MEDIAN_DAYS_CAP,
    SEEN_AGAIN_DAYS,
    STAGES,
    TEMPLATE_CONSENT,
    months,
)
from cleanroom.synth.sampling import DAY
from cleanroom.synth.writer import Output

NEVER = np.iinfo(np.int64).max  # "not reached": compares after every real time
NULL = np.iinfo(np.int64).max  # a dimension ordinal outside the public domain (sorts last, like SQL NULLs)
UNATTRIBUTED = "unattributed"
FINANCING = ("not_financed", "financed")
SEEN = ("not_seen", "seen_again")


@dataclass(frozen=True)
class Source:
    """One partner's dataset as a DuckDB relation name, with its role and columns."""

    partner: str
    role: str
    dataset: str
    columns: tuple[str, ...]
    times: tuple[str, ...]  # timestamp and date columns, in declared order
    dates: tuple[str, ...]  # the date columns among them

    @property
    def relation(self) -> str:
        return f"{self.partner.replace('-', '_')}__{self.dataset}"

    @property
    def event_time(self) -> str:
        """The row's time: the first declared timestamp or date column (contracts: start_date)."""
        return self.times[0]

    @property
    def by_day(self) -> bool:
        """The event time is a date: compare calendar days, not instants."""
        return self.event_time in self.dates

    def order(self) -> str:
        """Rows of one person, earliest first: event time, then every other column in declared order.

        The engine leaves private columns out of its order; the only one in the synthetic data
        (sales.salesperson) is declared last, so both orders keep the same rows.
        """
        cols = [self.event_time, *(c for c in self.columns if c != self.event_time)]
        return ", ".join(f'"{c}"' for c in cols)


class Truth:
    """Holds one DuckDB connection over the truth tables of a run and answers each metric."""

    def __init__(self, outputs: list[Output], roles: dict[str, str], period: Period, max_rows_per_person: int = MAX_ROWS_PER_PERSON) -> None:
        self.period = period
        self.max_rows = max_rows_per_person
        self.months = list(months(period.end_date))
        self.con = duckdb.connect()
        self.con.execute("SET threads TO 2")
        self.sources: list[Source] = []
        for out in outputs:
            schema = out.business.schema
            times = tuple(f.name for f in schema if pa.types.is_timestamp(f.type) or pa.types.is_date(f.type))
            dates = tuple(f.name for f in schema if pa.types.is_date(f.type))
            src = Source(out.partner, roles[out.partner], out.dataset, tuple(schema.names), times, dates)
            self.con.register(src.relation, out.truth_table())
            self.sources.append(src)
        self._consent_sets: set[tuple[str, tuple[str, ...]]] = set()
        self._materialized: set[str] = set()

    def close(self) -> None:
        self.con.close()

    # -- consent -------------------------------------------------------------------------
    def consented(self, src: Source, purposes: tuple[str, ...]) -> str:
        """A table of ``src``'s keyed rows whose person holds every purpose in the partner's own
        consent, at most ``max_rows_per_person`` per person (the earliest, see :meth:`Source.order`).

        Consent keeps or drops a person's rows all together, so bounding before or after it keeps
        the same rows. Materialized once per (dataset, purposes): several metrics reuse them.
        """
        name = f"c_{src.relation}_{'_'.join(purposes)}"
        if name not in self._materialized:
            table = self._consent_table(src.partner, purposes)
            self.con.execute(
                f"CREATE TEMP TABLE {name} AS SELECT * FROM {src.relation} WHERE ikey >= 0 AND ikey IN (SELECT ikey FROM {table}) "
                f"QUALIFY row_number() OVER (PARTITION BY ikey ORDER BY {src.order()}) <= {self.max_rows}"
            )
            self._materialized.add(name)
        return name

    def consented_inline(self, src: Source, purposes: tuple[str, ...]) -> str:
        """Like :meth:`consented` but as a subquery, for a single use that needs only ``ikey``."""
        table = self._consent_table(src.partner, purposes)
        return f"(SELECT ikey FROM {src.relation} WHERE ikey >= 0 AND ikey IN (SELECT ikey FROM {table}))"

    def _consent_table(self, partner: str, purposes: tuple[str, ...]) -> str:
        name = f"ok_{partner.replace('-', '_')}_{'_'.join(purposes)}"
        if (partner, purposes) not in self._consent_sets:
            consent = next(s for s in self.sources if s.partner == partner and s.dataset == "consent")
            listed = ", ".join(f"'{p}'" for p in purposes)
            self.con.execute(
                f"CREATE TEMP TABLE {name} AS SELECT ikey FROM {consent.relation} "
                f"WHERE ikey >= 0 AND purpose IN ({listed}) AND granted_at <= $now "
                f"AND (revoked_at IS NULL OR revoked_at > $now) GROUP BY ikey HAVING count(DISTINCT purpose) = {len(purposes)}",
                {"now": np.datetime64(self.period.end_exclusive, "s").item()},
            )
            self._consent_sets.add((partner, purposes))
        return name

    def of(self, role: str, dataset: str) -> list[Source]:
        return [s for s in self.sources if s.role == role and s.dataset == dataset]

    def ids(self, sql: str) -> np.ndarray:
        return np.sort(self.con.execute(f"SELECT DISTINCT ikey FROM {sql}").fetchnumpy()["ikey"])

    # -- funnel --------------------------------------------------------------------------
    def funnel(self) -> dict[str, Any]:
        """The cohort funnel per entry (``cohort``) and, apart, the stage activity volumes."""
        purposes = TEMPLATE_CONSENT["funnel"]
        return {
            "consent": list(purposes),
            "window_days": FUNNEL_WINDOW_DAYS,
            "financed_days": {"before": FINANCED_BEFORE_DAYS, "after": FINANCED_AFTER_DAYS},
            "max_rows_per_person": self.max_rows,
            "cohort": {entry: self.cohort(entry, purposes) for entry in COHORT_FUNNELS},
            "stage_activity": self.stage_activity(purposes),
        }

    # -- funnel: the cohort (engine/templates/funnel.py) ---------------------------------
    def cohort(self, entry: str, purposes: tuple[str, ...], window_days: int = FUNNEL_WINDOW_DAYS) -> dict[str, Any]:
        """Cohort persons by furthest stage, ungrouped and by each of ``COHORT_GROUPINGS[entry]``.

        The cohort: persons whose first entry row (earliest time) falls in a month of the data
        period. A person reaches stage k at the earliest stage-k row at or after reaching stage
        k-1 and at most ``window_days`` after entry (calendar days for a date-timed stage).
        After ``sale``, a person is ``financed`` when any contract starts within
        [sale day - 7, sale day + 30]. Each cohort person has exactly one furthest stage.
        """
        defs = COHORT_FUNNELS[entry]
        dims = COHORT_GROUPINGS[entry]
        first = self._stage_events(defs[0], purposes, dims)
        persons, t0 = _first_times(first["ikey"], first["t"])
        furthest = self._furthest(defs, persons, t0, purposes, window_days)
        names = [d[0] for d in defs] + ([FINANCED] if defs[-1][0] == "sale" else [])
        out: dict[str, Any] = {"stages": names}
        for grouping in [(), *((d,) for d in dims)]:
            domains = [self._domain(d) for d in grouping]
            cells = _cohort_cells(first, grouping, domains, len(persons))
            counts = _count_cells(furthest, cells, len(names), [len(d) for d in domains])
            if not grouping:
                out["overall"] = funnel_block(names, counts)
                out["by"] = {}
            else:
                out["by"][grouping[0]] = {"domain": domains[0], "cells": {v: funnel_block(names, counts[:, i]) for i, v in enumerate(domains[0])}}
        return out

    def _domain(self, dim: str) -> list[str]:
        return self.months if dim == "month" else list(DOMAINS[dim])

    def _stage_events(self, stage: tuple[Any, ...], purposes: tuple[str, ...], dims: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
        """A stage's consented, row-bounded rows as arrays: ``ikey``, ``t`` (epoch seconds), ``by_day``,
        and ``d_<dim>`` for each of ``dims`` and ``month``: the value's 0-based position in its domain (NULL outside)."""
        _, role, dataset, where = stage
        srcs = self.of(role, dataset)
        parts = []
        for s in srcs:
            cols = [f'CAST(epoch(CAST("{s.event_time}" AS TIMESTAMP)) AS BIGINT) AS t']
            for d in dims:
                if d == "month":
                    continue
                if d == "dealer_group":
                    value = f"'{s.partner}'" if role == "dealer" else "NULL"
                else:
                    value = f'CAST("{d}" AS VARCHAR)' if d in s.columns else "NULL"
                cols.append(f"CAST({value} AS VARCHAR) AS {d}")
            cond = f" WHERE \"{where[0]}\" = '{where[1]}'" if where else ""
            parts.append(f"SELECT ikey, {', '.join(cols)} FROM {self.consented(s, purposes)}{cond}")
        table = self.con.execute(" UNION ALL ".join(parts)).to_arrow_table() if parts else None
        if table is None or table.num_rows == 0:
            empty = np.zeros(0, dtype=np.int64)
            return {"ikey": empty, "t": empty, "by_day": np.bool_(any(s.by_day for s in srcs)), **{f"d_{d}": empty for d in (*dims, "month")}}
        out = {"ikey": _ints(table.column("ikey")), "t": _ints(table.column("t")), "by_day": np.bool_(all(s.by_day for s in srcs))}
        for d in dims:
            if d != "month":
                out[f"d_{d}"] = _ordinals(table.column(d), self._domain(d))
        out["d_month"] = self._month_ordinals(out["t"])
        return out

    def _month_ordinals(self, t: np.ndarray) -> np.ndarray:
        month = t.astype("datetime64[s]").astype("datetime64[M]").astype(np.int64)
        index = month - np.datetime64(self.months[0], "M").astype(np.int64)
        return np.where((index >= 0) & (index < len(self.months)), index, NULL)

    def _furthest(self, defs: tuple[Any, ...], persons: np.ndarray, t0: np.ndarray, purposes: tuple[str, ...], window: int) -> np.ndarray:
        """Each person's furthest stage as an index into the stage names (``financed`` last)."""
        furthest = np.zeros(len(persons), dtype=np.int64)
        if not len(persons):
            return furthest
        t_prev = t0
        for k, stage in enumerate(defs[1:], start=1):
            rows = self._stage_events(stage, purposes)
            at, known = _positions(persons, rows["ikey"])
            t = rows["t"]
            if rows["by_day"]:
                day = t // DAY
                ok = known & (day >= t_prev[at] // DAY) & (day <= t0[at] // DAY + window)
            else:
                ok = known & (t >= t_prev[at]) & (t <= t0[at] + window * DAY)
            t_k = np.full(len(persons), NEVER, dtype=np.int64)
            np.minimum.at(t_k, at[ok], t[ok])
            furthest[t_k != NEVER] = k
            t_prev = t_k
        if defs[-1][0] == "sale":
            contracts = self._stage_events(("contract", "finance", "contracts", None), purposes)
            at, known = _positions(persons, contracts["ikey"])
            sold = t_prev[at]
            day, sale_day = contracts["t"] // DAY, sold // DAY
            ok = known & (sold != NEVER) & (day >= sale_day - FINANCED_BEFORE_DAYS) & (day <= sale_day + FINANCED_AFTER_DAYS)
            furthest[np.unique(at[ok])] = len(defs)
        return furthest

    # -- funnel: stage activity (volumes, not conversion) -------------------------------------
    def stage_sql(self, stage: str, purposes: tuple[str, ...]) -> tuple[str, set[str]]:
        """Union of a stage's consented rows as (ikey, ts, dimensions...), and the dimensions it has."""
        _, role, dataset, time_col = next(s for s in STAGES if s[0] == stage)
        srcs = self.of(role, dataset)
        has = {d for d in ("model", "region", "channel") if all(d in s.columns for s in srcs)} | {"month"}
        if role == "dealer":
            has.add("dealer_group")
        parts = []
        for s in srcs:
            dims = ", ".join(f"{d}" if d in s.columns else f"NULL AS {d}" for d in ("model", "region", "channel"))
            group = f"'{s.partner}'" if role == "dealer" else "NULL"
            parts.append(
                f"SELECT ikey, CAST({time_col} AS TIMESTAMP) AS ts, {dims}, {group} AS dealer_group, "
                f"strftime(CAST({time_col} AS TIMESTAMP), '%Y-%m') AS month FROM {self.consented(s, purposes)}"
            )
        name = f"stage_{stage}_{'_'.join(purposes)}"
        if name not in self._materialized:
            self.con.execute(f"CREATE TEMP TABLE {name} AS " + " UNION ALL ".join(parts))
            self._materialized.add(name)
        return name, has

    def stage_activity(self, purposes: tuple[str, ...]) -> dict[str, Any]:
        """Distinct persons with a row at each stage, each stage on its own (a person may have a
        sale without a lead): volumes, never a conversion. Plus median days between first rows."""
        stages = [s[0] for s in STAGES]
        sql = {st: self.stage_sql(st, purposes) for st in stages}
        overall = {st: self._count(q) for st, (q, _) in sql.items()}
        by = {dim: self._funnel_by(dim, sql) for dim in FUNNEL_DIMENSIONS}
        medians = {f"{a}->{b}": self._median_days(sql[a][0], sql[b][0]) for a, b in zip(stages, stages[1:], strict=False)}
        return {"stages": stages, "overall": overall, "by": by, "median_days": medians}

    def _count(self, sql: str) -> int:
        return int(self.con.execute(f"SELECT count(DISTINCT ikey) FROM {sql}").fetchone()[0])  # type: ignore[index]

    def _funnel_by(self, dim: str, sql: dict[str, tuple[str, set[str]]]) -> dict[str, Any]:
        domain = self._domain(dim)
        cells: dict[str, dict[str, int]] = {}
        for stage, (q, has) in sql.items():
            if dim in has:
                found = dict(self.con.execute(f"SELECT {dim}, count(DISTINCT ikey) FROM {q} WHERE {dim} IS NOT NULL GROUP BY {dim}").fetchall())
                cells[stage] = {v: int(found.get(v, 0)) for v in domain}
        omitted = [st for st in sql if st not in cells]
        return {"domain": domain, "stages_omitted": omitted, "cells": cells}

    def _median_days(self, earlier: str, later: str) -> dict[str, Any]:
        """Days between each person's first rows of two stages (>= 0 only, capped), and their median."""
        days = self.con.execute(
            f"WITH a AS (SELECT ikey, min(CAST(ts AS DATE)) AS d FROM {earlier} GROUP BY ikey), "
            f"b AS (SELECT ikey, min(CAST(ts AS DATE)) AS d FROM {later} GROUP BY ikey) "
            f"SELECT least(b.d - a.d, {MEDIAN_DAYS_CAP}) AS days FROM a JOIN b USING (ikey) WHERE b.d - a.d >= 0"
        ).fetchnumpy()["days"]
        return median_summary(np.sort(days.astype(np.int64)))

    # -- attribution ---------------------------------------------------------------------
    def attribution(self) -> dict[str, Any]:
        purposes = TEMPLATE_CONSENT["attribution"]
        sales = " UNION ALL ".join(f"SELECT ikey, sold_at FROM {self.consented(s, purposes)}" for s in self.of("dealer", "sales"))
        contracts = " UNION ALL ".join(f"SELECT ikey, start_date FROM {self.consented(s, purposes)}" for s in self.of("finance", "contracts"))
        touches = " UNION ALL ".join(f"SELECT ikey, touched_at, campaign, channel FROM {self.consented(s, purposes)}" for s in self.of("brand", "campaign_touches"))
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE attr_sales AS WITH s AS (SELECT ikey, min(sold_at) AS sold_at FROM ({sales}) GROUP BY ikey) "
            f"SELECT s.ikey, s.sold_at, strftime(s.sold_at, '%Y-%m') AS month, EXISTS (SELECT 1 FROM ({contracts}) c WHERE c.ikey = s.ikey "
            f"AND c.start_date BETWEEN CAST(s.sold_at AS DATE) - {FINANCED_BEFORE_DAYS} AND CAST(s.sold_at AS DATE) + {FINANCED_AFTER_DAYS}) AS financed "
            f"FROM s ORDER BY s.ikey"
        )
        sale = self.con.execute("SELECT ikey, financed, month FROM attr_sales ORDER BY ikey").fetchnumpy()
        touch = self.con.execute(
            f"WITH t AS (SELECT t.ikey, t.touched_at, t.campaign, t.channel, "
            f"epoch(s.sold_at) - epoch(t.touched_at) AS seconds, "
            f"row_number() OVER (PARTITION BY t.ikey ORDER BY t.touched_at DESC, t.campaign DESC, t.channel DESC) AS rn "
            f"FROM ({touches}) t JOIN attr_sales s USING (ikey) "
            f"WHERE t.touched_at BETWEEN s.sold_at - INTERVAL {LOOKBACK_DAYS} DAY AND s.sold_at) "
            f"SELECT ikey, seconds, campaign, channel FROM t WHERE rn <= {MAX_TOUCHES} ORDER BY ikey, touched_at, campaign, channel"
        ).fetchnumpy()
        sale_month = np.array([self.months.index(m) if m in self.months else -1 for m in sale["month"]], dtype=np.int64)
        return attribution_result(sale["ikey"], sale["financed"].astype(bool), touch, sale_month, self.months)

    # -- overlap -------------------------------------------------------------------------
    def overlap(self) -> dict[str, Any]:
        """Every pair of distinct datasets (names sorted, as the engine pairs them), with its Venn regions."""
        purposes = TEMPLATE_CONSENT["overlap"]
        business = sorted((s for s in self.sources if s.dataset != "consent"), key=lambda s: f"{s.partner}.{s.dataset}")
        ids = {s: self.ids(self.consented_inline(s, purposes)) for s in business}
        pairs = []
        for i, a in enumerate(business):
            for b in business[i + 1 :]:
                shared = len(np.intersect1d(ids[a], ids[b], assume_unique=True))
                pairs.append({"a": f"{a.partner}.{a.dataset}", "b": f"{b.partner}.{b.dataset}",
                              "persons_a": len(ids[a]), "persons_b": len(ids[b]), "shared": shared,
                              "venn": {"a_only": len(ids[a]) - shared, "b_only": len(ids[b]) - shared, "both": shared}})
        return {"consent": list(purposes), "pairs": pairs}

    # -- lifecycle -----------------------------------------------------------------------
    def lifecycle(self) -> dict[str, Any]:
        """Persons with a contract ending in the window, each in the segment of its earliest such
        contract (ties: the segment's order in the public domain), split by seen again or not."""
        purposes = TEMPLATE_CONSENT["lifecycle"]
        start, end = (np.datetime64(d, "D").item() for d in self.period.window)
        contracts = " UNION ALL ".join(f"SELECT * FROM {self.consented(s, purposes)}" for s in self.of("finance", "contracts"))
        activity = " UNION ALL ".join(
            f"SELECT ikey, CAST({col} AS TIMESTAMP) AS ts FROM {self.consented(s, purposes)}"
            for role, ds, col in (("brand", "web_sessions", "session_at"), ("dealer", "leads", "lead_at"), ("dealer", "test_drives", "drive_at"))
            for s in self.of(role, ds)
        )
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE ending AS SELECT e.*, EXISTS (SELECT 1 FROM ({activity}) a WHERE a.ikey = e.ikey "
            f"AND a.ts >= CAST(e.end_date AS TIMESTAMP) - INTERVAL {SEEN_AGAIN_DAYS} DAY) AS seen_again "
            f"FROM ({contracts}) e WHERE e.end_date BETWEEN $start AND $end",
            {"start": start, "end": end},
        )
        total = self._ending_total()
        by = {seg: self._ending_by(seg, list(DOMAINS[seg])) for seg in LIFECYCLE_SEGMENTS}
        return {"consent": list(purposes), "window": {"start": str(start), "end": str(end)},
                "seen_again_days": SEEN_AGAIN_DAYS, "total": total, "by": by}

    def _ending_total(self) -> dict[str, int]:
        """Distinct persons; a person seen again after any of its ending contracts is seen again after its earliest."""
        ending, seen = self.con.execute("SELECT count(DISTINCT ikey), count(DISTINCT ikey) FILTER (WHERE seen_again) FROM ending").fetchone()  # type: ignore[misc]
        return {"contracts_ending": int(ending), "seen_again": int(seen), "not_seen": int(ending) - int(seen)}

    def _ending_by(self, segment: str, domain: list[str]) -> dict[str, dict[str, int]]:
        rows = self.con.execute(
            f"SELECT ikey, CAST(end_date AS DATE) AS end_day, list_position($domain, CAST({segment} AS VARCHAR)) AS seg, seen_again FROM ending",
            {"domain": domain},
        ).fetchall()
        earliest: dict[int, tuple[Any, int, bool]] = {}
        for ikey, end_day, seg, seen in rows:
            if seg is not None and (ikey not in earliest or (end_day, seg) < earliest[ikey][:2]):
                earliest[ikey] = (end_day, seg, bool(seen))
        counts = {v: {"contracts_ending": 0, "seen_again": 0, "not_seen": 0} for v in domain}
        for _, seg, seen in earliest.values():
            cell = counts[domain[seg - 1]]
            cell["contracts_ending"] += 1
            cell["seen_again" if seen else "not_seen"] += 1
        return counts


# -- the cohort funnel, person by person -----------------------------------------------------------


def _ints(column: pa.ChunkedArray) -> np.ndarray:
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.int64)


def _ordinals(column: pa.ChunkedArray, domain: list[str]) -> np.ndarray:
    """0-based position of each value in the public domain; NULL (sorts last) outside it."""
    index = np.asarray(pc.index_in(column, value_set=pa.array(domain, pa.string())).fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
    return np.where(index < 0, NULL, index)


def _first_times(ikey: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every person with a row (sorted) and the time of its earliest row."""
    persons, inverse = np.unique(ikey, return_inverse=True)
    t0 = np.full(len(persons), NEVER, dtype=np.int64)
    np.minimum.at(t0, inverse, t)
    return persons, t0


def _positions(persons: np.ndarray, ikey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's person index in ``persons`` (sorted, not empty), and whether it is one of them."""
    at = np.minimum(np.searchsorted(persons, ikey), len(persons) - 1)
    return at, persons[at] == ikey


def _cohort_cells(first: dict[str, np.ndarray], grouping: tuple[str, ...], domains: list[list[str]], n: int) -> np.ndarray:
    """Each person's cohort cell (mixed radix over ``grouping``), -1 outside the cohort.

    The cell comes from the person's first entry row: earliest time, ties broken by the
    ordinals of the grouped dimensions, then of the month (the engine's public order). A person
    is in the cohort when that row's month is in the period and each grouped value in its domain.
    """
    keys = [*grouping, *(["month"] if "month" not in grouping else [])]
    order = np.lexsort([first[f"d_{d}"] for d in reversed(keys)] + [first["t"], first["ikey"]])
    ikey = first["ikey"][order]
    starts = np.flatnonzero(np.r_[True, ikey[1:] != ikey[:-1]]) if len(ikey) else np.zeros(0, dtype=np.int64)
    assert len(starts) == n
    rows = order[starts]
    inside = np.ones(n, dtype=bool)
    cell = np.zeros(n, dtype=np.int64)
    for d in keys:
        inside &= first[f"d_{d}"][rows] != NULL
    for d, domain in zip(grouping, domains, strict=True):
        cell = cell * len(domain) + np.where(inside, first[f"d_{d}"][rows], 0)
    return np.where(inside, cell, -1)


def _count_cells(furthest: np.ndarray, cells: np.ndarray, stages: int, sizes: list[int]) -> np.ndarray:
    """Cohort persons by (furthest stage, cell): shape (stages,) ungrouped, (stages, cells) grouped."""
    width = int(np.prod(sizes)) if sizes else 1
    inside = cells >= 0
    counts = np.bincount(furthest[inside] * width + cells[inside], minlength=stages * width).reshape(stages, width)
    return counts[:, 0] if not sizes else counts


def funnel_block(names: list[str], furthest: np.ndarray) -> dict[str, Any]:
    """One cohort cell: persons by furthest stage (the engine's ``reached`` partition) and what derives from it.

    ``persons[stage]`` counts those who reached the stage (furthest stage at or after it; the
    financed branch counts as after ``sale``; ``financed`` counts the financed only);
    ``conversion`` divides by the previous stage (``financed``: by ``sale``, the financed share)
    and ``cumulative_conversion`` by the cohort; neither exists for the entry stage.
    """
    n = [int(x) for x in furthest]
    financed = names[-1] == FINANCED
    steps = len(names) - 1 if financed else len(names)
    persons = {names[k]: sum(n[k:]) for k in range(steps)}
    if financed:
        persons[FINANCED] = n[-1]
    cohort = sum(n)
    before = {names[k]: (names[k - 1] if k < steps else names[steps - 1]) for k in range(1, len(names))}
    block: dict[str, Any] = {
        "cohort": cohort,
        "furthest": dict(zip(names, n, strict=True)),
        "persons": persons,
        "conversion": {names[0]: None, **{s: _ratio(persons[s], persons[p]) for s, p in before.items()}},
        "cumulative_conversion": {names[0]: None, **{s: _ratio(persons[s], cohort) for s in names[1:]}},
    }
    if financed:
        block["financed_share"] = _ratio(persons[FINANCED], persons[names[steps - 1]])
    return block


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


# -- attribution and medians -----------------------------------------------------------------------


def median_summary(days: np.ndarray) -> dict[str, Any]:
    """Median of sorted days; for an even count also the two middle values (a histogram median is the lower)."""
    n = len(days)
    if n == 0:
        return {"persons": 0, "median": None, "median_low": None, "median_high": None}
    low, high = int(days[(n - 1) // 2]), int(days[n // 2])
    return {"persons": n, "median": (low + high) / 2, "median_low": low, "median_high": high}


def attribution_result(
    sale_ikey: np.ndarray, financed: np.ndarray, touch: dict[str, np.ndarray], sale_month: np.ndarray, month_names: list[str]
) -> dict[str, Any]:
    """Credited sales and financed sales per campaign and channel for every credit model, the
    engine's ``credit`` partition (value incl. ``unattributed`` x financing), overall and by the
    month of the sale (``sale_month``: index into ``month_names``, -1 outside them)."""
    group = np.searchsorted(sale_ikey, touch["ikey"])
    days = touch["seconds"].astype(np.float64) / 86_400
    fin = financed[group]
    codes = {"campaign": _codes(touch["campaign"], CAMPAIGNS), "channel": _codes(touch["channel"], CHANNELS)}
    domains = {"campaign": CAMPAIGNS, "channel": CHANNELS}
    touched = np.zeros(len(sale_ikey), dtype=bool)
    touched[group] = True
    nm = len(month_names)
    month_of_sale = np.where(sale_month >= 0, sale_month, nm)  # nm: outside the months (kept in the overall numbers)
    by: dict[str, dict[str, Any]] = {dim: {} for dim in codes}
    credit: dict[str, dict[str, Any]] = {dim: {} for dim in codes}
    monthly: list[dict[str, dict[str, Any]]] = [{dim: {} for dim in codes} for _ in month_names]
    untouched = np.bincount(month_of_sale[~touched] * 2 + financed[~touched], minlength=(nm + 1) * 2).reshape(nm + 1, 2) * 1000
    for model in ATTRIBUTION_MODELS:
        milli = credits.milli_credits(model, group, days, HALF_LIFE_DAYS)
        for dim, code in codes.items():
            values = len(domains[dim])
            index = (month_of_sale[group] * (values + 1) + code) * 2 + fin
            cells = np.bincount(index, weights=milli, minlength=(nm + 1) * (values + 1) * 2).astype(np.int64).reshape(nm + 1, values + 1, 2)
            cells[:, values, :] = untouched
            total = cells.sum(axis=0)
            by[dim][model] = {v: {"credited_sales": int(total[i].sum()) / 1000, "credited_financed_sales": int(total[i, 1]) / 1000}
                              for i, v in enumerate(domains[dim])}
            credit[dim][model] = _credit_cells(total, domains[dim])
            for m in range(nm):
                monthly[m][dim][model] = _credit_cells(cells[m], domains[dim])
    by_month = {
        name: {"sales": int((sale_month == m).sum()), "financed_sales": int((financed & (sale_month == m)).sum()),
               "unattributed": int((~touched & (sale_month == m)).sum()), "credit": monthly[m]}
        for m, name in enumerate(month_names)
    }
    return {
        "consent": list(TEMPLATE_CONSENT["attribution"]),
        "params": {"lookback_days": LOOKBACK_DAYS, "half_life_days": HALF_LIFE_DAYS, "max_touches": MAX_TOUCHES},
        "sales": len(sale_ikey),
        "financed_sales": int(financed.sum()),
        "unattributed": int((~touched).sum()),
        "by": by,
        "credit": credit,
        "by_month": by_month,
    }


def _credit_cells(cells: np.ndarray, domain: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """(value incl. unattributed) x financing, in sales (milli-credits / 1000)."""
    return {v: {f: int(cells[i, j]) / 1000 for j, f in enumerate(FINANCING)} for i, v in enumerate([*domain, UNATTRIBUTED])}


def _codes(values: np.ndarray, domain: tuple[str, ...]) -> np.ndarray:
    lookup = {v: i for i, v in enumerate(domain)}
    return np.array([lookup[v] for v in values], dtype=np.int64)
