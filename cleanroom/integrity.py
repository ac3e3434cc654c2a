"""The integrity anchor: a keyed record that the budget ledger and the audit log only ever grow.

Why: the ledger (``budget.sqlite``) and the audit log (``audit.jsonl``) are plain files. Deleted,
truncated to 0 bytes or restored from an older copy, the ledger would give every partner its
budget back and empty the release cache (fresh noise for a repeated question: averaging). The
audit log's hash chain shows edits inside the log, but not a cut-off tail. So the gateway keeps
``<store>/anchor.json`` (mode 0600): what the ledger and the log held when last written,
under an HMAC-SHA256 whose key is derived (HKDF, its own label) from the gateway's secrets: a
store copied without the key file cannot be re-anchored, and an anchor cannot be forged.

What is anchored:
- ledger: number of charges, total micro-epsilon, last charge id, and a hash chain over every
  column of every charge (``chain_i = SHA-256(chain_{i-1} || canonical row_i)``), plus the number
  of cached releases;
- audit: number of entries and the head hash.

The rule at start (``Anchor.guard``), after cutting off a torn last audit line:
- the audit chain must verify, and every charged ``query`` entry it records must be a charge in the
  ledger (keyless: holds even when the anchor itself was deleted);
- no anchor: refused if the ledger records that it was anchored before (a marker row written
  with the first anchor: the anchor was deleted); otherwise (a new store, or a ledger from before
  anchors that the audit log agrees with) the first anchor is written;
- anchor present: its MAC must verify; the ledger may be AHEAD (more charges, whose first
  ``charges`` rows hash to the anchored chain: those are commits whose anchor update a crash cut
  off) but never BEHIND (fewer charges or results) or DIFFERENT (the anchored prefix hashes to
  something else: another ledger was swapped in); the same for the audit log (at least
  ``entries`` entries, entry ``entries - 1`` has the anchored hash);
- every charge must then have its ``query`` entry: a charge is committed (the write-ahead
  record) before its entry is appended, so a crash in between leaves a charge without one; that
  entry is written now from the charge row (``outcome`` ``released`` or ``interrupted``,
  ``recovered: true``); likewise an active policy whose activation a crash left unaudited.
  Then it re-anchors.

Any failure raises ``store.integrity`` naming the file, what was expected and what was found.
Updates (``Anchor.refresh``) run after each ledger commit and each audit append: incremental
(only the new charges are hashed), one small file written, fsynced and renamed into place, under
an exclusive lock so that several workers never move the anchor backwards.
"""

from __future__ import annotations

import fcntl
import hmac
import json
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import BaseModel, ConfigDict, ValidationError

from cleanroom.audit import GENESIS, AuditLog
from cleanroom.budget.epsilon import Epsilon
from cleanroom.budget.ledger import Ledger
from cleanroom.crypto import canonical_json, sha256_hex
from cleanroom.errors import AuditError, StoreError
from cleanroom.policy.activation import audit_unaudited_activations
from cleanroom.settings import GatewaySecrets

ANCHOR_FILE = "anchor.json"
LOCK_FILE = "anchor.lock"
VERSION = 1
HKDF_INFO = b"cleanroom/integrity-anchor/v1"
log = logging.getLogger(__name__)
# the charges table's columns in order (Ledger.charge_rows selects them all)
_CHARGE_COLUMNS = ("id", "collaboration", "partner", "month", "purpose", "micro", "query_id", "actor", "at")


