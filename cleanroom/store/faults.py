"""Storage faults are errors, not bugs: one classifier, and the gateway's memory of the last fault.

A full disk, a read-only or unreadable store directory, an I/O error, a damaged block: none of
these is a bug in cleanroom, and none should reach a client as ``internal.invariant`` (500).
:func:`storage_fault` is the ONE place that recognizes them, whichever library raised them:

==========================================================  ===================
what was raised                                             code (HTTP 503)
==========================================================  ===================
``OSError`` ENOSPC, EDQUOT; SQLite "database or disk is     ``store.full``
full"; DuckDB "No space left on device"; any I/O error
below when the file system has (almost) no free block
``OSError`` EROFS, EACCES, EPERM, EIO; SQLite "attempt to   ``store.unavailable``
write a readonly database", "unable to open database
file", "disk I/O error"; DuckDB "Read-only file system",
"Permission denied", "Input/output error"
SQLite "file is not a database", "database disk image is    ``store.integrity``
malformed"; DuckDB "Corrupt database file" (block
checksum), "Computed AES tag differs" (an encrypted block
that does not decrypt under the key the store was opened
with: it was damaged)
==========================================================  ===================

Anything else returns ``None``: it stays a bug. The message names the file or directory when
the caller knows it and says what to do; it goes to the server log and to ``cleanroom serve``'s
one start-up line, never into an HTTP body (a 5xx carries only the code's public meaning).

:class:`StoreHealth` is what ``GET /healthz`` reports: ``ok``, or ``degraded`` with the code of
the last fault. ``store.full`` and ``store.unavailable`` clear by themselves after the next
successful durable write (a charge, a stored result, an audit append, a published upload, or the
probe ``/healthz`` runs while degraded); ``store.integrity`` is sticky until a restart, whose
start checks decide again.
"""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path
from urllib.parse import quote

import duckdb

from cleanroom.errors import CleanroomError, StoreError

log = logging.getLogger(__name__)

RETRY_AFTER_S = 30
FAULT_CODES = frozenset({"store.full", "store.unavailable", "store.integrity"})

_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_UNAVAILABLE_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO})

# Lower-case fragments of SQLite's and DuckDB's messages (neither gives an errno), by code.
_TEXT: tuple[tuple[str, str], ...] = (
    ("database or disk is full", "store.full"),
    ("no space left on device", "store.full"),
    ("disk quota exceeded", "store.full"),
    ("file is not a database", "store.integrity"),
    ("database disk image is malformed", "store.integrity"),
    ("corrupt database file", "store.integrity"),
    ("computed checksum", "store.integrity"),
    ("computed aes tag differs", "store.integrity"),
    ("attempt to write a readonly database", "store.unavailable"),
    ("unable to open database file", "store.unavailable"),
    ("disk i/o error", "store.unavailable"),
    ("read-only file system", "store.unavailable"),
    ("permission denied", "store.unavailable"),
    ("operation not permitted", "store.unavailable"),
    ("input/output error", "store.unavailable"),
)

_ADVICE = {
    "store.full": "the disk holding it is full: free space (or grow the volume); the gateway recovers by itself",
    "store.unavailable": "it cannot be read or written (read-only file system, permissions or an I/O error): "
                         "check the mount and the owner of the store directory; the gateway recovers by itself",
    "store.integrity": "a block or file is damaged (checksum or format): stop the gateway and restore the file from a backup",
}


def storage_fault(exc: BaseException, path: Path | str | None = None) -> StoreError | None:
    """The storage fault ``exc`` is (``store.full`` / ``store.unavailable`` / ``store.integrity``), else None.

    ``path`` is the file or directory the caller was working on, when the exception does not
    name one itself (SQLite never does).
    """
    if isinstance(exc, StoreError) and exc.code in FAULT_CODES:
        return exc
    if isinstance(exc, CleanroomError):
        return None
    code = _code(exc)
    if code is None:
        return None
    where = str(getattr(exc, "filename", None) or path or "the store")
    if code == "store.unavailable" and _no_space(where):
        code = "store.full"  # SQLite reports a full disk as "disk I/O error" when it cannot grow its -shm file
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else _first_line(exc)
    details: dict[str, object] = {"path": str(where)}
    if code != "store.integrity":  # retrying helps once the operator acted; a damaged block needs a restart
        details["retry_after_s"] = RETRY_AFTER_S
    return StoreError(code, f"{where}: {reason}: {_ADVICE[code]}", **details)


def _code(exc: BaseException) -> str | None:
    if isinstance(exc, OSError) and exc.errno is not None:
        if exc.errno in _FULL_ERRNOS:
            return "store.full"
        if exc.errno in _UNAVAILABLE_ERRNOS:
            return "store.unavailable"
        return None
    if isinstance(exc, sqlite3.Error | duckdb.Error):
        text = str(exc).lower()
        for fragment, code in _TEXT:
            if fragment in text:
                return code
    return None


def _no_space(where: str) -> bool:
    """Whether the file system holding ``where`` (or its nearest existing parent) has no block left for us."""
    path = Path(where)
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        st = os.statvfs(path)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < 64 * 1024


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{exc.__class__.__name__}: {text[0] if text else ''}"


