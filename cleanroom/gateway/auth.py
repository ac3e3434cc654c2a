"""API keys: minted once, stored only as a hash, bound to one partner and one role.

A key looks like ``crk_<43 url-safe chars>`` (32 random bytes). The plaintext is shown once at
creation and never stored: ``<store>/gateway.sqlite`` keeps its SHA-256 only.

Why plain SHA-256 and not an HMAC under the gateway pepper: a key carries 256 bits of entropy, so
there is no dictionary to attack and a pepper or a slow hash would add nothing; preimage
resistance alone makes a stolen ``gateway.sqlite`` useless for forging a key. Keeping the pepper
out of it also lets an operator mint and revoke keys (``cleanroom apikey``) without reading the
gateway's secrets. Lookup is by the hash (an index), so the plaintext is never compared byte by
byte; the stored hash is then re-checked with :func:`crypto.constant_time_equal`.

Every creation, revocation and failed authentication is appended to the audit log; the key
itself never is (not even a prefix).

Authentication keeps answering on a broken disk. The audit entry of a *failed* authentication is
best effort: when the disk is full or the store read-only, the failure is logged, reported to
``on_fault`` (the gateway's ``StoreHealth``) and the caller still gets its 401. On a read-only
or full file system SQLite cannot open a WAL database (it cannot create or grow the ``-shm``
file), so a lookup that fails that way is retried with ``immutable=1``: nothing can write the key
table there either (no writer can create its WAL), and the retry is made only when there is no
``-wal`` file holding committed changes (a revocation) that an immutable read would miss.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict

from cleanroom.audit import AuditLog
from cleanroom.crypto import constant_time_equal, sha256_hex
from cleanroom.errors import AuthError, ConfigError, StoreError
from cleanroom.partners import Partner
from cleanroom.store.faults import storage_fault

Role = Literal["analyst", "uploader", "compliance", "report"]
PartnerRole = Literal["brand", "dealer", "finance"]
ROLES: tuple[str, ...] = get_args(Role)

KEY_PREFIX = "crk_"
KEY_PATTERN = re.compile(r"^crk_[A-Za-z0-9_-]{43}$")
DB_NAME = "gateway.sqlite"

log = logging.getLogger("cleanroom.gateway")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id     TEXT PRIMARY KEY,
    key_hash   TEXT NOT NULL UNIQUE,
    partner    TEXT NOT NULL,
    role       TEXT NOT NULL,
    label      TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
)
"""


class Principal(BaseModel):
    """Who is calling: the key, the partner it speaks for, that partner's kind, and the key's role."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key_id: str
    partner: str
    partner_role: PartnerRole
    role: Role

    @property
    def actor(self) -> str:
        """The audit ``actor`` of anything this key does: ``<partner>/<key_id>``."""
        return f"{self.partner}/{self.key_id}"


class KeyInfo(BaseModel):
    """A key as ``apikey list`` shows it: everything but the secret (and its hash)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key_id: str
    partner: str
    role: Role
    label: str
    created_at: str
    revoked_at: str | None = None


FAILURE_WINDOW_S = 60
MAX_FAILURES = 30  # anonymous failures per client and window before further ones are refused with 429
_LOGGED_COUNTS = frozenset({1, 10, 100, 1000})


class FailureWindow:
    """Anonymous authentication failures per client in fixed windows (bounded memory, thread-safe)."""

    def __init__(self, window_s: int = FAILURE_WINDOW_S, max_clients: int = 10_000) -> None:
        self.window_s, self.max_clients = window_s, max_clients
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[int, int]] = {}  # client -> (window start, failures)

    def record(self, client: str, now: float | None = None) -> tuple[int, int]:
        """Count one failure; return (failures in the client's current window, seconds until it ends)."""
        moment = int(time.time() if now is None else now)
        start = moment - moment % self.window_s
        with self._lock:
            if len(self._counts) > self.max_clients:
                self._counts = {c: v for c, v in self._counts.items() if v[0] == start}
            began, n = self._counts.get(client, (start, 0))
            n = n + 1 if began == start else 1
            self._counts[client] = (start, n)
        return n, start + self.window_s - moment