class LedgerMark(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    charges: int = 0
    micro: int = 0
    last_id: int = 0
    chain: str = GENESIS
    results: int = 0


class AuditMark(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    entries: int = 0
    head: str = GENESIS


class AnchorState(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = VERSION
    ledger: LedgerMark = LedgerMark()
    audit: AuditMark = AuditMark()


def anchor_key(secrets: GatewaySecrets) -> bytes:
    """The anchor's own MAC key: HKDF-SHA256 over the gateway secrets, labelled for this one purpose."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=HKDF_INFO).derive(secrets.db_key + secrets.pepper)


def chain_step(chain: str, row: tuple[Any, ...]) -> str:
    return sha256_hex(bytes.fromhex(chain) + canonical_json(list(row)))


def extend(mark: LedgerMark, rows: list[tuple[Any, ...]], results: int) -> LedgerMark:
    """``mark`` followed by the charge ``rows`` (``id`` first, ``micro`` sixth, as the table orders them)."""
    charges, micro, last_id, chain = mark.charges, mark.micro, mark.last_id, mark.chain
    for row in rows:
        charges, micro, last_id, chain = charges + 1, micro + int(row[5]), int(row[0]), chain_step(chain, row)
    return LedgerMark(charges=charges, micro=micro, last_id=last_id, chain=chain, results=results)


def _integrity(message: str, **details: Any) -> StoreError:
    return StoreError("store.integrity", message, **details)


class AnchorFile:
    """``<store>/anchor.json`` alone: read (MAC checked) and atomic write, under the anchor lock."""

    def __init__(self, store_dir: Path, secrets: GatewaySecrets) -> None:
        self.store_dir = Path(store_dir)
        self.path = Path(store_dir) / ANCHOR_FILE
        self.lock_path = Path(store_dir) / LOCK_FILE
        self._key = anchor_key(secrets)

    def _mac(self, state: AnchorState) -> str:
        return hmac.new(self._key, canonical_json(state.model_dump()), "sha256").hexdigest()

    def read(self) -> AnchorState | None:
        """The anchored state, or None if there is no anchor file; ``store.integrity`` if it is not ours."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            data = json.loads(raw)
            mac = data.pop("mac")
            data.pop("updated_at", None)
            state = AnchorState.model_validate(data)
        except (ValueError, KeyError, TypeError, AttributeError, ValidationError) as exc:
            raise _integrity(f"{self.path} is not an integrity anchor (unreadable or incomplete JSON)", file=str(self.path)) from exc
        if not isinstance(mac, str) or not hmac.compare_digest(mac, self._mac(state)):
            raise _integrity(
                f"{self.path}: the anchor's MAC does not verify: it was edited, or written under other gateway keys "
                "(is --keys-file / $CLEANROOM_KEYS_FILE the one this store was created with?)",
                file=str(self.path),
            )
        if state.version != VERSION:
            raise _integrity(f"{self.path}: anchor version {state.version}, this gateway reads version {VERSION}", file=str(self.path))
        return state

    def write(self, state: AnchorState) -> None:
        """Atomically replace the anchor: temp file (0600), fsync, rename, fsync the directory."""
        body = {**state.model_dump(), "updated_at": datetime.now(UTC).isoformat(), "mac": self._mac(state)}
        tmp = self.path.with_name(f".{ANCHOR_FILE}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(json.dumps(body, sort_keys=True, indent=1).encode() + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        dfd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


class Anchor(AnchorFile):
    """The anchor of one store: read, check at start (``guard``), refresh after each commit."""

    def __init__(self, store_dir: Path, ledger: Ledger, audit: AuditLog, secrets: GatewaySecrets, *, delay_s: float = 0.0) -> None:
        super().__init__(store_dir, secrets)
        self.ledger, self.audit = ledger, audit
        self.delay_s = delay_s
        self.last_activated: dict[str, str] = {}  # collaboration -> content hash of its last policy.activate entry (start walk)
        self._timer: threading.Timer | None = None
        self._timer_lock = threading.Lock()

    # --- runtime ---------------------------------------------------------------------------------

    def refresh(self) -> None:
        """After a commit or an append: move the anchor now (``delay_s`` 0) or within ``delay_s``.

        The gateway uses a short delay so that a burst of commits moves the anchor once (each move
        is a file written, fsynced and renamed: 4 of a cached query's 11 ms). Nothing is weaker
        for it: a ledger or log ahead of the anchor is what a crash leaves anyway and is accepted
        at start; what the anchor catches (a lost, rolled-back or swapped file) is older than it.
        """
        if self.delay_s <= 0:
            self.refresh_now()
            return
        with self._timer_lock:
            if self._timer is None:
                self._timer = threading.Timer(self.delay_s, self._scheduled)
                self._timer.daemon = True
                self._timer.start()

    def _scheduled(self) -> None:
        with self._timer_lock:
            self._timer = None
        self.refresh_now()

    def close(self) -> None:
        """Write a pending move at once (the gateway's shutdown)."""
        with self._timer_lock:
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
            self.refresh_now()

    def refresh_now(self) -> None:
        """Move the anchor up to the ledger and log as they are now.

        Never raises: the commit it follows is already durable, and a missed update is caught up by
        the next one or at start (a ledger or log ahead of the anchor is accepted). An anchor that
        does not verify is left alone for the start check to report.
        """
        try:
            with self._locked():
                old = self.read()
                if old is None:
                    log.warning("%s is missing; not re-creating it while running (the next start checks the store)", self.path)
                    return
                rows = self.ledger.charge_rows(old.ledger.last_id)
                entries, head = self.audit.head()
                new = AnchorState(ledger=extend(old.ledger, rows, max(self.ledger.result_count(), old.ledger.results)),
                                  audit=AuditMark(entries=entries, head=head) if entries >= old.audit.entries else old.audit)
                if new != old:
                    self.write(new)
        except Exception:  # noqa: BLE001 - the commit stands; the anchor catches up later
            log.exception("could not update the integrity anchor %s", self.path)

    # --- start -----------------------------------------------------------------------------------

    def guard(self) -> AnchorState:
        """The start check (module docstring): repair a torn audit tail, compare, re-anchor; or ``store.integrity``."""
        cut = self.audit.repair_torn_tail()
        if cut:
            log.warning("%s: removed a torn last line of %d bytes (a crash mid-append; it was never acknowledged)", self.audit.path, cut)
        with self._locked():
            anchored = self.read()
            audit_mark, at_anchor, charged = self._walk_audit(anchored.audit.entries if anchored else 0)
            rows = self.ledger.charge_rows(0)
            ledger_mark, prefix = self._walk_ledger(rows, anchored.ledger.last_id if anchored else 0)
            self._check_audit_charges(charged, rows)
            if anchored is None:
                since = self.ledger.anchored_since()
                if since is not None:
                    raise _integrity(
                        f"{self.path} is missing, but {self.ledger.path} has been anchored since {since} and holds "
                        f"{ledger_mark.charges} charges ({ledger_mark.micro / 1e6:g} epsilon): the anchor was deleted; restore it "
                        "from backup, or, if you trust the ledger and audit log as they are, adopt them with: "
                        "cleanroom audit anchor --adopt",
                        file=str(self.path), ledger_charges=ledger_mark.charges,
                    )
                if ledger_mark.charges:
                    log.warning("%s holds %d charges and was never anchored (a store from before anchors, or charged by a tool): "
                                "the audit log agrees with it; anchoring it now", self.ledger.path, ledger_mark.charges)
            else:
                self._compare_ledger(anchored.ledger, ledger_mark, prefix)
                self._compare_audit(anchored.audit, audit_mark, at_anchor)
            if self._audit_unaudited(rows, charged) + audit_unaudited_activations(self.store_dir, self.audit, self.last_activated):
                entries, head = self.audit.head()
                audit_mark = AuditMark(entries=entries, head=head)
            state = AnchorState(ledger=ledger_mark, audit=audit_mark)
            if state != anchored:
                self.write(state)
            self.ledger.mark_anchored()
            return state

    def adopt(self) -> AnchorState:
        """Anchor the store as it is now (an operator's explicit decision; the audit chain must verify)."""
        with self._locked():
            audit_mark, _, charged = self._walk_audit(0)
            rows = self.ledger.charge_rows(0)
            self._check_audit_charges(charged, rows)
            state = AnchorState(ledger=extend(LedgerMark(), rows, self.ledger.result_count()), audit=audit_mark)
            self.write(state)
            self.ledger.mark_anchored()
            return state

    def _walk_audit(self, anchored_entries: int) -> tuple[AuditMark, str | None, dict[str, int]]:
        """(mark, hash of entry ``anchored_entries - 1``, charged query ids -> line) over the verified chain.

        The same walk records, in ``self.last_activated``, the content hash each collaboration's
        last ``policy.activate`` entry names (for :func:`audit_unaudited_activations`).
        """
        head, count, at_anchor = GENESIS, 0, GENESIS if anchored_entries == 0 else None
        charged: dict[str, int] = {}
        self.last_activated = {}
        try:
            for entry in self.audit.checked():
                head, count = entry.hash, count + 1
                if count == anchored_entries:
                    at_anchor = head
                if entry.event == "query" and entry.details.get("outcome") != "cached" and entry.details.get("query_id"):
                    charged.setdefault(str(entry.details["query_id"]), count)
                elif entry.event == "policy.activate":
                    self.last_activated[str(entry.details.get("collaboration"))] = str(entry.details.get("content_hash"))
        except AuditError as exc:
            raise _integrity(f"{exc.message}; the audit log must verify before the gateway starts (cleanroom audit verify)",
                             file=str(self.audit.path), line=exc.details.get("line")) from exc
        return AuditMark(entries=count, head=head), at_anchor, charged

    def _walk_ledger(self, rows: list[tuple[Any, ...]], anchored_last_id: int) -> tuple[LedgerMark, LedgerMark]:
        """(the whole ledger, its prefix up to the anchored last id)."""
        prefix = extend(LedgerMark(), [r for r in rows if int(r[0]) <= anchored_last_id], 0)
        return extend(LedgerMark(), rows, self.ledger.result_count()), prefix

    def _check_audit_charges(self, charged: dict[str, int], rows: list[tuple[Any, ...]]) -> None:
        """Every charge the audit log records must be in the ledger (a charge commits before its audit entry)."""
        in_ledger = {str(r[6]) for r in rows}
        missing = [q for q in charged if q not in in_ledger]
        if missing:
            raise _integrity(
                f"{self.ledger.path} lacks {len(missing)} of the {len(charged)} charged queries {self.audit.path} records "
                f"(first: {missing[0]} at line {charged[missing[0]]}): the ledger was deleted, truncated or restored from an "
                "older copy; restore the latest budget.sqlite (with its -wal file) from backup",
                file=str(self.ledger.path), missing=len(missing), first_missing=missing[0],
            )

    def _audit_unaudited(self, rows: list[tuple[Any, ...]], charged: dict[str, int]) -> int:
        """Write the audit entry of every charge a crash cut off before it (the charge row is the write-ahead record).

        A charge commits before any data is read and its ``query`` entry is appended after the
        release (or the failure); a crash in between (kill -9, power loss, a torn last line cut
        off above) leaves a charge the log does not mention. Its entry is written here, before
        anything is served, from the charge row: ``outcome`` is ``released`` when the result was
        stored (the caller may have received it) and ``interrupted`` when it was not (the epsilon
        stays spent: nothing is refunded, nothing is charged again). Returns how many were written.
        """
        missing = [row for row in rows if str(row[_CHARGE_COLUMNS.index("query_id")]) not in charged]
        for row in missing:
            charge = dict(zip(_CHARGE_COLUMNS, row, strict=False))
            stored = self.ledger.get_result(str(charge["query_id"]))
            self.audit.append("query", str(charge["actor"]), {
                "query_id": charge["query_id"], "collaboration": charge["collaboration"], "partner": charge["partner"],
                "purpose": charge["purpose"], "month": charge["month"], "epsilon": str(Epsilon(int(charge["micro"]))),
                "outcome": "released" if stored else "interrupted", "charged_at": charge["at"], "recovered": True,
                "result_digest": sha256_hex(canonical_json(stored.payload)) if stored else None,
            })
        if missing:
            log.warning("%s: wrote the audit entries of %d charge(s) a crash cut off before their entry (first: %s)",
                        self.audit.path, len(missing), missing[0][_CHARGE_COLUMNS.index("query_id")])
        return len(missing)

    def _compare_ledger(self, anchored: LedgerMark, found: LedgerMark, prefix: LedgerMark) -> None:
        where = str(self.ledger.path)
        if found.charges < anchored.charges or found.micro < anchored.micro:
            raise _integrity(
                f"{where} is behind the anchor: it holds {found.charges} charges ({found.micro / 1e6:g} epsilon), the anchor "
                f"records {anchored.charges} charges ({anchored.micro / 1e6:g} epsilon, last id {anchored.last_id}): the ledger "
                "was deleted, truncated or restored from an older copy; restore the latest budget.sqlite (with its -wal file)",
                file=where, expected_charges=anchored.charges, found_charges=found.charges,
            )
        if (prefix.charges, prefix.micro, prefix.last_id, prefix.chain) != (anchored.charges, anchored.micro, anchored.last_id, anchored.chain):
            raise _integrity(
                f"{where} is not the anchored ledger: its charges up to id {anchored.last_id} ({prefix.charges} charges, "
                f"{prefix.micro / 1e6:g} epsilon) differ from the anchored ones ({anchored.charges} charges, "
                f"{anchored.micro / 1e6:g} epsilon): another store's or collaboration's ledger was put in its place, or an "
                "older copy was restored and charged again; restore the latest budget.sqlite (with its -wal file)",
                file=where, expected_charges=anchored.charges, found_charges=prefix.charges,
            )
        if found.results < anchored.results:
            raise _integrity(
                f"{where} holds {found.results} cached releases, the anchor records {anchored.results}: the release cache "
                "lost entries (an identical query would get fresh noise); restore the latest budget.sqlite",
                file=where, expected_results=anchored.results, found_results=found.results,
            )

    def _compare_audit(self, anchored: AuditMark, found: AuditMark, at_anchor: str | None) -> None:
        where = str(self.audit.path)
        if found.entries < anchored.entries:
            raise _integrity(
                f"{where} is behind the anchor: it holds {found.entries} entries, the anchor records {anchored.entries} "
                f"(head {anchored.head}): the last {anchored.entries - found.entries} entries were removed; restore the log from backup",
                file=where, expected_entries=anchored.entries, found_entries=found.entries,
            )
        if at_anchor != anchored.head:
            raise _integrity(
                f"{where} is not the anchored log: entry seq={anchored.entries - 1} has hash {at_anchor}, the anchor records "
                f"{anchored.head}: the log was replaced or rewritten",
                file=where, expected_head=anchored.head, found_head=at_anchor,
            )


def peek(store_dir: Path) -> AnchorState | None:
    """The anchor's content WITHOUT checking its MAC (for ``audit verify`` without the gateway keys)."""
    path = Path(store_dir) / ANCHOR_FILE
    try:
        data = json.loads(path.read_bytes())
        data.pop("mac", None)
        data.pop("updated_at", None)
        return AnchorState.model_validate(data)
    except FileNotFoundError:
        return None
    except (ValueError, TypeError, AttributeError, ValidationError) as exc:
        raise _integrity(f"{path} is not an integrity anchor (unreadable or incomplete JSON)", file=str(path)) from exc


def guard_store(store_dir: Path, ledger: Ledger, audit: AuditLog, secrets: GatewaySecrets, *, delay_s: float = 0.0) -> Anchor:
    """Check the store at start (``store.integrity`` on mismatch) and hook the anchor to every later commit."""
    anchor = Anchor(store_dir, ledger, audit, secrets, delay_s=delay_s)
    anchor.guard()
    ledger.on_commit = anchor.refresh
    audit.on_commit = anchor.refresh
    return anchor


__all__ = ["ANCHOR_FILE", "Anchor", "AnchorFile", "AnchorState", "AuditMark", "LedgerMark", "anchor_key", "guard_store", "peek"]
