"""The tamper-evident audit log: an append-only JSON-lines hash chain.

Each entry records ``seq`` (0, 1, 2, ...), ``prev`` (the SHA-256 of the previous entry's
canonical bytes; 64 zeros for the first) and its own ``hash``. Editing an entry breaks its own
hash; dropping or reordering entries breaks a ``seq`` or ``prev`` link; cutting the tail is
caught by comparing with the head hash recorded elsewhere (``verify(expected_head=...)``).
Appends take an exclusive file lock so that concurrent writers (several gateway workers, the CLI)
never interleave or fork the chain.

Events: ``upload``, ``upload.rejected``, ``policy.sign``, ``policy.activate``, ``query`` (a
charged release, or its failure after the charge, with the epsilon and a digest of the result),
``query.refused`` (refused before any charge: policy, parameters, budget), ``auth.failure``,
``apikey.create``, ``apikey.revoke``.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from cleanroom.crypto import canonical_json, sha256_hex
from cleanroom.errors import AuditError

GENESIS = "0" * 64


class Entry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: int
    at: str
    event: str
    actor: str
    details: dict[str, Any]
    prev: str
    hash: str = ""

    def compute_hash(self) -> str:
        return sha256_hex(canonical_json(self.model_dump(exclude={"hash"})))


class VerifyReport(BaseModel):
    ok: bool
    entries: int
    head: str
    first_bad_line: int | None = None
    problem: str | None = None


class AuditLog:
    """Append and read only. There is deliberately no edit or delete."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, event: str, actor: str, details: dict[str, Any]) -> Entry:
        """Append one entry under an exclusive lock; returns it with its hash."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "r+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                seq, prev = self._tail(fh)
                entry = Entry(seq=seq, at=datetime.now(UTC).isoformat(), event=event, actor=actor, details=details, prev=prev)
                entry = entry.model_copy(update={"hash": entry.compute_hash()})
                fh.write(json.dumps(entry.model_dump(), sort_keys=True).encode() + b"\n")
                fh.flush()
                os.fsync(fh.fileno())
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        return entry

    def _tail(self, fh: Any) -> tuple[int, str]:
        """Next seq and prev hash, from the last line (read backwards, not the whole file)."""
        line = _last_line(fh)
        if line is None:
            return 0, GENESIS
        try:
            last = json.loads(line)
            return int(last["seq"]) + 1, str(last["hash"])
        except (ValueError, KeyError, TypeError) as exc:
            raise AuditError("audit.chain_broken", f"{self.path}: the last entry is not a valid audit entry; refusing to extend the chain") from exc

    def entries(self) -> Iterator[Entry]:
        """Every entry in order; a line that is not an entry raises ``audit.chain_broken`` naming it."""
        if not self.path.exists():
            return
        with self.path.open("rb") as fh:
            for lineno, line in enumerate(fh, start=1):
                try:
                    yield Entry.model_validate_json(line)
                except ValueError as exc:
                    raise AuditError("audit.chain_broken", f"{self.path}:{lineno}: not a valid audit entry", line=lineno) from exc

    def verify(self, expected_head: str | None = None) -> VerifyReport:
        """Walk the chain; report the first line (1-based) that was edited, dropped or reordered."""
        prev, count = GENESIS, 0
        if self.path.exists():
            with self.path.open("rb") as fh:
                for lineno, line in enumerate(fh, start=1):
                    problem = _check_line(line, count, prev)
                    if problem:
                        return VerifyReport(ok=False, entries=count, head=prev, first_bad_line=lineno, problem=problem)
                    prev, count = json.loads(line)["hash"], count + 1
        if expected_head is not None and expected_head != prev:
            return VerifyReport(ok=False, entries=count, head=prev, first_bad_line=count + 1, problem="log ends before the expected head: entries were cut off")
        return VerifyReport(ok=True, entries=count, head=prev)

    def require_intact(self) -> None:
        report = self.verify()
        if not report.ok:
            raise AuditError("audit.chain_broken", f"{self.path}:{report.first_bad_line}: {report.problem}", line=report.first_bad_line)


def _last_line(fh: Any, block: int = 65536) -> bytes | None:
    """The file's last non-empty line, reading backwards block by block (entries may exceed a block)."""
    end = fh.seek(0, os.SEEK_END)
    tail = b""
    while end > 0:
        start = max(end - block, 0)
        fh.seek(start)
        tail = fh.read(end - start) + tail
        end = start
        stripped = tail.rstrip(b"\n")
        if b"\n" in stripped:
            return stripped.rsplit(b"\n", 1)[1]
    stripped = tail.rstrip(b"\n")
    return stripped or None


def _check_line(line: bytes, expected_seq: int, expected_prev: str) -> str | None:
    try:
        entry = Entry.model_validate_json(line)
    except ValueError:
        return "not a valid audit entry"
    if entry.hash != entry.compute_hash():
        return f"entry seq={entry.seq} was edited (its hash does not match its content)"
    if entry.seq != expected_seq:
        return f"expected seq={expected_seq}, found seq={entry.seq}: an entry was dropped or reordered"
    if entry.prev != expected_prev:
        return f"entry seq={entry.seq} does not follow the previous entry: an entry was dropped, inserted or reordered"
    return None


__all__ = ["AuditLog", "Entry", "VerifyReport"]
