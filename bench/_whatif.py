"""Measurements behind the suggested product changes (the product itself is not modified).

- Engine variants of each compiled statement, run in one reader: as compiled; without consent
  (the cost of the consent filter); with each partner's consent set and each dataset's
  "persons above the row bound" set read from TEMP tables built beforehand (what materializing
  them once per consent/data version would save). The statement text is the engine's own; only
  the bodies of those CTEs are swapped for ``SELECT pid FROM <temp table>``.
- Ledger: the product's charge (a new SQLite connection per call, ``synchronous=FULL``) against
  the same transaction on one long-lived connection.
- Audit: one append as the product does it, and the bare ``fsync`` inside it.
"""

from __future__ import annotations

import os
import re
import sqlite3
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from cleanroom.audit import AuditLog
from cleanroom.budget import Epsilon, Ledger
from cleanroom.budget.ledger import SCHEMA
from cleanroom.engine import compile_query
from cleanroom.gateway.release import build_scope
from cleanroom.policy.model import Policy
from cleanroom.partners import Partner
from cleanroom.store import Store

TIMEOUT_S = 3600.0  # the benchmark's own readers: no watchdog in the way of slow variants
MATERIALIZABLE = re.compile(r"^(?P<name>ok_[a-z0-9_]+|src_[a-z0-9_]+_heavy) AS MATERIALIZED \(\n(?P<body>.*?)\n\)", re.M | re.S)


def median_seconds(fn: Callable[[], Any], runs: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


# --- engine variants -------------------------------------------------------------------------------


def compiled_sql(policy: Policy, partners: dict[str, Partner], template: str, params: dict[str, Any], consent: bool = True) -> str:
    """The engine's statement for the brand analyst, optionally with a scope that requires no consent."""
    rule = policy.template_rule(template)
    scope = build_scope(policy, partners, "brand", rule, datetime.now(UTC))
    if not consent:
        scope = scope.model_copy(update={"consent_purposes": []})
    return compile_query(template, params, scope).sql


def materialize(con: duckdb.DuckDBPyConnection, sql: str, pattern: str) -> tuple[str, float]:
    """Build TEMP tables for the CTEs whose name matches ``pattern``; return the rewritten SQL and build seconds."""
    started = time.perf_counter()

    def swap(match: re.Match[str]) -> str:
        name = match.group("name")
        if not re.fullmatch(pattern, name):
            return match.group(0)
        con.execute(f"CREATE OR REPLACE TEMP TABLE mat_{name} AS {match.group('body')}")
        return f"{name} AS MATERIALIZED (\n  SELECT pid FROM mat_{name}\n)"

    rewritten = MATERIALIZABLE.sub(swap, sql)
    return rewritten, time.perf_counter() - started


def interleaved(statements: dict[str, Callable[[], Any]], runs: int) -> dict[str, float]:
    """Median seconds of each callable, run in rotation so a slow spell of the machine hits all alike."""
    for fn in statements.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in statements}
    for _ in range(runs):
        for name, fn in statements.items():
            started = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(t) for name, t in times.items()}


def engine_variants(store: Store, views: dict[str, str], policy: Policy, partners: dict[str, Partner], template: str,
                    params: dict[str, Any], plain_sql: str, runs: int) -> dict[str, float]:
    """Median execute seconds of the compiled statement, its variants and the plain SQL: same data, interleaved."""
    full = compiled_sql(policy, partners, template, params)
    no_consent = compiled_sql(policy, partners, template, params, consent=False)
    with store.reader(views, timeout_s=TIMEOUT_S) as con, store.reader(views, timeout_s=TIMEOUT_S) as pre:
        consent_mat, consent_build = materialize(con, full, r"ok_.*")
        all_mat, all_build = materialize(con, full, r".*")
        rows_build = consented_sources(pre, views, full)
        unbounded = without_row_bound(con, no_consent)
        _check_same([(con, full), (con, consent_mat), (con, all_mat), (pre, no_consent)] + ([(pre, unbounded)] if unbounded else []))
        sqls = {"plain": (con, plain_sql), "as_compiled": (con, full), "without_consent": (con, no_consent),
                "consent_sets_materialized": (con, consent_mat), "consent_and_row_bound_sets_materialized": (con, all_mat),
                "consented_rows_materialized": (pre, no_consent)}
        if unbounded:
            sqls["consented_rows_materialized_no_bound"] = (pre, unbounded)
        out = interleaved({name: (lambda c=c, q=q: c.execute(q).fetchall()) for name, (c, q) in sqls.items()}, runs)
    return {**out, "build_consent_sets_once": consent_build, "build_all_sets_once": all_build, "build_consented_rows_once": rows_build}


