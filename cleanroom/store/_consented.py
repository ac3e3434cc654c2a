"""Consented rows, materialized: each dataset's active version restricted to consenting persons.

Why: filtering every row of every source against its owner's consent set on every query is most of
the privacy tax (bench/README.md: the 1M funnel 542 -> 305 ms, overlap 151 -> 34 ms, identical
aggregates). The consenting persons change only when the owner's ``consent`` dataset is re-uploaded
or when the clock passes a grant or revocation dated later (the consent *horizon*), so the rows can
be kept per (dataset version, consent version, purpose set, horizon) and reused until then.

The person set is the engine's own SQL (:func:`cleanroom.engine.consent.active_persons_sql`), so
a consented table holds exactly the rows the per-query semi-join would keep. Tables live in the
instance's in-memory catalog, never in the encrypted file (``temp_file_encryption`` keeps spilled
pages encrypted), hold only the columns a view would (private columns stay out), and are dropped
once superseded and no open reader uses them (data minimisation, as for superseded versions).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb

from cleanroom.crypto import canonical_json, sha256_hex
from cleanroom.engine.consent import CONSENT_DATASET, active_persons_sql, next_change_sql
from cleanroom.errors import QueryError
from cleanroom.store import _layout as layout

log = logging.getLogger(__name__)

CATALOG = "memory.main"  # the instance's own in-memory database: never written to the store file
PREFIX = "consented_"


@dataclass(frozen=True)
class Entry:
    """One consented table and what it was built from (what makes it stale)."""

    name: str
    data_table: str
    consent_table: str
    horizon: datetime | None


@dataclass(frozen=True)
class Source:
    """The active version of one dataset as the store's catalog lists it."""

    table: str
    sha256: str
    visible: tuple[str, ...]


def utc(moment: datetime) -> datetime:
    """Aware UTC; a naive moment is UTC already (stored timestamps are naive UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def consent_of(qualified: str) -> str:
    return f"{qualified.split('.', 1)[0]}.{CONSENT_DATASET}"


def relation(table: str) -> str:
    return f"store.main.{layout.quote(table)}"


def table_key(data: Source, consent: Source, purposes: tuple[str, ...], horizon: datetime | None) -> str:
    """The name of the consented table: a digest of everything its rows depend on."""
    digest = sha256_hex(canonical_json({
        "data": [data.table, data.sha256], "consent": [consent.table, consent.sha256],
        "purposes": sorted(purposes), "horizon": None if horizon is None else horizon.isoformat(),
    }))
    return PREFIX + digest[:32]


def build_sql(name: str, data: Source, consent: Source, purposes: tuple[str, ...], now: datetime) -> str:
    cols = ", ".join(layout.quote(c) for c in data.visible)
    persons = active_persons_sql(relation(consent.table), purposes, now)
    return (f"CREATE TABLE {CATALOG}.{layout.quote(name)} AS SELECT {cols} FROM {relation(data.table)} "
            f"WHERE pid IN (SELECT pid FROM ({persons}))")


class ConsentedTables:
    """The cache of consented tables of one Store: build lazily, share, drop when superseded.

    One lock guards the dicts and serializes builds (two readers wanting the same table build it
    once). ``users`` counts open readers per table, so a superseded table is dropped only after
    the last reader whose views point at it has closed.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: dict[str, Entry] = {}
        self._retired: set[str] = set()
        self._users: Counter[str] = Counter()
        self._horizons: dict[str, tuple[datetime, datetime | None]] = {}

    def acquire(self, cur: duckdb.DuckDBPyConnection, active: dict[str, Source], qualified: str, purposes: Iterable[str],
                now: datetime) -> str:
        """The consented table of ``qualified`` for ``purposes`` at ``now`` (built if missing), held until :meth:`release`."""
        wanted, now = tuple(sorted(set(purposes))), utc(now)
        consent_q = consent_of(qualified)
        if consent_q not in active:
            raise QueryError("query.dataset_missing", f"dataset {consent_q!r} (the consent for {qualified}) has not been uploaded yet",
                             dataset=consent_q)
        data, consent = active[qualified], active[consent_q]
        with self._lock:
            self._retire_stale(active, now)
            horizon = self._horizon(cur, consent.table, now)
            name = table_key(data, consent, wanted, horizon)
            if name not in self._live:
                cur.execute(build_sql(name, data, consent, wanted, now))
                self._live[name] = Entry(name, data.table, consent.table, horizon)
            self._retired.discard(name)
            self._users[name] += 1
            self._drop_unused(cur)
            return name

    def release(self, cur: duckdb.DuckDBPyConnection, names: Iterable[str]) -> None:
        """A reader closed: drop whatever is superseded and no longer read."""
        with self._lock:
            for name in names:
                self._users[name] -= 1
                if self._users[name] <= 0:
                    del self._users[name]
            self._drop_unused(cur)

    def sweep(self, cur: duckdb.DuckDBPyConnection, active: dict[str, Source], now: datetime) -> None:
        """After a publish: retire tables of superseded versions (and passed horizons) right away."""
        with self._lock:
            self._retire_stale(active, utc(now))
            self._drop_unused(cur)

    def names(self) -> list[str]:
        """The consented tables that currently exist (live or awaiting their last reader): for tests and ops."""
        with self._lock:
            return sorted(set(self._live) | self._retired)

    def _horizon(self, cur: duckdb.DuckDBPyConnection, consent_table: str, now: datetime) -> datetime | None:
        """The first grant or revocation after ``now`` in this consent version; memoized while it lies ahead."""
        known = self._horizons.get(consent_table)
        if known is not None and known[0] <= now and (known[1] is None or now < known[1]):
            return known[1]
        row = cur.execute(next_change_sql([relation(consent_table)], now)).fetchone()
        horizon = None if row is None or row[0] is None else utc(row[0])
        self._horizons[consent_table] = (now, horizon)
        return horizon

    def _retire_stale(self, active: dict[str, Source], now: datetime) -> None:
        current = {s.table for s in active.values()}
        for name, entry in list(self._live.items()):
            passed = entry.horizon is not None and now >= entry.horizon
            if passed or entry.data_table not in current or entry.consent_table not in current:
                del self._live[name]
                self._retired.add(name)
        for table in [t for t in self._horizons if t not in current]:
            del self._horizons[table]

    def _drop_unused(self, cur: duckdb.DuckDBPyConnection) -> None:
        """Drop retired tables no reader holds; one that fails to drop stays retired and is retried next time."""
        for name in sorted(self._retired):
            if self._users.get(name):
                continue
            try:
                cur.execute(f"DROP TABLE IF EXISTS {CATALOG}.{layout.quote(name)}")
            except duckdb.Error as exc:
                log.warning("could not drop consented table %s yet: %s", name, exc.__class__.__name__)
                continue
            self._retired.discard(name)