class ApiKeys:
    """The key table in ``<store>/gateway.sqlite``. One short-lived connection per call (thread-safe)."""

    def __init__(self, store_dir: Path, partners: Mapping[str, Partner], audit: AuditLog | None = None) -> None:
        self.failures = FailureWindow()
        self.path = store_dir / DB_NAME
        self.partners = partners
        self.audit = audit if audit is not None else AuditLog(store_dir / "audit.jsonl")
        self.on_fault: Callable[[StoreError], None] | None = None  # told about a storage fault met on a best-effort write
        _create_private_file(self.path)
        with self._db() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(_SCHEMA)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path, timeout=10)) as db, db:
            yield db

    def create_key(self, partner: str, role: str, label: str = "", *, actor: str) -> tuple[str, str]:
        """Mint a key; return ``(key_id, plaintext)``. The plaintext exists only in this return value."""
        self._check_partner(partner)
        checked = _check_role(role)
        key_id, plaintext = "kid_" + secrets.token_hex(6), KEY_PREFIX + secrets.token_urlsafe(32)
        with self._db() as db:
            db.execute(
                "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?, NULL)",
                (key_id, sha256_hex(plaintext.encode()), partner, checked, label, _now()),
            )
        self.audit.append("apikey.create", actor, {"key_id": key_id, "partner": partner, "role": checked, "label": label})
        return key_id, plaintext

    def revoke_key(self, key_id: str, *, actor: str) -> KeyInfo:
        """Revoke a key; it fails authentication from the next request on. Revoking twice is an error."""
        info = self._info(key_id)
        if info.revoked_at is not None:
            raise AuthError("auth.invalid", f"API key {key_id} was already revoked at {info.revoked_at}", key_id=key_id)
        with self._db() as db:
            db.execute("UPDATE api_keys SET revoked_at = ? WHERE key_id = ?", (_now(), key_id))
        self.audit.append("apikey.revoke", actor, {"key_id": key_id, "partner": info.partner, "role": info.role})
        return self._info(key_id)

    def list_keys(self) -> list[KeyInfo]:
        """Every key ever minted, oldest first, without secrets."""
        with self._db() as db:
            rows = db.execute(f"SELECT {_INFO_COLUMNS} FROM api_keys ORDER BY rowid").fetchall()
        return [_key_info(row) for row in rows]

    def authenticate(self, plaintext: str, *, where: str = "", client: str = "") -> Principal:
        """Resolve a bearer key to its principal, or audit the failure and raise ``auth.invalid``.

        A client that keeps presenting unknown keys is throttled (``auth.rate_limited``) and its
        failures are aggregated in the audit log (see :class:`FailureWindow`).
        """
        row = self._lookup(plaintext) if KEY_PATTERN.match(plaintext) else None
        if row is None:
            self.fail("invalid", where=where, client=client)
            raise AuthError("auth.invalid", "the API key is unknown or malformed")
        key_id, partner, role, revoked_at = row
        if revoked_at is not None:
            self.fail("revoked", where=where, actor=f"{partner}/{key_id}", key_id=key_id, partner=partner)
            raise AuthError("auth.invalid", f"API key {key_id} was revoked", key_id=key_id)
        if partner not in self.partners:
            self.fail("unknown_partner", where=where, actor=f"{partner}/{key_id}", key_id=key_id, partner=partner)
            raise AuthError("auth.invalid", f"API key {key_id} belongs to partner {partner!r}, which no longer exists", key_id=key_id)
        return Principal(key_id=key_id, partner=partner, partner_role=self.partners[partner].role, role=role)

    def fail(self, reason: str, *, where: str = "", actor: str = "anonymous", client: str = "", **details: Any) -> None:
        """Record ``auth.failure`` (reason, endpoint, and the key id when one is known; never the key).

        Anonymous failures (no key, an unknown key) cost the caller nothing, so one audit entry each
        would let anyone grow the log without bound: they are counted per client and window and
        written at the 1st, 10th, 100th... failure with the running count. A client past
        ``MAX_FAILURES`` in a window gets ``auth.rate_limited`` (429, Retry-After) instead.
        """
        if actor != "anonymous":
            self._audit_failure(actor, {"reason": reason, "where": where, **details})
            return
        total, retry_after = self.failures.record(client)
        count, _ = self.failures.record(f"{client}|{reason}")
        if count in _LOGGED_COUNTS or (count > 1000 and count % 1000 == 0):
            self._audit_failure(actor, {"reason": reason, "where": where, "client": client, "failures_in_window": count,
                                        "window_s": FAILURE_WINDOW_S, **details})
        if total > MAX_FAILURES:
            raise AuthError("auth.rate_limited", f"too many failed authentications from this client; retry in {retry_after} s",
                            retry_after_s=retry_after)

    def _audit_failure(self, actor: str, details: dict[str, Any]) -> None:
        """Best effort: a full or read-only disk must not turn a 401 into a 500 (or a 503)."""
        try:
            self.audit.append("auth.failure", actor, details)
        except (OSError, sqlite3.Error) as exc:
            fault = storage_fault(exc, self.audit.path)
            if fault is None:
                raise
            log.warning("auth.failure not audited (%s): %s", fault.code, fault.message)
            if self.on_fault is not None:
                self.on_fault(fault)

    def _lookup(self, plaintext: str) -> tuple[str, str, str, str | None] | None:
        digest = sha256_hex(plaintext.encode())
        query = "SELECT key_hash, key_id, partner, role, revoked_at FROM api_keys WHERE key_hash = ?"
        try:
            with self._db() as db:
                row = db.execute(query, (digest,)).fetchone()
        except sqlite3.OperationalError as exc:
            fault = storage_fault(exc, self.path)
            wal = self.path.with_name(self.path.name + "-wal")
            if fault is None or fault.code == "store.integrity" or (wal.exists() and wal.stat().st_size > 0):
                raise
            with closing(sqlite3.connect(f"file:{quote(str(self.path))}?mode=ro&immutable=1", uri=True)) as db:
                row = db.execute(query, (digest,)).fetchone()
        if row is None or not constant_time_equal(row[0], digest):
            return None
        return row[1], row[2], row[3], row[4]

    def _info(self, key_id: str) -> KeyInfo:
        with self._db() as db:
            row = db.execute(f"SELECT {_INFO_COLUMNS} FROM api_keys WHERE key_id = ?", (key_id,)).fetchone()
        if row is None:
            raise AuthError("auth.invalid", f"no API key with id {key_id!r} (see: cleanroom apikey list)", key_id=key_id)
        return _key_info(row)

    def _check_partner(self, partner: str) -> None:
        if partner not in self.partners:
            known = ", ".join(sorted(self.partners))
            raise ConfigError("partner.unknown", f"no partner {partner!r} (known: {known})", partner=partner)


_INFO_COLUMNS = "key_id, partner, role, label, created_at, revoked_at"


def _key_info(row: tuple[Any, ...]) -> KeyInfo:
    return KeyInfo(key_id=row[0], partner=row[1], role=row[2], label=row[3], created_at=row[4], revoked_at=row[5])


def _check_role(role: str) -> Role:
    if role not in ROLES:
        raise ConfigError("config.invalid", f"role {role!r} is not one of {', '.join(ROLES)}", role=role)
    return role  # type: ignore[return-value]


def _create_private_file(path: Path) -> None:
    """Create the key database 0600 before SQLite touches it (its journals inherit the mode)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


__all__ = ["KEY_PREFIX", "ROLES", "ApiKeys", "KeyInfo", "Principal", "Role"]
