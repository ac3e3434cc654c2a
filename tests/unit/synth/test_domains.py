"""The data period, its months and the lifecycle window follow the end date."""

from __future__ import annotations

from datetime import date

from cleanroom.synth.domains import DEALER_IDS, DOMAINS, lifecycle_window, months, period_start


def test_default_period() -> None:
    assert months() == tuple(f"2025-{m}" for m in ("11", "12")) + tuple(f"2026-{m:02d}" for m in range(1, 11))
    assert period_start() == date(2025, 11, 1)
    assert lifecycle_window() == (date(2026, 11, 1), date(2027, 1, 31))
    assert DOMAINS["month"] == months()


def test_other_end_dates() -> None:
    assert months(date(2026, 12, 15))[0] == "2026-01" and months(date(2026, 12, 15))[-1] == "2026-12"
    assert lifecycle_window(date(2026, 12, 15)) == (date(2027, 1, 1), date(2027, 3, 31))
    assert lifecycle_window(date(2027, 1, 31)) == (date(2027, 2, 1), date(2027, 4, 30))


def test_dealer_ids() -> None:
    assert DEALER_IDS == ("NS-01", "NS-02", "NS-03", "NS-04", "NS-05", "NS-06", "LA-01", "LA-02", "LA-03", "LA-04")