def without_row_bound(con: duckdb.DuckDBPyConnection, sql: str) -> str | None:
    """The statement with the per-person row bound dropped, or None when the bound removes any row.

    When no person has more rows in a dataset than the bound (checked here on the data), the
    bound is a no-op: the "light" branch keeps every row and the ranked branch none. A per-version
    statistic kept at ingest (max rows per person) would let the compiler know that without a query.
    """
    heavy = {m.group("name"): m.group("body") for m in MATERIALIZABLE.finditer(sql) if m.group("name").endswith("_heavy")}
    if any(con.execute(f"SELECT count(*) FROM ({body})").fetchone()[0] for body in heavy.values()):
        return None
    for name in heavy:
        sql = sql.replace(f"pid NOT IN (SELECT pid FROM {name})", "true").replace(f"pid IN (SELECT pid FROM {name})", "false")
    return sql


def consented_sources(con: duckdb.DuckDBPyConnection, views: dict[str, str], full_sql: str) -> float:
    """Replace each non-consent view of ``con`` by a TEMP table of its consented rows; return build seconds.

    The consent set of each partner is the compiled statement's own ``ok_<partner>`` CTE (same
    purposes, same ``now``), so the no-consent statement over these views must give identical aggregates.
    """
    started = time.perf_counter()
    bodies = {m.group("name"): m.group("body") for m in MATERIALIZABLE.finditer(full_sql) if m.group("name").startswith("ok_")}
    replaced = []
    for view in views:
        ok = "ok_" + view.split("__", 1)[0]
        if view.endswith("__consent") or ok not in bodies:
            continue
        con.execute(f"CREATE TEMP TABLE pre_{view} AS SELECT * FROM {view} WHERE pid IN (SELECT pid FROM ({bodies[ok]}))")
        replaced.append(view)
    for view in replaced:
        con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT * FROM pre_{view}")
    return time.perf_counter() - started


def _check_same(runs: list[tuple[duckdb.DuckDBPyConnection, str]]) -> None:
    """Every variant must give the very same exact aggregates, or the comparison is void."""
    first = runs[0][0].execute(runs[0][1]).fetchall()
    for con, sql in runs[1:]:
        if con.execute(sql).fetchall() != first:
            raise RuntimeError("a benchmark variant returned different aggregates than the compiled statement")


# --- ledger and audit --------------------------------------------------------------------------------


def ledger_variants(work: Path, runs: int) -> dict[str, float]:
    """The product's charge vs the same transaction on a long-lived connection (both synchronous=FULL)."""
    ledger = Ledger(work / "whatif-ledger.sqlite")
    one = Epsilon.parse("0.000001")
    big = Epsilon.parse("1000000")
    n = iter(range(10**9))

    def product_charge() -> None:
        ledger.charge(collaboration="bench", partner="p", month="2026-01", epsilon=one, partner_budget=big, collaboration_cap=big,
                      report_reserve=one, purpose="query", query_id=f"q{next(n)}", actor="bench")

    con = sqlite3.connect(work / "whatif-persistent.sqlite", isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.executescript(SCHEMA)

    def persistent(sync: str) -> Callable[[], None]:
        def charge() -> None:
            con.execute(f"PRAGMA synchronous={sync}")
            con.execute("BEGIN IMMEDIATE")
            con.execute("SELECT COALESCE(SUM(micro), 0) FROM charges WHERE collaboration=? AND month=?", ("bench", "2026-01")).fetchone()
            con.execute("INSERT INTO charges (collaboration, partner, month, purpose, micro, query_id, actor, at, partner_budget, "
                        "collaboration_cap, report_reserve, collaboration_reserve) VALUES ('bench','p','2026-01','query',1,?,'b','t',1,1,1,1)",
                        (f"q{next(n)}",))
            con.execute("COMMIT")
        return charge

    try:
        return {
            "charge_new_connection_full": median_seconds(product_charge, runs),
            "charge_persistent_connection_full": median_seconds(persistent("FULL"), runs),
            "charge_persistent_connection_normal": median_seconds(persistent("NORMAL"), runs),
        }
    finally:
        con.close()


def audit_variants(work: Path, runs: int) -> dict[str, float]:
    """One product audit append, and the bare write+fsync of a line of the same size."""
    log = AuditLog(work / "whatif-audit.jsonl")
    details = {"query_id": "q_0123456789abcdef", "template": "funnel", "params": {"dimensions": ["model"]}, "epsilon": "0.01"}
    append = median_seconds(lambda: log.append("query", "bench/key", details), runs)
    fd = os.open(work / "whatif-fsync.bin", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        def write_fsync() -> None:
            os.write(fd, b"x" * 700 + b"\n")
            os.fsync(fd)

        fsync = median_seconds(write_fsync, runs)
    finally:
        os.close(fd)
    return {"append": append, "write_and_fsync": fsync}


__all__ = ["audit_variants", "compiled_sql", "engine_variants", "ledger_variants", "materialize", "median_seconds"]
