"""Admission control: slots, a bounded queue, then gateway.busy, decided before any charge."""

from __future__ import annotations

import threading

import pytest

from cleanroom.errors import CleanroomError
from cleanroom.gateway.admission import Admission


def test_slots_then_queue_then_busy() -> None:
    gate = Admission(in_flight=2, queued=1, max_wait_s=30)
    gate.acquire()
    gate.acquire()
    assert gate.load() == (2, 0)
    released = threading.Event()
    waiter_done = threading.Event()

    def waiter() -> None:
        gate.acquire()  # queued until a slot frees
        released.wait(10)
        gate.release()
        waiter_done.set()

    thread = threading.Thread(target=waiter)
    thread.start()
    while gate.load()[1] != 1:
        threading.Event().wait(0.01)
    with pytest.raises(CleanroomError) as err:
        gate.acquire()  # two running, one waiting: full
    assert err.value.code == "gateway.busy" and err.value.status == 503 and err.value.details["retry_after_s"] > 0
    gate.release()  # the waiter gets this slot
    while gate.load() != (2, 0):
        threading.Event().wait(0.01)
    released.set()
    thread.join(10)
    assert waiter_done.is_set()
    gate.release()
    assert gate.load() == (0, 0)
    with gate.slot():
        assert gate.load() == (1, 0)
    assert gate.load() == (0, 0)


def test_a_wait_that_outlasts_max_wait_is_busy() -> None:
    gate = Admission(in_flight=1, queued=4, max_wait_s=0.05)
    gate.acquire()
    with pytest.raises(CleanroomError) as err:
        gate.acquire()
    assert err.value.code == "gateway.busy"
    assert gate.load() == (1, 0)
    gate.release()
