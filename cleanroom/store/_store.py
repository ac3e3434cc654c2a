"""The Store: the only opener of the encrypted database, and the owner of versions and swaps.

One DuckDB instance per process (docs/decisions/0002): a database file can be attached once
per process and by one process at a time. Readers and the writer are cursors of that instance.
A reader cursor holds connection-local TEMP VIEWs for exactly the datasets it was given, so the
engine's SQL names views, never tables; the writer runs inside one transaction under a
process-wide lock. The operator's ``cleanroom admin ingest`` and ``cleanroom datasets rollback``
(without ``--gateway``) therefore cannot run while a gateway holds the store (``store.locked``);
the gateway's upload and rollback endpoints call the same code on its own Store instead.

Versions: every accepted upload of a partner's dataset is a new version; exactly one is active.
The tables of the ``RETAINED_VERSIONS`` most recent superseded versions are kept so that a
compliance officer or the operator can make one active again (:meth:`Store.rollback`); older
ones are dropped (data minimisation). The catalog keeps every version's metadata, and replay
protection is per (partner, dataset): see :meth:`Store.seen`.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from cleanroom.crypto import Keyer, canonical_json, sha256_hex
from cleanroom.errors import CleanroomError, ConfigError, InternalError, QueryError, StoreError, UploadError
from cleanroom.settings import GatewaySecrets
from cleanroom.store import _layout as layout
from cleanroom.store._connect import attach, harden
from cleanroom.store._consented import ConsentedTables, Source
from cleanroom.store.faults import storage_fault

log = logging.getLogger(__name__)

DB_FILE = "cleanroom.duckdb"
TEMP_DIR = "tmp"
INCOMING = "incoming_upload"
KEYED = "keyed_hids"

# Re-keys an array of distinct partner hids (the pepper step, owned by ingest) in order.
Rekey = Callable[[pa.Array], pa.Array]

# What a reader's view shows: a qualified dataset's active version, or ``(qualified, purposes)``:
# only the rows of persons with an active consent for every one of ``purposes`` in the same
# partner's ``consent`` dataset (a consented-rows table, see _consented.py).
ViewSource = str | tuple[str, Sequence[str]]

# Process-wide: two threads never write at once, whichever Store object they hold.
_WRITE_LOCK = threading.Lock()

# How many superseded versions of a dataset keep their rows (so they can be made active again).
# A partner's erasure (a re-upload without some persons) therefore reaches the retained copies
# only when they age out; see docs/explanation/storage.md.
RETAINED_VERSIONS = 2


class DatasetVersion(BaseModel):
    """One stored version of a partner's dataset, as the engine and the gateway see it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    partner: str
    dataset: str
    version: int
    table: str
    rows: int
    uploaded_at: datetime
    sha256: str
    # The most rows any one person has in this version, counted when it was published; None for
    # versions published before the store recorded it (unknown: the engine keeps its row bound).
    max_rows_per_person: int | None = Field(default=None, ge=0)

    @property
    def qualified_name(self) -> str:
        return f"{self.partner}.{self.dataset}"


class VersionMeta(BaseModel):
    """What ingest vouches for when it publishes a validated upload."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    partner: str
    dataset: str
    sha256: str
    nonce: str
    uploaded_by: str
    hidden_columns: tuple[str, ...] = Field(default=(), description="Columns tagged private: stored, never in a view.")


class StoredVersion(DatasetVersion):
    """One version as ``cleanroom datasets list`` shows it: whether it is active, and whether its rows are still kept."""

    active: bool
    retained: bool = Field(description="Its rows are still stored, so it can be made active again (rollback).")
    uploaded_by: str


class Published(BaseModel):
    """What a publish did. ``replayed``: the same manifest was accepted before and nothing new was stored;
    ``rolled_back_from``: the version that was active before an earlier one was made active again."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: DatasetVersion
    new_persons: int
    replayed: bool = False
    rolled_back_from: int | None = None


