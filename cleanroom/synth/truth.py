"""Exact ground truth, computed in DuckDB the way docs/explanation/metrics.md defines each number.

Everything is keyed by the identity ``prepare`` derives (email where valid, else phone, else the
row is dropped), never by the generator's internal person id, and every partner's rows count only
where *that partner's* consent holds the template's purposes at query time. The accuracy tests
compare the engine's noisy releases with these numbers, so this module never rounds, samples or
shortcuts: it is the reference the rest of the system is measured against.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np

from cleanroom.synth import credits
from cleanroom.synth.calendar import Period
from cleanroom.synth.domains import (
    ATTRIBUTION_MODELS,
    CAMPAIGNS,
    CHANNELS,
    DOMAINS,
    FINANCED_AFTER_DAYS,
    FINANCED_BEFORE_DAYS,
    FUNNEL_DIMENSIONS,
    HALF_LIFE_DAYS,
    LIFECYCLE_SEGMENTS,
    LOOKBACK_DAYS,
    MAX_TOUCHES,
    MEDIAN_DAYS_CAP,
    SEEN_AGAIN_DAYS,
    STAGES,
    TEMPLATE_CONSENT,
    months,
)
from cleanroom.synth.writer import Output


@dataclass(frozen=True)
class Source:
    """One partner's dataset as a DuckDB relation name, with its role and columns."""

    partner: str
    role: str
    dataset: str
    columns: tuple[str, ...]

    @property
    def relation(self) -> str:
        return f"{self.partner.replace('-', '_')}__{self.dataset}"


class Truth:
    """Holds one DuckDB connection over the truth tables of a run and answers each metric."""

    def __init__(self, outputs: list[Output], roles: dict[str, str], period: Period) -> None:
        self.period = period
        self.con = duckdb.connect()
        self.con.execute("SET threads TO 2")
        self.sources: list[Source] = []
        for out in outputs:
            src = Source(out.partner, roles[out.partner], out.dataset, tuple(out.business.column_names))
            self.con.register(src.relation, out.truth_table())
            self.sources.append(src)
        self._consent_sets: set[tuple[str, tuple[str, ...]]] = set()
        self._materialized: set[str] = set()

    def close(self) -> None:
        self.con.close()

    # -- consent -------------------------------------------------------------------------
    def consented(self, src: Source, purposes: tuple[str, ...]) -> str:
        """A table of ``src``'s keyed rows whose person holds every purpose in the partner's own consent.

        Materialized once per (dataset, purposes): several metrics reuse the same consented rows.
        """
        name = f"c_{src.relation}_{'_'.join(purposes)}"
        if name not in self._materialized:
            table = self._consent_table(src.partner, purposes)
            self.con.execute(f"CREATE TEMP TABLE {name} AS SELECT * FROM {src.relation} WHERE ikey >= 0 AND ikey IN (SELECT ikey FROM {table})")
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

    def funnel(self) -> dict[str, Any]:
        purposes = TEMPLATE_CONSENT["funnel"]
        stages = [s[0] for s in STAGES]
        sql = {st: self.stage_sql(st, purposes) for st in stages}
        overall = {st: self._count(q) for st, (q, _) in sql.items()}
        by = {dim: self._funnel_by(dim, sql) for dim in FUNNEL_DIMENSIONS}
        medians = {f"{a}->{b}": self._median_days(sql[a][0], sql[b][0]) for a, b in zip(stages, stages[1:], strict=False)}
        return {"stages": stages, "consent": list(purposes), "overall": overall, "by": by, "median_days": medians}

    def _count(self, sql: str) -> int:
        return int(self.con.execute(f"SELECT count(DISTINCT ikey) FROM {sql}").fetchone()[0])  # type: ignore[index]

    def _funnel_by(self, dim: str, sql: dict[str, tuple[str, set[str]]]) -> dict[str, Any]:
        domain = list(months(self.period.end_date)) if dim == "month" else list(DOMAINS[dim])
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
            f"SELECT s.ikey, s.sold_at, EXISTS (SELECT 1 FROM ({contracts}) c WHERE c.ikey = s.ikey "
            f"AND c.start_date BETWEEN CAST(s.sold_at AS DATE) - {FINANCED_BEFORE_DAYS} AND CAST(s.sold_at AS DATE) + {FINANCED_AFTER_DAYS}) AS financed "
            f"FROM s ORDER BY s.ikey"
        )
        sale = self.con.execute("SELECT ikey, financed FROM attr_sales ORDER BY ikey").fetchnumpy()
        touch = self.con.execute(
            f"WITH t AS (SELECT t.ikey, t.touched_at, t.campaign, t.channel, "
            f"epoch(s.sold_at) - epoch(t.touched_at) AS seconds, "
            f"row_number() OVER (PARTITION BY t.ikey ORDER BY t.touched_at DESC, t.campaign DESC) AS rn "
            f"FROM ({touches}) t JOIN attr_sales s USING (ikey) "
            f"WHERE t.touched_at BETWEEN s.sold_at - INTERVAL {LOOKBACK_DAYS} DAY AND s.sold_at) "
            f"SELECT ikey, seconds, campaign, channel FROM t WHERE rn <= {MAX_TOUCHES} ORDER BY ikey, touched_at, campaign"
        ).fetchnumpy()
        return attribution_result(sale["ikey"], sale["financed"].astype(bool), touch)

    # -- overlap -------------------------------------------------------------------------
    def overlap(self) -> dict[str, Any]:
        purposes = TEMPLATE_CONSENT["overlap"]
        business = [s for s in self.sources if s.dataset != "consent"]
        ids = {s: self.ids(self.consented_inline(s, purposes)) for s in business}
        pairs = []
        for i, a in enumerate(business):
            for b in business[i + 1 :]:
                if a.partner != b.partner:
                    shared = len(np.intersect1d(ids[a], ids[b], assume_unique=True))
                    pairs.append({"a": f"{a.partner}.{a.dataset}", "b": f"{b.partner}.{b.dataset}",
                                  "persons_a": len(ids[a]), "persons_b": len(ids[b]), "shared": shared})
        return {"consent": list(purposes), "pairs": pairs}

    # -- lifecycle -----------------------------------------------------------------------
    def lifecycle(self) -> dict[str, Any]:
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
        ending, seen = self.con.execute("SELECT count(DISTINCT ikey), count(DISTINCT ikey) FILTER (WHERE seen_again) FROM ending").fetchone()  # type: ignore[misc]
        return {"contracts_ending": int(ending), "seen_again": int(seen)}

    def _ending_by(self, segment: str, domain: list[str]) -> dict[str, dict[str, int]]:
        rows = self.con.execute(
            f"SELECT {segment}, count(DISTINCT ikey), count(DISTINCT ikey) FILTER (WHERE seen_again) FROM ending GROUP BY 1"
        ).fetchall()
        found = {r[0]: (int(r[1]), int(r[2])) for r in rows}
        return {v: {"contracts_ending": found.get(v, (0, 0))[0], "seen_again": found.get(v, (0, 0))[1]} for v in domain}


