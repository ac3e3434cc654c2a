"""Admission control: a bounded number of uncached releases in flight, a bounded queue, then ``gateway.busy``.

Why: with two cores, statements that share the engine's threads all slow down together; under a
burst, latency grew until the 30 s watchdog fired on queries whose epsilon was already spent (29
of 32 at 10M with 16 clients). So the gateway decides BEFORE the charge whether a release may
run: at most ``in_flight`` execute at once, at most ``queued`` wait for a slot (waiting never
counts against the execution timeout: the watchdog starts when the statement does), and any
further request is refused at once with 503 ``gateway.busy`` and ``Retry-After``: nothing
charged, retry later. Cached answers never take a slot (they do no engine work), so they never
wait behind uncached ones.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from cleanroom.errors import QueryError

RETRY_AFTER_S = 2


class Admission:
    """Slots for uncached releases; thread-safe (the release path runs in the server's thread pool)."""

    def __init__(self, in_flight: int, queued: int, *, max_wait_s: float = 120.0) -> None:
        self.in_flight, self.queued, self.max_wait_s = in_flight, queued, max_wait_s
        self._slots = threading.BoundedSemaphore(in_flight)
        self._lock = threading.Lock()
        self._waiting = 0
        self._running = 0

    def acquire(self) -> None:
        """Take a slot; wait in the queue when all are taken; ``gateway.busy`` when the queue is full too.

        Every successful ``acquire`` must be followed by exactly one :meth:`release`.
        """
        if not self._slots.acquire(blocking=False):
            self._enter_queue()
            try:
                acquired = self._slots.acquire(timeout=self.max_wait_s)
            finally:
                with self._lock:
                    self._waiting -= 1
            if not acquired:
                raise self._busy(f"waited {self.max_wait_s:g} s for one of the {self.in_flight} query slots")
        with self._lock:
            self._running += 1

    def release(self) -> None:
        with self._lock:
            self._running -= 1
        self._slots.release()

    @contextmanager
    def slot(self) -> Iterator[None]:
        """``acquire`` ... ``release`` as a block."""
        self.acquire()
        try:
            yield
        finally:
            self.release()

    def _enter_queue(self) -> None:
        with self._lock:
            if self._waiting >= self.queued:
                raise self._busy(f"{self.in_flight} queries are running and {self._waiting} are waiting (the most this gateway admits)")
            self._waiting += 1

    def _busy(self, why: str) -> QueryError:
        return QueryError("gateway.busy", f"the gateway is busy: {why}; nothing was charged, retry in {RETRY_AFTER_S} s",
                          retry_after_s=RETRY_AFTER_S)

    def load(self) -> tuple[int, int]:
        """(running, waiting) now."""
        with self._lock:
            return self._running, self._waiting


UNLIMITED = Admission(in_flight=1 << 16, queued=0)

__all__ = ["RETRY_AFTER_S", "UNLIMITED", "Admission"]