class Seen(BaseModel):
    """An earlier accepted upload of the same partner and dataset that an upload's manifest matches.

    ``reason``: ``"manifest"`` (same nonce and same SHA-256: the very same signed upload again),
    ``"nonce"`` (the nonce with other bytes: a replay) or ``"sha256"`` (the same bytes under a new
    nonce). Only this partner's versions of this dataset are ever compared, so an answer never
    says anything about another partner.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    reason: str
    version: int
    active: bool
    retained: bool


class Store:
    """The encrypted store of one process. Use ``Store.open(...)`` as a context manager."""

    def __init__(self, con: duckdb.DuckDBPyConnection, directory: Path, store_id: str, pepper_keyer: Keyer) -> None:
        self._con: duckdb.DuckDBPyConnection | None = con
        self.directory = directory
        self.store_id = store_id
        # The pepper travels with the store it protects, pre-keyed: ingest re-keys every hid with
        # it, and the raw pepper bytes are never an attribute anyone could log.
        self.pepper_keyer = pepper_keyer
        self._cursor_lock = threading.Lock()
        self._consented = ConsentedTables()

    # --- lifecycle -----------------------------------------------------------------------------

    @classmethod
    def open(cls, directory: Path, secrets: GatewaySecrets, *, memory_limit: str = "2GB", threads: int = 2) -> Store:
        """Create or open the store in ``directory``: attach encrypted, prepare layout, sandbox."""
        keyer = Keyer(secrets.pepper)
        _make_private_dir(directory)
        _make_private_dir(directory / TEMP_DIR)
        con = attach(directory / DB_FILE, secrets.db_key_text)
        try:
            store_id = _prepare_layout(con)
            harden(con, temp_dir=directory / TEMP_DIR, memory_limit=memory_limit, threads=threads)
        except BaseException:
            con.close()
            raise
        return cls(con, directory, store_id, keyer)

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        with self._cursor_lock:
            if self._con is None:
                raise InternalError("internal.invariant", "the store is closed")
            return self._con.cursor()

    # --- catalog -------------------------------------------------------------------------------

    def active_versions(self) -> dict[str, DatasetVersion]:
        """The active version of every uploaded dataset, keyed ``"partner.dataset"``."""
        return {name: row[0] for name, row in self._active_rows().items()}

    def _active_rows(self) -> dict[str, tuple[DatasetVersion, list[str]]]:
        cur = self._cursor()
        try:
            rows = cur.execute(f"SELECT {layout.ACTIVE_COLUMNS} FROM store.main.catalog WHERE active").fetchall()
        finally:
            cur.close()
        out: dict[str, tuple[DatasetVersion, list[str]]] = {}
        for partner, dataset, version, table, n, at, sha, most, visible in rows:
            dv = DatasetVersion(partner=partner, dataset=dataset, version=version, table=table, rows=n, uploaded_at=at.replace(tzinfo=UTC),
                                sha256=sha, max_rows_per_person=most)
            out[dv.qualified_name] = (dv, list(visible))
        return out

    def data_version_token(self, qualified_names: Iterable[str]) -> str:
        """A digest of the versions of these datasets: changes whenever any of them is re-uploaded.

        Part of the query cache key, so an identical query over unchanged data returns the stored
        noisy answer, and any upload makes the next identical query a new release.
        """
        active = self.active_versions()
        pinned = {n: ([active[n].version, active[n].sha256] if n in active else None) for n in sorted(set(qualified_names))}
        return sha256_hex(canonical_json({"store": self.store_id, "versions": pinned}))

    def seen(self, *, partner: str, dataset: str, nonce: str, sha256: str) -> Seen | None:
        """The earlier version of ``partner.dataset`` this manifest matches (see :class:`Seen`), or None when it is fresh."""
        cur = self._cursor()
        try:
            return _seen(cur, partner, dataset, nonce, sha256)
        finally:
            cur.close()

    def versions(self, qualified: str | None = None) -> list[StoredVersion]:
        """Every version of every dataset (or of ``"partner.dataset"``), oldest first: metadata only, never rows."""
        cur = self._cursor()
        try:
            rows = cur.execute(
                f"SELECT {layout.ACTIVE_COLUMNS}, active, uploaded_by FROM store.main.catalog ORDER BY partner, dataset, version"
            ).fetchall()
            kept = _existing_tables(cur)
        finally:
            cur.close()
        out = []
        for partner, dataset, version, table, n, at, sha, most, _visible_cols, active, by in rows:
            if qualified is not None and f"{partner}.{dataset}" != qualified:
                continue
            out.append(StoredVersion(partner=partner, dataset=dataset, version=version, table=table, rows=n, uploaded_at=at.replace(tzinfo=UTC),
                                     sha256=sha, max_rows_per_person=most, active=active, retained=table in kept, uploaded_by=by))
        return out

    def person_count(self) -> int:
        """How many persons the dictionary holds (a count, never an id)."""
        cur = self._cursor()
        try:
            row = cur.execute("SELECT count(*) FROM store.main.persons").fetchone()
        finally:
            cur.close()
        return int(row[0]) if row else 0

    # --- readers -------------------------------------------------------------------------------

    @contextmanager
    def reader(self, views: Mapping[str, ViewSource], *, timeout_s: float = 30,
               consent_at: datetime | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
        """A fresh cursor whose only created objects are TEMP VIEWs ``view -> active dataset``.

        A view given as ``(qualified, purposes)`` shows only the rows of persons with an active
        consent at ``consent_at`` for every purpose, read from a consented-rows table built once per
        (dataset version, consent version, purposes, consent horizon) and shared by readers; that
        is what lets the engine skip its per-query consent semi-join (``Scope.consent_applied``).
        A watchdog interrupts it after ``timeout_s`` (``query.timeout``). Any DuckDB error is
        logged here and re-raised as ``query.failed`` without the database's text, which could
        quote data. Private columns are not in the views.
        """
        cur = self._cursor()
        held: list[str] = []
        try:
            with _Watchdog(cur, timeout_s) as dog:
                try:
                    self._create_views(cur, views, consent_at, held)
                    yield cur
                except duckdb.Error as exc:
                    raise _reader_error(exc, dog.fired, timeout_s) from None
        finally:
            cur.close()
            if held:
                self._release_consented(held)

    def _create_views(self, cur: duckdb.DuckDBPyConnection, views: Mapping[str, ViewSource], consent_at: datetime | None,
                      held: list[str]) -> None:
        """One TEMP VIEW per entry; names of the consented tables used are appended to ``held``."""
        active = self._active_rows()
        sources = _sources(active)
        for view, source in views.items():
            qualified, purposes = (source, ()) if isinstance(source, str) else (source[0], tuple(source[1]))
            if qualified not in active:
                raise QueryError("query.dataset_missing", f"dataset {qualified!r} has not been uploaded yet", dataset=qualified)
            table = f"store.main.{layout.quote(active[qualified][0].table)}"
            if purposes:
                if consent_at is None:
                    raise InternalError("internal.invariant", f"view {view!r} needs consented rows but the reader got no consent_at")
                held.append(self._consented.acquire(cur, sources, qualified, purposes, consent_at))
                table = f"memory.main.{layout.quote(held[-1])}"
            cols = ", ".join(layout.quote(c) for c in active[qualified][1])
            cur.execute(f"CREATE TEMP VIEW {layout.quote(view)} AS SELECT {cols} FROM {table}")

    def consented_tables(self) -> list[str]:
        """Names of the consented-rows tables that exist now (never their rows): for tests and operators."""
        return self._consented.names()

    def _release_consented(self, held: list[str]) -> None:
        """A reader closed: on a cursor of its own (the reader's may be mid-transaction), drop what it alone kept alive."""
        cur = self._cursor()
        try:
            self._consented.release(cur, held)
        finally:
            cur.close()

    def _sweep_consented(self) -> None:
        """Drop consented tables a publish just superseded, unless a reader still reads them."""
        active = self._active_rows()
        sources = _sources(active)
        cur = self._cursor()
        try:
            self._consented.sweep(cur, sources, datetime.now(UTC))
        finally:
            cur.close()

    # --- writer --------------------------------------------------------------------------------

    @contextmanager
    def writer(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor inside BEGIN/COMMIT under the process-wide write lock; ROLLBACK on any exception."""
        with _WRITE_LOCK:
            cur = self._cursor()
            try:
                cur.execute("BEGIN TRANSACTION")
                try:
                    yield cur
                except BaseException:
                    _rollback(cur)
                    raise
                cur.execute("COMMIT")
            finally:
                cur.close()

    def publish(self, data: pa.Table, meta: VersionMeta, rekey: Rekey) -> Published:
        """Make a validated upload the active version of its dataset, atomically.

        ``data`` still holds the partner's hids; ``rekey`` peppers the distinct ones (so each
        is keyed once) and only the peppered values are written. In one transaction: add new
        persons, create and fill the version table, flip the catalog's active version, record
        the nonce, drop the superseded table. Any failure (a NOT NULL violation, an interrupt)
        rolls all of it back: the previous version stays active and no person id is assigned.
        After the commit, consented-rows tables built from the superseded version are dropped.
        """
        with self.writer() as cur:
            seen = _seen(cur, meta.partner, meta.dataset, meta.nonce, meta.sha256)
            if seen is not None and seen.reason != "manifest":
                raise UploadError("upload.replayed", replay_message(seen, meta.partner, meta.dataset), partner=meta.partner, dataset=meta.dataset)
            if seen is not None and (seen.active or seen.retained):
                published = _reactivate(cur, meta.partner, meta.dataset, seen.version)
            else:
                # fresh, or this very upload again after its rows were dropped: rebuilt from the bytes as the same version
                cur.register(INCOMING, data)
                try:
                    distinct = cur.execute(f"SELECT DISTINCT hid FROM {INCOMING}").to_arrow_table().column(0).combine_chunks()
                    cur.register(KEYED, pa.table({"raw": distinct, "hid": rekey(distinct)}))
                    published = _publish(cur, data.schema, data.num_rows, meta, seen.version if seen else None)
                finally:
                    cur.unregister(INCOMING)
                    cur.unregister(KEYED)
        self._sweep_consented()
        return published

    def reactivate(self, meta: VersionMeta) -> Published:
        """The same signed upload again, whose version still has its rows: no data needed.

        Active: nothing changes (``replayed``). Older: it is made active again (a rollback). Any
        other case (fresh, a replay, rows dropped) is a bug of the caller: ingest sends those
        through :meth:`publish`.
        """
        with self.writer() as cur:
            seen = _seen(cur, meta.partner, meta.dataset, meta.nonce, meta.sha256)
            if seen is None or seen.reason != "manifest" or not (seen.active or seen.retained):
                raise InternalError("internal.invariant", f"{meta.partner}.{meta.dataset}: nothing stored to reactivate for nonce {meta.nonce}")
            published = _reactivate(cur, meta.partner, meta.dataset, seen.version)
        self._sweep_consented()
        return published

    def rollback(self, partner: str, dataset: str, version: int) -> Published:
        """Make an earlier ``version`` of ``partner.dataset`` active again, in one transaction.

        ``store.not_found`` for a version that does not exist or whose rows were dropped (older
        than the retained versions); the active version is a no-op (``rolled_back_from`` None).
        The data-version token follows the active version, so the release cache never answers
        with numbers of the version that was active before.
        """
        with self.writer() as cur:
            published = _reactivate(cur, partner, dataset, version)
        self._sweep_consented()
        return published


# --- helpers (module level: small, separately readable steps) -------------------------------------


def _sources(active: dict[str, tuple[DatasetVersion, list[str]]]) -> dict[str, Source]:
    return {q: Source(table=v.table, sha256=v.sha256, visible=tuple(cols)) for q, (v, cols) in active.items()}


def _make_private_dir(path: Path) -> None:
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError("config.invalid", f"cannot create store directory {path}: {exc.strerror}", path=str(path)) from None


def _prepare_layout(con: duckdb.DuckDBPyConnection) -> str:
    """Create the layout tables if missing; return the store id (created on first open)."""
    con.execute("BEGIN TRANSACTION")
    for ddl in layout.DDL:
        con.execute(ddl)
    con.execute("INSERT OR IGNORE INTO store.main.meta VALUES ('layout', ?), ('store_id', ?)", [layout.LAYOUT_VERSION, uuid.uuid4().hex])
    meta = dict(con.execute("SELECT key, value FROM store.main.meta").fetchall())
    con.execute("COMMIT")
    if meta["layout"] != layout.LAYOUT_VERSION:
        raise ConfigError("config.invalid", f"store layout {meta['layout']} is not supported (expected {layout.LAYOUT_VERSION})")
    return str(meta["store_id"])


def _seen(cur: duckdb.DuckDBPyConnection, partner: str, dataset: str, nonce: str, sha256: str) -> Seen | None:
    """Compare with this partner's versions of this dataset only (the catalog keeps every version's nonce and digest)."""
    rows = cur.execute(
        "SELECT version, nonce = ?, sha256 = ?, active, table_name FROM store.main.catalog "
        "WHERE partner = ? AND dataset = ? AND (nonce = ? OR sha256 = ?) ORDER BY version DESC",
        [nonce, sha256, partner, dataset, nonce, sha256],
    ).fetchall()
    if not rows:
        return None
    kept = _existing_tables(cur)

    def seen(reason: str, row: tuple[Any, ...]) -> Seen:
        return Seen(reason=reason, version=row[0], active=row[3], retained=row[4] in kept)

    for row in rows:
        if row[1] and row[2]:
            return seen("manifest", row)
    same_nonce = [r for r in rows if r[1]]
    return seen("nonce", same_nonce[0]) if same_nonce else seen("sha256", rows[0])


def replay_message(seen: Seen, partner: str, dataset: str) -> str:
    """Why an upload is a replay, naming only the caller's own dataset and version."""
    qualified = f"{partner}.{dataset}"
    if seen.reason == "nonce":
        return (f"the manifest's nonce was already used by {qualified} version {seen.version} for a file with other bytes: "
                "a manifest is valid for one file only; run cleanroom prepare again")
    return (f"this file (same SHA-256) is already {qualified} version {seen.version}; to make that version active again, "
            "re-upload it with its original manifest or use cleanroom datasets rollback")