def check_sqlite_schema(path: Path, schema_sql: str, what: str) -> None:
    """``store.integrity`` unless the SQLite file at ``path`` has every table and column ``schema_sql`` creates.

    The expectation is computed, not written down twice: ``schema_sql`` (the code's own DDL) is run
    on an in-memory database and its tables' columns (name and declared type) are compared with
    the file's. Extra tables or columns are tolerated; a missing or retyped one is not.
    """
    expected = _columns(sqlite3.connect(":memory:"), schema_sql)
    try:
        con = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True)
        try:
            found = _columns(con, None)
        finally:
            con.close()
    except sqlite3.Error as exc:
        raise storage_fault(exc, path) or StoreError("store.integrity", f"{path}: cannot read it as the {what}: {exc}", path=str(path)) from None
    for table, columns in expected.items():
        have = found.get(table)
        if have is None:
            raise StoreError("store.integrity", f"{path}: the {what} has no table {table!r}: this is not the {what} this gateway "
                                                "writes (restore the file from a backup)", path=str(path), table=table)
        missing = [f"{c} {t}" for c, t in columns.items() if have.get(c) != t]
        if missing:
            raise StoreError("store.integrity", f"{path}: the {what}'s table {table!r} lacks {', '.join(missing)}: not the schema this "
                                                "gateway writes (restore the file from a backup)", path=str(path), table=table)


def _columns(con: sqlite3.Connection, script: str | None) -> dict[str, dict[str, str]]:
    try:
        if script is not None:
            con.executescript(script)
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        return {t: {r[1]: str(r[2]).upper() for r in con.execute(f"PRAGMA table_info({_quote(t)})")} for t in tables}
    finally:
        if script is not None:
            con.close()


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class StoreHealth:
    """The last storage fault of this process (thread-safe): what ``GET /healthz`` reports.

    ``fault(err)`` records one; ``wrote()`` says a durable write just succeeded and clears
    ``store.full`` / ``store.unavailable``; ``store.integrity`` stays until the process restarts.
    ``require_intact()`` is called before anything is charged or written: it refuses with the
    sticky ``store.integrity``.
    """

    PROBE_INTERVAL_S = 1.0

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._fault: StoreError | None = None
        self._sticky: StoreError | None = None
        self._probed = 0.0

    @property
    def reason(self) -> str | None:
        """The code of the fault the gateway is degraded by, or None when healthy."""
        with self._lock:
            current = self._sticky or self._fault
        return current.code if current is not None else None

    def fault(self, err: StoreError) -> None:
        if err.code not in FAULT_CODES:
            return
        with self._lock:
            if err.code == "store.integrity":
                if self._sticky is None:
                    log.error("store.integrity: %s; every further query is refused until the gateway is restarted", err.message)
                self._sticky = err
            else:
                if self._fault is None or self._fault.code != err.code:
                    log.warning("%s: %s", err.code, err.message)
                self._fault = err

    def wrote(self) -> None:
        """A durable write succeeded: the disk takes writes again."""
        with self._lock:
            if self._fault is not None:
                log.warning("%s cleared: the store takes writes again", self._fault.code)
            self._fault = None

    def require_intact(self) -> None:
        with self._lock:
            sticky = self._sticky
        if sticky is not None:
            raise StoreError("store.integrity", f"refused: a damaged block was found earlier ({sticky.message}); restart the gateway "
                                                "after restoring the store")

    def probe(self) -> None:
        """While degraded by full/unavailable: try one small durable write in the store (at most once a second)."""
        with self._lock:
            if self._fault is None or time.monotonic() - self._probed < self.PROBE_INTERVAL_S:
                return
            self._probed = time.monotonic()
        try:
            probe_write(self.directory)
        except OSError as exc:
            found = storage_fault(exc, self.directory)
            if found is not None:
                self.fault(found)
            return
        self.wrote()


def probe_write(directory: Path, size: int = 4096) -> None:
    """Write and fsync ``size`` bytes in an anonymous file in ``directory`` (nothing stays behind)."""
    fd = open_anonymous(directory)
    try:
        os.write(fd, b"\0" * size)
        os.fsync(fd)
    finally:
        os.close(fd)


def open_anonymous(directory: Path) -> int:
    """A read-write descriptor of a 0600 file in ``directory`` that has no name (freed on close or any exit, even kill -9).

    ``O_TMPFILE`` where the file system supports it; else a fresh name is created and unlinked at
    once, before a byte is written.
    """
    try:
        return os.open(directory, os.O_TMPFILE | os.O_RDWR, 0o600)
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT):
            raise
    for _ in range(100):
        name = directory / f".anon-{os.getpid()}-{os.urandom(8).hex()}"
        try:
            fd = os.open(name, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
        except FileExistsError:
            continue
        os.unlink(name)
        return fd
    raise FileExistsError(errno.EEXIST, "no free name for an anonymous file", str(directory))


__all__ = ["FAULT_CODES", "RETRY_AFTER_S", "StoreHealth", "check_sqlite_schema", "open_anonymous", "probe_write", "storage_fault"]
