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
import logging
import os
import threading
from array import array
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from cleanroom.crypto import canonical_json, sha256_hex
from cleanroom.errors import AuditError

GENESIS = "0" * 64
log = logging.getLogger(__name__)


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

    def __init__(self, path: Path, on_commit: Callable[[], None] | None = None) -> None:
        self.path = path
        self.on_commit = on_commit  # called after each durable append (the gateway re-anchors: cleanroom.integrity)
        self._checkpoint = _Checkpoint()  # what verify_incremental has verified so far (this process only)
        self._checkpoint_lock = threading.Lock()

    def append(self, event: str, actor: str, details: dict[str, Any], *, sync: bool = True) -> Entry:
        """Append one entry under an exclusive lock; returns it with its hash.

        ``sync=False`` skips the fsync (the entry is in the OS's page cache when this returns, so
        it survives the process being killed, not a power cut before the next fsync). Only for
        entries that release nothing new (a cached answer): the next synced append, or the OS
        within seconds, makes it durable; a charge's entry is always synced.

        A torn last line (a writer died mid-write) is never extended here (``audit.chain_broken``);
        the gateway cuts it off at start with :meth:`repair_torn_tail`, before anything is charged.
        """
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
                if sync:
                    os.fsync(fh.fileno())
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        if self.on_commit is not None:
            self.on_commit()
        return entry

    def repair_torn_tail(self) -> int:
        """Cut off a torn last line under the append lock; the number of bytes removed (0: none)."""
        if not self.path.exists():
            return 0
        with self.path.open("r+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                return _cut_torn_tail(fh, self.path)
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def head(self) -> tuple[int, str]:
        """(entries, head hash) from the last complete line, under a shared lock: cheap, no chain walk."""
        if not self.path.exists():
            return 0, GENESIS
        with self.path.open("rb") as fh:
            fcntl.flock(fh, fcntl.LOCK_SH)
            try:
                complete = _complete_size(fh, fh.seek(0, os.SEEK_END))  # a torn tail is ignored here, never cut
                line = _last_line(fh, end=complete)
                if line is None:
                    return 0, GENESIS
                return self._parse_tail(line)
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def checked(self) -> Iterator[Entry]:
        """Every complete entry in order, each checked against the chain; ``audit.chain_broken`` at the first bad line.

        An unterminated last line (an append in progress, or torn) is not yielded.
        """
        if not self.path.exists():
            return
        prev, count = GENESIS, 0
        with self.path.open("rb") as fh:
            for lineno, line in enumerate(fh, start=1):
                if not line.endswith(b"\n"):
                    return
                problem = _check_line(line, count, prev)
                if problem:
                    raise AuditError("audit.chain_broken", f"{self.path}:{lineno}: {problem}", line=lineno)
                entry = Entry.model_validate_json(line)
                prev, count = entry.hash, count + 1
                yield entry

    def _tail(self, fh: Any) -> tuple[int, str]:
        """Next seq and prev hash, from the last line (read backwards, not the whole file)."""
        line = _last_line(fh)
        if line is None:
            return 0, GENESIS
        return self._parse_tail(line)

    def _parse_tail(self, line: bytes) -> tuple[int, str]:
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

    def verify(self, expected_head: str | None = None, anchored: tuple[int, str] | None = None) -> VerifyReport:
        """Walk the chain; report the first line (1-based) that was edited, dropped or reordered.

        ``anchored`` = (entries, head) recorded elsewhere (the gateway's anchor): the log must hold
        at least that many entries and its entry number ``entries`` must have that hash; later
        entries may follow (appended after the anchor was written).
        """
        prev, count = GENESIS, 0
        at_anchor = GENESIS if anchored is not None and anchored[0] == 0 else None
        if self.path.exists():
            with self.path.open("rb") as fh:
                for lineno, line in enumerate(fh, start=1):
                    problem = _check_line(line, count, prev)
                    if problem:
                        return VerifyReport(ok=False, entries=count, head=prev, first_bad_line=lineno, problem=problem)
                    prev, count = json.loads(line)["hash"], count + 1
                    if anchored is not None and count == anchored[0]:
                        at_anchor = prev
        if expected_head is not None and expected_head != prev:
            return VerifyReport(ok=False, entries=count, head=prev, first_bad_line=count + 1, problem="log ends before the expected head: entries were cut off")
        if anchored is not None:
            n, head = anchored
            if count < n:
                return VerifyReport(ok=False, entries=count, head=prev, first_bad_line=count + 1,
                                    problem=f"log ends before the anchored head: the anchor records {n} entries (head {head}), "
                                            f"the log holds {count}: the last {n - count} entries were removed")
            if at_anchor != head:
                return VerifyReport(ok=False, entries=count, head=prev, first_bad_line=n,
                                    problem=f"entry seq={n - 1} is not the anchored one (anchor head {head}, found {at_anchor}): "
                                            "the log was replaced or rewritten")
        return VerifyReport(ok=True, entries=count, head=prev)

    def verify_incremental(self) -> VerifyReport:
        """Verify only what was appended since the last call (constant time per read of the API).

        Why: ``GET /v1/audit`` re-verified the whole chain on every read (0.18 s growing to 0.83 s
        as refused queries grew the log). Here the process keeps a checkpoint (entries, head, byte
        offset, the offset of every line): a read checks that the file still holds the
        checkpoint's last line unchanged at the same place (a cut or rewritten tail is caught),
        then walks only the new lines. An edit in the middle of the log that leaves the tail
        alone is caught by the full walk (gateway start, ``cleanroom audit verify``), not here.
        """
        with self._checkpoint_lock:
            point = self._checkpoint
            if not self.path.exists():
                return VerifyReport(ok=point.entries == 0, entries=0, head=GENESIS, first_bad_line=1 if point.entries else None,
                                    problem="the audit log was removed" if point.entries else None)
            with self.path.open("rb") as fh:
                problem = point.tail_problem(fh)
                if problem:
                    return VerifyReport(ok=False, entries=point.entries, head=point.head, first_bad_line=point.entries, problem=problem)
                fh.seek(point.offset)
                for line in fh:
                    if not line.endswith(b"\n"):
                        break  # an append in progress
                    bad = _check_line(line, point.entries, point.head)
                    if bad:
                        return VerifyReport(ok=False, entries=point.entries, head=point.head, first_bad_line=point.entries + 1, problem=bad)
                    point.advance(line)
            return VerifyReport(ok=True, entries=point.entries, head=point.head)

    def entries_after(self, seq: int | None) -> Iterator[Entry]:
        """Entries with ``seq > seq`` (all when None), starting from the byte offset the checkpoint knows."""
        first = 0 if seq is None else max(seq + 1, 0)
        with self._checkpoint_lock:
            point = self._checkpoint
            start = point.offsets[first] if first < len(point.offsets) else point.offset
        if not self.path.exists():
            return
        with self.path.open("rb") as fh:
            fh.seek(start)
            for line in fh:
                if not line.endswith(b"\n"):
                    return
                entry = Entry.model_validate_json(line)
                if entry.seq >= first:
                    yield entry

    def require_intact(self) -> None:
        report = self.verify()
        if not report.ok:
            raise AuditError("audit.chain_broken", f"{self.path}:{report.first_bad_line}: {report.problem}", line=report.first_bad_line)


class _Checkpoint:
    """How far ``verify_incremental`` got: entry count, head hash, end offset and each line's offset."""

    def __init__(self) -> None:
        self.entries, self.head, self.offset = 0, GENESIS, 0
        self.offsets = array("q")  # byte offset of entry seq=i at index i
        self.last_line = b""

    def tail_problem(self, fh: Any) -> str | None:
        """Whether the file still holds the checkpoint's last line at the same place."""
        if self.entries == 0:
            return None
        size = fh.seek(0, os.SEEK_END)
        if size < self.offset:
            return f"the log is shorter than the {self.entries} entries already verified: entries were removed"
        fh.seek(self.offsets[-1])
        if fh.read(len(self.last_line)) != self.last_line:
            return f"entry seq={self.entries - 1} changed after it was verified: the log was rewritten"
        return None

    def advance(self, line: bytes) -> None:
        self.offsets.append(self.offset)
        self.entries, self.head, self.offset = self.entries + 1, str(json.loads(line)["hash"]), self.offset + len(line)
        self.last_line = line


def _complete_size(fh: Any, end: int, block: int = 65536) -> int:
    """The length of the file's prefix that ends with a newline (0 if no line is complete)."""
    pos = end
    while pos > 0:
        start = max(pos - block, 0)
        fh.seek(start)
        chunk = fh.read(pos - start)
        i = chunk.rfind(b"\n")
        if i >= 0:
            return start + i + 1
        pos = start
    return 0


def _cut_torn_tail(fh: Any, path: Path) -> int:
    """Truncate an unterminated last line (call under the exclusive lock); bytes removed."""
    end = fh.seek(0, os.SEEK_END)
    if end == 0:
        return 0
    fh.seek(end - 1)
    if fh.read(1) == b"\n":
        return 0
    complete = _complete_size(fh, end)
    os.ftruncate(fh.fileno(), complete)
    os.fsync(fh.fileno())
    log.warning("%s: cut off a torn last line (%d bytes after byte %d): a writer died mid-append; "
                "that entry was never acknowledged", path, end - complete, complete)
    return end - complete


def _last_line(fh: Any, block: int = 65536, end: int | None = None) -> bytes | None:
    """The file's last non-empty line (before ``end``), reading backwards block by block (entries may exceed a block)."""
    end = fh.seek(0, os.SEEK_END) if end is None else end
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