def _existing_tables(cur: duckdb.DuckDBPyConnection) -> set[str]:
    rows = cur.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = 'store' AND schema_name = 'main'").fetchall()
    return {r[0] for r in rows}


def _columns(cur: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in cur.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = 'store' AND schema_name = 'main' AND table_name = ? "
        "ORDER BY column_index", [table]).fetchall()]


def _version_row(cur: duckdb.DuckDBPyConnection, partner: str, dataset: str, version: int) -> DatasetVersion | None:
    row = cur.execute(
        f"SELECT {layout.ACTIVE_COLUMNS} FROM store.main.catalog WHERE partner = ? AND dataset = ? AND version = ?", [partner, dataset, version]
    ).fetchone()
    if row is None:
        return None
    p, d, v, table, n, at, sha, most, _visible = row
    return DatasetVersion(partner=p, dataset=d, version=v, table=table, rows=n, uploaded_at=at.replace(tzinfo=UTC), sha256=sha, max_rows_per_person=most)


def _reactivate(cur: duckdb.DuckDBPyConnection, partner: str, dataset: str, version: int) -> Published:
    """Inside the writer's transaction: make ``version`` (whose table must still exist) the active one."""
    qualified = f"{partner}.{dataset}"
    target = _version_row(cur, partner, dataset, version)
    if target is None:
        raise StoreError("store.not_found", f"{qualified} has no version {version} (see cleanroom datasets list)", dataset=qualified, version=version)
    key = [partner, dataset]
    row = cur.execute("SELECT version, table_name FROM store.main.catalog WHERE partner = ? AND dataset = ? AND active", key).fetchone()
    current, current_table = (int(row[0]), str(row[1])) if row else (None, None)
    if current == version:
        return Published(version=target, new_persons=0, replayed=True)
    if target.table not in _existing_tables(cur):
        raise StoreError(
            "store.not_found",
            f"the rows of {qualified} version {version} were dropped (only the {RETAINED_VERSIONS} most recent superseded versions are kept); "
            "the partner can restore it by uploading that version's file and manifest again",
            dataset=qualified, version=version,
        )
    if current_table is not None and _columns(cur, current_table) != _columns(cur, target.table):
        raise UploadError(
            "upload.schema_mismatch",
            f"{qualified} version {version} has other columns than the active version {current}: making it active would change the "
            "dataset's schema under the policy",
            dataset=qualified, version=version,
        )
    cur.execute("UPDATE store.main.catalog SET active = false WHERE partner = ? AND dataset = ? AND active", key)
    cur.execute("UPDATE store.main.catalog SET active = true WHERE partner = ? AND dataset = ? AND version = ?", [*key, version])
    _drop_superseded(cur, partner, dataset)
    return Published(version=target, new_persons=0, replayed=True, rolled_back_from=current)


