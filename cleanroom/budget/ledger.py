"""The durable privacy-budget ledger and the release cache, in one SQLite file.

Why SQLite in WAL mode with ``BEGIN IMMEDIATE``: a charge must read what was spent and write the
new charge as one atomic step, across gateway threads *and* processes (several workers, the CLI,
the report job). ``BEGIN IMMEDIATE`` takes the database's write lock before the read, so two
concurrent charges are serialized and can never both fit into the same last slice of budget.
Every call opens its own short-lived connection (with a busy timeout), so nothing is shared
between threads or across ``fork``.

Rules the schema enforces: a charge is a positive integer of micro-epsilon; charges are
append-only (triggers refuse UPDATE and DELETE): a charge commits *before* the query touches data
and is never refunded, even if the query then fails, because the caller may already have learned
something from its timing or error.

Budget arithmetic per (collaboration, month), with ``R`` = a partner's report reservation and
``C`` = the collaboration-wide reservation (by default the same as ``R``). The gateway charges the
shared monthly report once, to the account ``@report`` with the reservation as its budget, and
passes ``R = 0`` for partners and ``C`` = the policy's reservation for their queries:
- a ``query`` may use ``partner_budget - spent_queries - max(R, spent_reports)`` for its partner
  and ``collaboration_cap - all_spent_queries - max(C, all_spent_reports)`` overall;
- a ``report`` may use the reservation and anything else left: ``budget - all spent``.

The release cache maps a key (policy version, template, parameters, data versions: built by the
caller) to the stored noisy payload. An identical query gets the stored result back, so asking
again can never average the noise away.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from cleanroom.budget.epsilon import Epsilon
from cleanroom.crypto import canonical_json
from cleanroom.errors import BudgetError, InternalError

Purpose = Literal["query", "report"]
MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
BUSY_TIMEOUT_S = 30.0
_PLURAL = {"query": "queries", "report": "reports"}

SCHEMA = """
CREATE TABLE IF NOT EXISTS charges (
    id INTEGER PRIMARY KEY,
    collaboration TEXT NOT NULL,
    partner TEXT NOT NULL,
    month TEXT NOT NULL,
    purpose TEXT NOT NULL CHECK (purpose IN ('query', 'report')),
    micro INTEGER NOT NULL CHECK (micro > 0),
    query_id TEXT NOT NULL,
    actor TEXT NOT NULL,
    at TEXT NOT NULL,
    partner_budget INTEGER NOT NULL,
    collaboration_cap INTEGER NOT NULL,
    report_reserve INTEGER NOT NULL,
    collaboration_reserve INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS charges_period ON charges (collaboration, month, partner);
CREATE TRIGGER IF NOT EXISTS charges_no_update BEFORE UPDATE ON charges
    BEGIN SELECT RAISE(ABORT, 'budget charges are append-only'); END;
CREATE TRIGGER IF NOT EXISTS charges_no_delete BEFORE DELETE ON charges
    BEGIN SELECT RAISE(ABORT, 'budget charges are never refunded'); END;
CREATE TABLE IF NOT EXISTS integrity (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS integrity_no_delete BEFORE DELETE ON integrity
    BEGIN SELECT RAISE(ABORT, 'the integrity marker is never removed'); END;
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY,
    query_id TEXT NOT NULL,
    partner TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS result_queries (
    query_id TEXT PRIMARY KEY,
    key TEXT NOT NULL REFERENCES results (key),
    partner TEXT NOT NULL,
    created_at TEXT NOT NULL
);
"""


class Limits(BaseModel):
    """The budgets in force for one charge (from the active policy)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    partner_budget: Epsilon
    collaboration_cap: Epsilon
    report_reserve: Epsilon
    collaboration_reserve: Epsilon


class Remaining(BaseModel):
    """What a charge of the given purpose could still use, for the partner and overall."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    partner: Epsilon
    collaboration: Epsilon


class Charge(BaseModel):
    """A committed charge and what is left afterwards (for charges of the same purpose)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    query_id: str
    collaboration: str
    partner: str
    month: str
    purpose: Purpose
    epsilon: Epsilon
    partner_remaining: Epsilon
    collaboration_remaining: Epsilon


class StoredResult(BaseModel):
    """A cached noisy payload as seen through one query id (``partner`` asked it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    query_id: str
    key: str
    partner: str
    payload: dict[str, Any]
    created_at: str


class Spent(BaseModel):
    """Sums in micro-epsilon for one partner and for the whole collaboration, by purpose."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    partner_query: int
    partner_report: int
    all_query: int
    all_report: int


class Ledger:
    """The budget ledger and release cache at ``path`` (created on first use, mode 0600)."""

    def __init__(self, path: Path, on_commit: Callable[[], None] | None = None) -> None:
        self.path = Path(path)
        self.on_commit = on_commit  # called after each committed charge or stored result (the gateway re-anchors)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        with self._connect() as con:
            mode = con.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise InternalError("internal.invariant", f"{self.path}: could not enable WAL mode (got {mode})")
            with _immediate(con):
                for statement in _statements(SCHEMA):
                    con.execute(statement)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """One short-lived connection per call: safe across threads and forked processes."""
        con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            con.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            con.execute("PRAGMA synchronous=FULL")
            con.execute("PRAGMA foreign_keys=ON")
            yield con
        finally:
            con.close()

    # --- budget ---------------------------------------------------------------------------------

    def charge(
        self,
        *,
        collaboration: str,
        partner: str,
        month: str,
        epsilon: Epsilon,
        partner_budget: Epsilon,
        collaboration_cap: Epsilon,
        report_reserve: Epsilon,
        purpose: Purpose,
        query_id: str,
        actor: str,
        collaboration_reserve: Epsilon | None = None,
    ) -> Charge:
        """Charge ``epsilon`` atomically or raise ``budget.exhausted`` saying what is left.

        ``collaboration_reserve`` defaults to ``report_reserve``; pass the sum of all partners'
        reservations when every partner receives its own monthly report.
        """
        _check_period(month, purpose)
        limits = _limits(partner_budget, collaboration_cap, report_reserve, collaboration_reserve)
        eps = _positive(epsilon)
        with self._connect() as con, _immediate(con):
            left = remaining_under(_spent(con, collaboration, partner, month), limits, purpose)
            _require_fits(eps, left, partner=partner, month=month, purpose=purpose)
            con.execute(
                "INSERT INTO charges (collaboration, partner, month, purpose, micro, query_id, actor, at, "
                "partner_budget, collaboration_cap, report_reserve, collaboration_reserve) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (collaboration, partner, month, purpose, eps.micro, query_id, actor, _now(), *_limit_row(limits)),
            )
        self._committed()
        return Charge(
            query_id=query_id, collaboration=collaboration, partner=partner, month=month, purpose=purpose, epsilon=eps,
            partner_remaining=left.partner - eps, collaboration_remaining=left.collaboration - eps,
        )

    def remaining(
        self,
        *,
        collaboration: str,
        partner: str,
        month: str,
        partner_budget: Epsilon,
        collaboration_cap: Epsilon,
        report_reserve: Epsilon,
        purpose: Purpose = "query",
        collaboration_reserve: Epsilon | None = None,
    ) -> Remaining:
        """What a charge of ``purpose`` could use now, under the given limits."""
        _check_period(month, purpose)
        limits = _limits(partner_budget, collaboration_cap, report_reserve, collaboration_reserve)
        with self._connect() as con:
            return remaining_under(_spent(con, collaboration, partner, month), limits, purpose)

    def spent(self, collaboration: str, partner: str, month: str, purpose: Purpose | None = None) -> Epsilon:
        """Everything ``partner`` spent in ``month`` (both purposes unless one is named)."""
        _check_period(month, purpose or "query")
        sql = "SELECT COALESCE(SUM(micro), 0) FROM charges WHERE collaboration=? AND partner=? AND month=?"
        args: tuple[str, ...] = (collaboration, partner, month)
        if purpose is not None:
            sql, args = sql + " AND purpose=?", (*args, purpose)
        with self._connect() as con:
            return Epsilon(int(con.execute(sql, args).fetchone()[0]))

    def lifetime(self, collaboration: str) -> Epsilon:
        """All epsilon ever charged in the collaboration: every month, every partner, every purpose."""
        with self._connect() as con:
            row = con.execute("SELECT COALESCE(SUM(micro), 0) FROM charges WHERE collaboration=?", (collaboration,)).fetchone()
        return Epsilon(int(row[0]))

    def charges(self, collaboration: str, month: str | None = None) -> list[dict[str, Any]]:
        """The charge rows (oldest first), for reports and the CLI; epsilons as exact text."""
        sql = "SELECT * FROM charges WHERE collaboration=?" + (" AND month=?" if month else "") + " ORDER BY id"
        with self._connect() as con:
            con.row_factory = sqlite3.Row
            rows = con.execute(sql, (collaboration, month) if month else (collaboration,)).fetchall()
        return [_charge_row(dict(r)) for r in rows]

    # --- release cache --------------------------------------------------------------------------

    def cached(self, key: str) -> dict[str, Any] | None:
        """The stored noisy payload for an identical query, if any."""
        with self._connect() as con:
            row = con.execute("SELECT payload FROM results WHERE key=?", (key,)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def first_query_id(self, key: str) -> str | None:
        """The query id of the release first stored under ``key`` (a shared report section keeps its id)."""
        with self._connect() as con:
            row = con.execute("SELECT query_id FROM results WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def store_result(self, key: str, query_id: str, partner: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Store ``payload`` under ``key`` unless one is already there; link ``query_id`` to it.

        Returns the payload actually stored: when two identical queries race, the first one wins
        and the second caller must release *that* payload, so no two noisy answers to the same
        question are ever released. Call it for cache hits too, to record the new query id.
        """
        text = _payload_text(payload)
        now = _now()
        with self._connect() as con, _immediate(con):
            con.execute("INSERT OR IGNORE INTO results (key, query_id, partner, payload, created_at) VALUES (?,?,?,?,?)", (key, query_id, partner, text, now))
            _link(con, key, query_id, partner, now)
            stored = con.execute("SELECT payload FROM results WHERE key=?", (key,)).fetchone()[0]
        self._committed()
        return dict(json.loads(stored))

    def link_query(self, key: str, query_id: str, partner: str) -> None:
        """Record a cache hit's new query id (so ``GET /v1/queries/{id}`` finds it); nothing is charged or stored.

        Committed without waiting for the disk (``synchronous=NORMAL`` in WAL mode: durable when the
        process dies, not on a power cut before the next checkpoint): a lost link loses no epsilon
        and no release, and the fsync was a third of a cached answer's time.
        """
        with self._connect() as con:
            con.execute("PRAGMA synchronous=NORMAL")
            with _immediate(con):
                _link(con, key, query_id, partner, _now())

    def _committed(self) -> None:
        if self.on_commit is not None:
            self.on_commit()

    # --- integrity (cleanroom.integrity anchors these) --------------------------------------------

    def charge_rows(self, after_id: int = 0) -> list[tuple[Any, ...]]:
        """Every column of the charges with ``id > after_id``, oldest first, read in one snapshot."""
        with self._connect() as con:
            return [tuple(r) for r in con.execute("SELECT * FROM charges WHERE id > ? ORDER BY id", (after_id,))]

    def mark_anchored(self) -> None:
        """Record (once) that an integrity anchor covers this ledger: from now on a missing anchor is refused."""
        with self._connect() as con, _immediate(con):
            con.execute("INSERT OR IGNORE INTO integrity (key, value) VALUES ('anchored_since', ?)", (_now(),))

    def anchored_since(self) -> str | None:
        """When an anchor first covered this ledger (None: never, e.g. a ledger from before anchors)."""
        with self._connect() as con:
            row = con.execute("SELECT value FROM integrity WHERE key='anchored_since'").fetchone()
        return None if row is None else str(row[0])

    def result_count(self) -> int:
        """How many releases the cache holds (it only grows)."""
        with self._connect() as con:
            return int(con.execute("SELECT COUNT(*) FROM results").fetchone()[0])

    def get_result(self, query_id: str) -> StoredResult | None:
        """The result a query id released (the caller checks ``partner`` before showing it)."""
        with self._connect() as con:
            row = con.execute(
                "SELECT q.query_id, q.key, q.partner, r.payload, q.created_at FROM result_queries q JOIN results r USING (key) WHERE q.query_id=?",
                (query_id,),
            ).fetchone()
        if row is None:
            return None
        return StoredResult(query_id=row[0], key=row[1], partner=row[2], payload=json.loads(row[3]), created_at=row[4])


# --- helpers ------------------------------------------------------------------------------------


@contextmanager
def _immediate(con: sqlite3.Connection) -> Iterator[None]:
    """A write transaction that holds the write lock from its first read to its commit."""
    con.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def _statements(script: str) -> list[str]:
    """Split the schema into statements (triggers contain ';' inside BEGIN ... END)."""
    return [s.strip() for s in re.split(r";\s*\n(?=CREATE)", script.strip().rstrip(";")) if s.strip()]


def _spent(con: sqlite3.Connection, collaboration: str, partner: str, month: str) -> Spent:
    row = con.execute(
        "SELECT COALESCE(SUM(micro) FILTER (WHERE partner=? AND purpose='query'), 0),"
        " COALESCE(SUM(micro) FILTER (WHERE partner=? AND purpose='report'), 0),"
        " COALESCE(SUM(micro) FILTER (WHERE purpose='query'), 0),"
        " COALESCE(SUM(micro) FILTER (WHERE purpose='report'), 0)"
        " FROM charges WHERE collaboration=? AND month=?",
        (partner, partner, collaboration, month),
    ).fetchone()
    return Spent(partner_query=row[0], partner_report=row[1], all_query=row[2], all_report=row[3])


def remaining_under(spent: Spent, limits: Limits, purpose: Purpose) -> Remaining:
    """Apply the reservation rule (module docstring) in exact micro-epsilon."""
    if purpose == "query":
        partner = limits.partner_budget.micro - spent.partner_query - max(limits.report_reserve.micro, spent.partner_report)
        overall = limits.collaboration_cap.micro - spent.all_query - max(limits.collaboration_reserve.micro, spent.all_report)
    else:
        partner = limits.partner_budget.micro - spent.partner_query - spent.partner_report
        overall = limits.collaboration_cap.micro - spent.all_query - spent.all_report
    return Remaining(partner=Epsilon(max(partner, 0)), collaboration=Epsilon(max(overall, 0)))


def _require_fits(eps: Epsilon, left: Remaining, *, partner: str, month: str, purpose: Purpose) -> None:
    for scope, available in (("partner " + partner, left.partner), ("collaboration", left.collaboration)):
        if eps > available:
            raise BudgetError(
                "budget.exhausted",
                f"{scope} has {available} epsilon left for {_PLURAL[purpose]} in {month}; this {purpose} needs {eps}",
                scope=scope.split()[0], month=month, purpose=purpose, requested=str(eps),
                partner_remaining=str(left.partner), collaboration_remaining=str(left.collaboration),
            )


def _limits(partner_budget: Epsilon, cap: Epsilon, reserve: Epsilon, collaboration_reserve: Epsilon | None) -> Limits:
    return Limits(partner_budget=partner_budget, collaboration_cap=cap, report_reserve=reserve, collaboration_reserve=collaboration_reserve if collaboration_reserve is not None else reserve)


def _limit_row(limits: Limits) -> tuple[int, int, int, int]:
    return (limits.partner_budget.micro, limits.collaboration_cap.micro, limits.report_reserve.micro, limits.collaboration_reserve.micro)


def _positive(epsilon: Epsilon) -> Epsilon:
    eps = epsilon if isinstance(epsilon, Epsilon) else Epsilon.parse(epsilon)
    if eps.micro <= 0:
        raise BudgetError("budget.invalid_epsilon", "a charge must be a positive epsilon, got 0")
    return eps


def _check_period(month: str, purpose: str) -> None:
    """Months and purposes come from the gateway's clock and code, so a bad one is a bug."""
    if not isinstance(month, str) or not MONTH.match(month):
        raise InternalError("internal.invariant", f"budget month must be YYYY-MM, got {month!r}")
    if purpose not in ("query", "report"):
        raise InternalError("internal.invariant", f"budget purpose must be 'query' or 'report', got {purpose!r}")


def _link(con: sqlite3.Connection, key: str, query_id: str, partner: str, now: str) -> None:
    existing = con.execute("SELECT key FROM result_queries WHERE query_id=?", (query_id,)).fetchone()
    if existing is None:
        con.execute("INSERT INTO result_queries (query_id, key, partner, created_at) VALUES (?,?,?,?)", (query_id, key, partner, now))
    elif existing[0] != key:
        raise InternalError("internal.invariant", f"query id {query_id} already names a different result")


def _payload_text(payload: dict[str, Any]) -> str:
    try:
        return canonical_json(payload).decode()
    except (TypeError, ValueError) as exc:
        raise InternalError("internal.invariant", f"a released payload must be plain JSON: {exc}") from exc


def _charge_row(row: dict[str, Any]) -> dict[str, Any]:
    for col in ("micro", "partner_budget", "collaboration_cap", "report_reserve", "collaboration_reserve"):
        row[col] = str(Epsilon(int(row[col])))
    row["epsilon"] = row.pop("micro")
    return row


def _now() -> str:
    return datetime.now(UTC).isoformat()


__all__ = ["Charge", "Ledger", "Limits", "Purpose", "Remaining", "StoredResult"]
