"""pad_to_quantum: an uncached release answers at a whole multiple of the quantum (a fake clock: no real timing)."""

from __future__ import annotations

import pytest

from cleanroom.gateway.release import pad_to_quantum


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.mark.parametrize(("elapsed", "padded"), [(0.0, 0.05), (0.029, 0.05), (0.05, 0.05), (0.066, 0.1), (0.1499, 0.15), (1.234, 1.25)])
def test_response_time_is_padded_to_the_next_quantum(elapsed: float, padded: float) -> None:
    clock = FakeClock(100.0 + elapsed)
    assert pad_to_quantum(100.0, 0.05, clock=clock, sleep=clock.sleep) == pytest.approx(padded)
    assert clock.now - 100.0 == pytest.approx(padded)


def test_two_releases_within_one_quantum_are_indistinguishable() -> None:
    """29 ms and 45 ms (one person's extra rows) both answer at 50 ms."""
    ends = []
    for elapsed in (0.029, 0.045):
        clock = FakeClock(elapsed)
        pad_to_quantum(0.0, 0.05, clock=clock, sleep=clock.sleep)
        ends.append(round(clock.now, 9))
    assert ends[0] == ends[1] == 0.05


def test_zero_quantum_is_off() -> None:
    clock = FakeClock(0.07)
    assert pad_to_quantum(0.0, 0.0, clock=clock, sleep=clock.sleep) == pytest.approx(0.07) and clock.slept == []