def _drop_superseded(cur: duckdb.DuckDBPyConnection, partner: str, dataset: str) -> None:
    """Drop the tables of superseded versions beyond the ``RETAINED_VERSIONS`` most recent ones (data minimisation)."""
    rows = cur.execute(
        "SELECT table_name FROM store.main.catalog WHERE partner = ? AND dataset = ? AND NOT active ORDER BY version DESC", [partner, dataset]
    ).fetchall()
    kept = _existing_tables(cur)
    for (name,) in rows[RETAINED_VERSIONS:]:
        if name in kept:
            cur.execute(f"DROP TABLE IF EXISTS store.main.{layout.quote(name)}")


def _publish(cur: duckdb.DuckDBPyConnection, schema: pa.Schema, rows: int, meta: VersionMeta, rebuild: int | None = None) -> Published:
    """A new version; or (``rebuild``) the rows of that earlier version of the same signed upload again, made active."""
    if rebuild is None:
        row = cur.execute("SELECT coalesce(max(version), 0) + 1 FROM store.main.catalog WHERE partner = ? AND dataset = ?",
                          [meta.partner, meta.dataset]).fetchone()
        version = int(row[0]) if row else 1
    else:
        version = rebuild
    table = layout.table_name(meta.partner, meta.dataset, version)
    new_persons = _scalar(cur.execute(layout.insert_persons_sql(KEYED)))
    cur.execute(layout.create_table_sql(table, schema))
    inserted = _scalar(cur.execute(layout.insert_version_sql(table, schema, INCOMING, KEYED)))
    if inserted != rows:
        raise InternalError("internal.invariant", f"{table}: the person-id join gave {inserted} rows for {rows} uploaded: the dictionary is broken")
    persons, most = _person_counts(cur, table)
    if rebuild is not None:
        previous = _version_row(cur, meta.partner, meta.dataset, version)
        if previous is None or previous.rows != inserted or previous.max_rows_per_person not in (None, most):
            raise InternalError("internal.invariant", f"{table}: rebuilt from the same signed file but its counts differ from the catalog's")
        return _reactivate(cur, meta.partner, meta.dataset, version).model_copy(update={"new_persons": new_persons})
    uploaded_at = datetime.now(UTC)
    _swap(cur, meta, version, table, [inserted, persons, most], uploaded_at, _visible(schema, meta))
    dv = DatasetVersion(partner=meta.partner, dataset=meta.dataset, version=version, table=table, rows=inserted, uploaded_at=uploaded_at,
                        sha256=meta.sha256, max_rows_per_person=most)
    return Published(version=dv, new_persons=new_persons)


