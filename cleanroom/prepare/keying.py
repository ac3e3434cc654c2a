"""Salted keying of normalized identifiers, and the worker pool that spreads it over cores.

The identity key is ``HMAC-SHA256(salt, kind_prefix + normalized)`` as 64 lower-case hex
characters, with ``kind_prefix`` ``"email:"`` or ``"phone:"``. The prefix keeps the two kinds
apart: without it a (strange but valid) email equal to some E.164 string would key to the same
hid as that phone. Every partner must apply exactly this construction, so it is documented in
docs/guides/partner-workflow.md and pinned by a test vector.

Speed: a pre-keyed HMAC ``.copy()`` per value (``crypto.Keyer``'s trick) yields raw 32-byte
digests; they are joined into one ``bytes`` (cheap to send back from a worker process) and turned
into hex text by a numpy lookup table, not by a Python ``.hex()`` per value.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Literal, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.hmac import HMAC

from cleanroom.crypto import SECRET_BYTES, Keyer, sha256_hex
from cleanroom.errors import ConfigError, InternalError

IdentityKind = Literal["email", "phone"]
PREFIXES: dict[IdentityKind, str] = {"email": "email:", "phone": "phone:"}
DIGEST_BYTES = 32
# Below this many rows a helper process costs more (start-up, shipping the slice) than it saves.
PARALLEL_MIN_ROWS = 500_000

_HEX_PAIRS = np.array([f"{b:02x}".encode() for b in range(256)], dtype="S2").view(np.uint16)

T = TypeVar("T")
R = TypeVar("R")
X = TypeVar("X")


def identity_key(salt: bytes, kind: IdentityKind, normalized: str) -> str:
    """The hid of one normalized identifier (reference form; the bulk path must agree)."""
    return Keyer(salt).hex(PREFIXES[kind] + normalized)


def salt_fingerprint(salt: bytes) -> str:
    """A short public fingerprint so partners can confirm they hold the same salt without showing it.

    16 hex characters (64 bits) of a domain-separated SHA-256 of the salt. It is written into
    every upload manifest, and the gateway refuses a file whose fingerprint differs from the
    collaboration's. It reveals nothing usable: SHA-256 is one-way, and the input is a random
    256-bit secret, so there is no dictionary to try and no shortcut to the salt (or to any hid,
    which needs the salt as HMAC key). 64 bits make an accidental match of two random salts a
    1-in-2^64 event. The construction is pinned by a test vector in docs/guides/partner-workflow.md.
    """
    return sha256_hex(b"cleanroom-salt-fingerprint:" + salt)[:16]


def check_salt(salt: bytes) -> bytes:
    """Refuse a salt of the wrong length before any work is done (a short salt is guessable)."""
    if len(salt) != SECRET_BYTES:
        raise ConfigError("keys.invalid", f"the collaboration salt must be {SECRET_BYTES} bytes, got {len(salt)}")
    return salt


def digest_values(messages: Sequence[bytes], salt: bytes) -> bytes:
    """Concatenated raw HMAC-SHA256 digests of each message, in order (the hot loop: keep it bare)."""
    copy = HMAC(check_salt(salt), hashes.SHA256()).copy
    out: list[bytes] = []
    append = out.append
    for message in messages:
        h = copy()
        h.update(message)
        append(h.finalize())
    return b"".join(out)


def digests_to_hex(digests: bytes) -> pa.Array:
    """Turn concatenated 32-byte digests into a string array of 64-char lower-case hex, vectorized."""
    count = len(digests) // DIGEST_BYTES
    text = _HEX_PAIRS[np.frombuffer(digests, dtype=np.uint8)].tobytes()
    offsets = np.arange(0, (count + 1) * 2 * DIGEST_BYTES, 2 * DIGEST_BYTES, dtype=np.int64)
    arr = pa.LargeStringArray.from_buffers(count, pa.py_buffer(offsets.tobytes()), pa.py_buffer(text))
    return arr.cast(pa.string())


class WorkerPool:
    """Spreads slices of work over ``workers`` cores: the calling process plus helper processes.

    The calling process computes one slice itself while the helpers (spawned, so they inherit no
    locks held by pyarrow's threads) compute the others. Small inputs never leave the process.
    """

    def __init__(self, workers: int) -> None:
        self.workers = max(1, min(workers, os.cpu_count() or 1))
        self._executor: ProcessPoolExecutor | None = None

    def start(self) -> None:
        """Start the helper processes early so their start-up overlaps with reading CSV."""
        if self.workers > 1 and self._executor is None:
            ctx = multiprocessing.get_context("spawn")
            self._executor = ProcessPoolExecutor(max_workers=self.workers - 1, mp_context=ctx)
            for _ in range(self.workers - 1):
                self._executor.submit(_warm_up)

    def run(self, local: Callable[[], T], remote: Callable[..., R], items: Sequence[X], *args: object) -> tuple[T, list[R]]:
        """``(local(), [remote(item, *args) for item in items])``, the remote calls on helpers meanwhile.

        If the helpers cannot run (a helper crashed, or ``__main__`` cannot be re-imported by a
        spawned process, as with ``python - < script``), the remote calls run here instead: the
        result is the same, only slower. An exception raised *by* ``remote`` is not caught.
        """
        futures = self._submit(remote, items, args) if items else []
        first = local()
        if futures is not None:
            try:
                return first, [f.result() for f in futures]
            except BrokenProcessPool:
                self._give_up()
        return first, [remote(item, *args) for item in items]

    def _submit(self, remote: Callable[..., R], items: Sequence[X], args: tuple[object, ...]) -> list[Future[R]] | None:
        """Hand the items to the helpers; None when they are unusable (the caller then runs them)."""
        self.start()
        if self._executor is None:
            raise InternalError("internal.invariant", "WorkerPool.run() got remote work but has no helper processes (workers=1)")
        try:
            return [self._executor.submit(remote, item, *args) for item in items]
        except BrokenProcessPool:
            self._give_up()
            return None

    def _give_up(self) -> None:
        """Stop using helpers for the rest of this run; everything runs in this process."""
        self.close()
        self.workers = 1

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _warm_up() -> None:
    """Import the heavy modules in a fresh helper before real work arrives."""
    import cleanroom.prepare.identity  # noqa: F401


def key_distinct(salt: bytes, kind: IdentityKind, values: pa.Array) -> pa.Array:
    """Hex hids for distinct normalized identifiers (no nulls), aligned with ``values``."""
    prefixed = pc.binary_join_element_wise(PREFIXES[kind], values.cast(pa.string()), "").cast(pa.binary())
    return digests_to_hex(digest_values(prefixed.to_pylist(), salt))


__all__ = [
    "PARALLEL_MIN_ROWS",
    "PREFIXES",
    "IdentityKind",
    "WorkerPool",
    "check_salt",
    "digest_values",
    "digests_to_hex",
    "identity_key",
    "key_distinct",
    "salt_fingerprint",
]
