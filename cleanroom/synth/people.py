"""The synthetic population: who each customer is before anything happens to them.

Per-person attributes decide everything downstream, so the skew lives here: regions differ in
size, a few models take most of the interest, each dealer group is strong in its own regions,
and one customer in ten carries an older finance contract (started 2022-2025) whose end may fall
in the quarter after the data period, which is what the lifecycle template asks about. Some of
those customers come back into the funnel; the rest exist only at the finance partner.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from cleanroom.synth.calendar import Period, add_months, day_number
from cleanroom.synth.domains import DEALERS
from cleanroom.synth.sampling import DAY, choice, choice_by_row, pick_other, seconds_between

REGION_WEIGHTS = (0.30, 0.25, 0.15, 0.20, 0.10)
MODEL_WEIGHTS = (0.28, 0.22, 0.18, 0.14, 0.11, 0.07)
CHANNEL_WEIGHTS = (0.32, 0.20, 0.10, 0.08, 0.20, 0.10)
NORTHSIDE_SHARE_BY_REGION = np.array([0.78, 0.30, 0.72, 0.28, 0.50])
NORTHSIDE_DEALER_WEIGHTS = (0.25, 0.20, 0.18, 0.15, 0.12, 0.10)
LAKESIDE_DEALER_WEIGHTS = (0.35, 0.30, 0.20, 0.15)
# Seasonality of journey starts by calendar month (Jan..Dec): spring peak, August and December dips.
SEASON = np.array([0.80, 0.85, 1.20, 1.25, 1.15, 1.00, 0.90, 0.75, 1.10, 1.05, 0.95, 0.70])

SEGMENT_WEB, SEGMENT_WALK_IN, SEGMENT_TOUCH_ONLY, SEGMENT_NONE = 0, 1, 2, 3

OLD_CONTRACT_SHARE = 0.10
OLD_IN_WINDOW_SHARE = 0.35
OLD_PRODUCT_WEIGHTS = (0.35, 0.45, 0.20)
TERMS = np.array([24, 36, 48])
TERM_WEIGHTS_BY_PRODUCT = np.array([[0.10, 0.40, 0.50], [0.45, 0.45, 0.10], [0.00, 0.60, 0.40]])
AMOUNT_BAND_WEIGHTS = (0.20, 0.35, 0.30, 0.15)
AMOUNT_LIMITS = np.array([[8_000, 19_990], [20_000, 34_990], [35_000, 49_990], [50_000, 80_000]])
FIRST_OLD_START = day_number(date(2022, 1, 1))


@dataclass(frozen=True)
class OldContracts:
    """Contracts signed before the data period, one per owning person (``pid``)."""

    pid: np.ndarray
    start_day: np.ndarray
    end_day: np.ndarray
    product: np.ndarray
    model: np.ndarray
    amount_band: np.ndarray
    amount_eur: np.ndarray


@dataclass(frozen=True)
class Population:
    """Per-person attributes; index = internal person id (never written anywhere)."""

    n: int
    region: np.ndarray
    model1: np.ndarray
    model2: np.ndarray  # -1: the person looks at one model only
    channel1: np.ndarray
    channel2: np.ndarray  # -1: one channel only
    group: np.ndarray  # 0 northside-dealers, 1 lakeside-autos
    dealer: np.ndarray  # index into DEALER_IDS
    other_dealer: np.ndarray  # a dealer of the other group, for the rare two-group shoppers
    segment: np.ndarray
    returning: np.ndarray
    t0: np.ndarray  # journey start (seconds); meaningless where segment == SEGMENT_NONE
    old: OldContracts


def build_population(rng: np.random.Generator, n: int, period: Period) -> Population:
    """Draw every person's attributes, old contracts and journey start."""
    region = choice(rng, REGION_WEIGHTS, n)
    model1 = choice(rng, MODEL_WEIGHTS, n)
    model2 = np.where(rng.random(n) < 0.30, pick_other(rng, model1, MODEL_WEIGHTS), -1).astype(np.int16)
    channel1 = choice(rng, CHANNEL_WEIGHTS, n)
    channel2 = np.where(rng.random(n) < 0.35, pick_other(rng, channel1, CHANNEL_WEIGHTS), -1).astype(np.int16)
    group, dealer, other = _dealers(rng, region)
    old = _old_contracts(rng, n, period, model1, model2)
    segment, returning, t0 = _journey_starts(rng, n, period, old)
    return Population(n, region, model1, model2, channel1, channel2, group, dealer, other, segment, returning, t0, old)