def _person_counts(cur: duckdb.DuckDBPyConnection, table: str) -> tuple[int, int]:
    """Distinct persons and the most rows any one of them has, in one GROUP BY over the new version.

    Counted inside the publishing transaction over exactly the rows being published, so the
    recorded maximum is a fact of the stored version, never an estimate. The engine uses it to
    skip a per-person row bound that could not remove a row (see ``Builder.source``).
    """
    row = cur.execute(
        f"SELECT count(*), coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM store.main.{layout.quote(table)} GROUP BY pid)"
    ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def _visible(schema: pa.Schema, meta: VersionMeta) -> list[str]:
    return ["pid"] + [f.name for f in schema if f.name != "hid" and f.name not in meta.hidden_columns]


def _swap(cur: duckdb.DuckDBPyConnection, meta: VersionMeta, version: int, table: str, counts: list[int], at: datetime, visible: list[str]) -> None:
    """Flip the active version, record the nonce and drop superseded tables beyond the retained ones (data minimisation).

    The replay check reads the catalog (per partner and dataset); ``nonces`` stays a global log of
    first uses, so a nonce another partner already used is not recorded there a second time.
    """
    key = [meta.partner, meta.dataset]
    cur.execute("UPDATE store.main.catalog SET active = false WHERE partner = ? AND dataset = ? AND active", key)
    naive = at.replace(tzinfo=None)
    cur.execute(layout.CATALOG_INSERT, [*key, version, table, *counts, meta.sha256, meta.nonce, naive, meta.uploaded_by, visible])
    cur.execute("INSERT OR IGNORE INTO store.main.nonces VALUES (?, ?, ?)", [meta.nonce, meta.partner, naive])
    _drop_superseded(cur, meta.partner, meta.dataset)


def _scalar(cur: duckdb.DuckDBPyConnection) -> int:
    row = cur.fetchone()
    return int(row[0]) if row else 0


def _rollback(cur: duckdb.DuckDBPyConnection) -> None:
    try:
        cur.execute("ROLLBACK")
    except duckdb.Error as exc:  # already aborted by DuckDB: nothing was committed
        log.debug("rollback after failure: %s", exc)


def _reader_error(exc: duckdb.Error, fired: bool, timeout_s: float) -> CleanroomError:
    if fired and isinstance(exc, duckdb.InterruptException):
        return QueryError("query.timeout", f"the query exceeded its time limit of {timeout_s:g} s")
    log.error("query failed in the engine: %s: %s", exc.__class__.__name__, exc)
    fault = storage_fault(exc, DB_FILE)  # a damaged block (store.integrity), a full or unreadable disk: not the query's fault
    if fault is not None:
        return fault
    return QueryError("query.failed", "the query failed in the engine; details are in the server log")


class _Watchdog:
    """Interrupts a cursor after a deadline: DuckDB has no query-timeout setting."""

    def __init__(self, cur: duckdb.DuckDBPyConnection, timeout_s: float) -> None:
        if not timeout_s > 0:
            raise QueryError("query.invalid", f"timeout must be positive, got {timeout_s}")
        self.fired = False
        self._cur = cur
        self._timer = threading.Timer(timeout_s, self._fire)
        self._timer.daemon = True

    def _fire(self) -> None:
        self.fired = True
        try:
            self._cur.interrupt()
        except duckdb.Error:  # the cursor closed as the deadline passed: nothing left to stop
            pass

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._timer.cancel()