def median_summary(days: np.ndarray) -> dict[str, Any]:
    """Median of sorted days; for an even count also the two middle values (a histogram median is the lower)."""
    n = len(days)
    if n == 0:
        return {"persons": 0, "median": None, "median_low": None, "median_high": None}
    low, high = int(days[(n - 1) // 2]), int(days[n // 2])
    return {"persons": n, "median": (low + high) / 2, "median_low": low, "median_high": high}


def attribution_result(sale_ikey: np.ndarray, financed: np.ndarray, touch: dict[str, np.ndarray]) -> dict[str, Any]:
    """Credited sales and financed sales per campaign and channel for every credit model."""
    group = np.searchsorted(sale_ikey, touch["ikey"])
    days = touch["seconds"].astype(np.float64) / 86_400
    fin = financed[group]
    codes = {"campaign": _codes(touch["campaign"], CAMPAIGNS), "channel": _codes(touch["channel"], CHANNELS)}
    domains = {"campaign": CAMPAIGNS, "channel": CHANNELS}
    by: dict[str, dict[str, Any]] = {dim: {} for dim in codes}
    for model in ATTRIBUTION_MODELS:
        milli = credits.milli_credits(model, group, days, HALF_LIFE_DAYS)
        for dim, code in codes.items():
            total = np.bincount(code, weights=milli, minlength=len(domains[dim])).astype(np.int64)
            financed_total = np.bincount(code, weights=np.where(fin, milli, 0), minlength=len(domains[dim])).astype(np.int64)
            by[dim][model] = {v: {"credited_sales": int(total[i]) / 1000, "credited_financed_sales": int(financed_total[i]) / 1000}
                              for i, v in enumerate(domains[dim])}
    touched = np.zeros(len(sale_ikey), dtype=bool)
    touched[group] = True
    return {
        "consent": list(TEMPLATE_CONSENT["attribution"]),
        "params": {"lookback_days": LOOKBACK_DAYS, "half_life_days": HALF_LIFE_DAYS, "max_touches": MAX_TOUCHES},
        "sales": len(sale_ikey),
        "financed_sales": int(financed.sum()),
        "unattributed": int((~touched).sum()),
        "by": by,
    }


def _codes(values: np.ndarray, domain: tuple[str, ...]) -> np.ndarray:
    lookup = {v: i for i, v in enumerate(domain)}
    return np.array([lookup[v] for v in values], dtype=np.int64)
