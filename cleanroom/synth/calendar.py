"""The generator's clock: whole seconds and days since 1970-01-01 (naive, as partners export them).

Every time the generator handles is an int64 of seconds (timestamps) or days (dates), so date
arithmetic stays vectorized. :class:`Period` fixes the edges every module must respect: events
happen inside ``[start, end_exclusive)`` and consent changes strictly before ``consent_limit``
(midnight starting the end date), so any query made after the data period sees the same consent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from cleanroom.synth.domains import lifecycle_window, months, period_start
from cleanroom.synth.sampling import DAY

EPOCH = date(1970, 1, 1)


def day_number(d: date) -> int:
    return (d - EPOCH).days


@dataclass(frozen=True)
class Period:
    """The data period and the derived edges, in seconds and days."""

    end_date: date
    start: int
    end_exclusive: int
    consent_limit: int
    month_starts: np.ndarray
    window: tuple[int, int]

    @classmethod
    def of(cls, end_date: date) -> Period:
        first = day_number(period_start(end_date))
        starts = np.array([day_number(date.fromisoformat(f"{m}-01")) for m in months(end_date)], dtype=np.int64)
        ws, we = lifecycle_window(end_date)
        return cls(
            end_date=end_date,
            start=first * DAY,
            end_exclusive=(day_number(end_date) + 1) * DAY,
            consent_limit=day_number(end_date) * DAY,
            month_starts=np.append(starts, day_number(end_date) + 1) * DAY,
            window=(day_number(ws), day_number(we)),
        )

    @property
    def calendar_months(self) -> np.ndarray:
        """Calendar month (1..12) of each of the twelve period months."""
        return np.array([int(m[5:]) for m in months(self.end_date)], dtype=np.int64)


def month_of(seconds: np.ndarray) -> np.ndarray:
    """Calendar month 1..12 of each timestamp."""
    m = seconds.astype("datetime64[s]").astype("datetime64[M]").astype(np.int64)
    return m % 12 + 1


def add_months(days: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Add whole months to dates (as day numbers), clamping the day to the target month's length."""
    d = days.astype("datetime64[D]")
    first = d.astype("datetime64[M]")
    offset = (d - first.astype("datetime64[D]")).astype(np.int64)
    target = first + count.astype("timedelta64[M]")
    length = ((target + 1).astype("datetime64[D]") - target.astype("datetime64[D]")).astype(np.int64)
    return target.astype("datetime64[D]").astype(np.int64) + np.minimum(offset, length - 1)