def _dealers(rng: np.random.Generator, region: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each person's home dealer group (skewed by region), home dealer, and a dealer of the other group."""
    n = len(region)
    group = (rng.random(n) >= NORTHSIDE_SHARE_BY_REGION[region]).astype(np.int16)
    ns = choice(rng, NORTHSIDE_DEALER_WEIGHTS, n)
    la = choice(rng, LAKESIDE_DEALER_WEIGHTS, n) + len(DEALERS["northside-dealers"])
    dealer = np.where(group == 0, ns, la).astype(np.int16)
    other = np.where(group == 0, la, ns).astype(np.int16)
    return group, dealer, other


def _old_contracts(rng: np.random.Generator, n: int, period: Period, model1: np.ndarray, model2: np.ndarray) -> OldContracts:
    """Contracts from 2022-2025 still running in the period; a third are drawn to end in the lifecycle window.

    Contracts that ended before the period are not in finance's export of its running book.
    """
    pid = np.flatnonzero(rng.random(n) < OLD_CONTRACT_SHARE)
    k = len(pid)
    product = choice(rng, OLD_PRODUCT_WEIGHTS, k)
    term = TERMS[choice_by_row(rng, TERM_WEIGHTS_BY_PRODUCT, product.astype(np.int64))]
    in_window = rng.random(k) < OLD_IN_WINDOW_SHARE
    start_free = _day_of_month_between(rng, FIRST_OLD_START, period.start // DAY - 1, k)
    end_free = add_months(start_free, term)
    end_window = _day_of_month_between(rng, period.window[0], period.window[1], k)
    end_day = np.where(in_window, end_window, end_free)
    start_day = np.where(in_window, add_months(end_window, -term), start_free)
    use_second = (model2[pid] >= 0) & (rng.random(k) < 0.4)
    model = np.where(use_second, model2[pid], model1[pid]).astype(np.int16)
    band = choice(rng, AMOUNT_BAND_WEIGHTS, k)
    amount = amount_in_band(rng, band)
    keep = end_day >= period.start // DAY
    return OldContracts(pid[keep], start_day[keep], end_day[keep], product[keep], model[keep], band[keep], amount[keep])


def _day_of_month_between(rng: np.random.Generator, first: int, last: int, k: int) -> np.ndarray:
    """Random dates in ``[first, last]`` (day numbers) whose day of month is at most 28."""
    days = seconds_between(rng, first, last + 1, k)
    dom = (days.astype("datetime64[D]") - days.astype("datetime64[D]").astype("datetime64[M]")).astype(np.int64)
    return days - np.maximum(dom - 27, 0)


def amount_in_band(rng: np.random.Generator, band: np.ndarray) -> np.ndarray:
    """A financed amount in whole euros (multiples of 10) inside each amount band."""
    low, high = AMOUNT_LIMITS[band, 0], AMOUNT_LIMITS[band, 1]
    return (seconds_between(rng, low // 10, high // 10 + 1, len(band)) * 10).astype(np.int64)


def _journey_starts(rng: np.random.Generator, n: int, period: Period, old: OldContracts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Segment and start time of each person's journey in the period (or SEGMENT_NONE)."""
    t0 = _seasonal_times(rng, n, period)
    segment = choice(rng, (0.80, 0.12, 0.08), n)
    returning = np.zeros(n, dtype=bool)
    returning[old.pid] = True
    ending_soon = (old.end_day >= period.window[0] - 60) & (old.end_day <= period.window[1] + 30)
    comes_back = rng.random(len(old.pid)) < np.where(ending_soon, 0.55, 0.20)
    back_t0 = old.end_day * DAY - seconds_between(rng, 20 * DAY, 170 * DAY, len(old.pid))
    back_t0 = np.where(ending_soon, back_t0, t0[old.pid])
    inside = (back_t0 >= period.start) & (back_t0 < period.end_exclusive)
    t0[old.pid] = back_t0
    segment[old.pid] = np.where(comes_back & inside, np.where(rng.random(len(old.pid)) < 0.7, SEGMENT_WEB, SEGMENT_WALK_IN), SEGMENT_NONE)
    return segment, returning, t0


def _seasonal_times(rng: np.random.Generator, n: int, period: Period) -> np.ndarray:
    """Journey start times spread over the period with a seasonal month profile."""
    edges = period.month_starts
    weights = SEASON[period.calendar_months - 1] * np.diff(edges) / DAY
    month = choice(rng, weights, n).astype(np.int64)
    return seconds_between(rng, edges[month], edges[month + 1], n)
