"""Each person's way through the funnel: when (if ever) they reach each stage.

Conversion is deliberately uneven, because a funnel whose cells all convert alike would test
nothing: models, channels, regions and dealers carry their own factors, most configurator
visitors never talk to a dealer, walk-in customers skip the website, a few buy on the spot, and
finance applications are partly declined. A stage is observed only if it happens before the end
of the data period, so journeys that start late are cut off as in a real export.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cleanroom.synth.calendar import Period, add_months
from cleanroom.synth.people import (
    SEGMENT_WALK_IN,
    SEGMENT_WEB,
    TERM_WEIGHTS_BY_PRODUCT,
    TERMS,
    Population,
)
from cleanroom.synth.sampling import DAY, choice, choice_by_row, seconds_between

NONE = -1
HOUR = 3600
P_LEAD_FROM_WEB = 0.14
F_MODEL_LEAD = np.array([1.10, 1.00, 0.90, 1.25, 0.70, 0.85])
F_CHANNEL_LEAD = np.array([1.30, 0.70, 0.50, 1.40, 1.50, 0.60])
F_REGION_LEAD = np.array([1.00, 1.10, 0.80, 1.00, 1.20])
F_MODEL_DRIVE = np.array([1.00, 1.05, 0.95, 1.10, 1.20, 0.90])
F_DEALER_DRIVE = np.array([1.15, 1.00, 0.90, 1.10, 0.80, 0.95, 1.20, 1.00, 0.85, 0.90])
F_MODEL_SALE = np.array([1.15, 1.00, 0.90, 1.05, 0.60, 0.80])
F_DEALER_SALE = np.array([1.10, 1.00, 0.85, 1.20, 0.75, 0.95, 1.15, 1.00, 0.80, 0.90])
PRICE_BAND_BY_MODEL = np.array(
    [
        [0.55, 0.35, 0.08, 0.02],
        [0.20, 0.50, 0.25, 0.05],
        [0.10, 0.40, 0.40, 0.10],
        [0.05, 0.30, 0.45, 0.20],
        [0.10, 0.35, 0.40, 0.15],
        [0.00, 0.10, 0.35, 0.55],
    ]
)
PRICE_LIMITS = np.array([[21_000, 29_990], [30_000, 44_990], [45_000, 59_990], [60_000, 95_000]])
AMOUNT_EDGES = np.array([20_000, 35_000, 50_000])
PRODUCT_WEIGHTS = (0.50, 0.33, 0.17)


@dataclass(frozen=True)
class Journey:
    """Per-person stage times in seconds (``NONE`` where the stage is not reached) and deal terms."""

    lead: np.ndarray
    drive: np.ndarray
    sale: np.ndarray
    app: np.ndarray
    app2: np.ndarray
    approved: np.ndarray  # decision of the first application
    two_groups: np.ndarray
    sale_model: np.ndarray
    sale_dealer: np.ndarray
    price_band: np.ndarray
    price_eur: np.ndarray
    product: np.ndarray
    amount_band: np.ndarray
    amount_eur: np.ndarray
    contract_start: np.ndarray  # day number, NONE where no new contract
    contract_end: np.ndarray


def observed(times: np.ndarray, period: Period) -> np.ndarray:
    """Times after the end of the data period are not in any export: they become NONE."""
    return np.where((times >= 0) & (times < period.end_exclusive), times, NONE)


def build_journeys(rng: np.random.Generator, pop: Population, period: Period) -> Journey:
    n = pop.n
    lead = _leads(rng, pop, period)
    drive = _drives(rng, pop, lead, period)
    sale = _sales(rng, pop, lead, drive, period)
    sale_model = np.where((pop.model2 >= 0) & (rng.random(n) < 0.3), pop.model2, pop.model1).astype(np.int16)
    two_groups = (lead >= 0) & (rng.random(n) < 0.03)
    sale_dealer = np.where(two_groups & (rng.random(n) < 0.35), pop.other_dealer, pop.dealer).astype(np.int16)
    price_band, price_eur, amount_band, amount_eur = _prices(rng, sale_model)
    app, app2, approved = _applications(rng, pop, lead, drive, sale, period)
    product = choice(rng, PRODUCT_WEIGHTS, n)
    start, end = _contracts(rng, sale, approved | (app2 >= 0), app, product, period)
    return Journey(lead, drive, sale, app, app2, approved, two_groups, sale_model, sale_dealer,
                   price_band, price_eur, product, amount_band, amount_eur, start, end)


def _leads(rng: np.random.Generator, pop: Population, period: Period) -> np.ndarray:
    n = pop.n
    p_web = P_LEAD_FROM_WEB * F_MODEL_LEAD[pop.model1] * F_CHANNEL_LEAD[pop.channel1] * F_REGION_LEAD[pop.region]
    p_web = p_web * np.where(pop.returning, 1.8, 1.0)
    from_web = (pop.segment == SEGMENT_WEB) & (rng.random(n) < p_web)
    walk_in = (pop.segment == SEGMENT_WALK_IN) & (rng.random(n) < 0.85)
    later = pop.t0 + seconds_between(rng, DAY, 25 * DAY, n)
    return observed(np.where(from_web, later, np.where(walk_in, pop.t0, NONE)), period)


def _drives(rng: np.random.Generator, pop: Population, lead: np.ndarray, period: Period) -> np.ndarray:
    n = pop.n
    p = 0.55 * F_DEALER_DRIVE[pop.dealer] * F_MODEL_DRIVE[pop.model1]
    takes = (lead >= 0) & (rng.random(n) < p)
    return observed(np.where(takes, lead + seconds_between(rng, DAY, 14 * DAY, n), NONE), period)


def _sales(rng: np.random.Generator, pop: Population, lead: np.ndarray, drive: np.ndarray, period: Period) -> np.ndarray:
    n = pop.n
    p = np.where(drive >= 0, 0.5 * F_DEALER_SALE[pop.dealer] * F_MODEL_SALE[pop.model1], np.where(lead >= 0, 0.07, 0.0))
    buys = rng.random(n) < p
    after = np.where(drive >= 0, drive + seconds_between(rng, DAY, 21 * DAY, n), lead + seconds_between(rng, 2 * DAY, 30 * DAY, n))
    on_the_spot = (pop.segment == SEGMENT_WALK_IN) & (lead < 0) & (rng.random(n) < 0.5)
    sale = np.where(buys, after, np.where(on_the_spot, pop.t0, NONE))
    return observed(sale, period)


def _prices(rng: np.random.Generator, model: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Price band by model, a price inside it, and the financed amount (55-95 % of the price)."""
    n = len(model)
    band = choice_by_row(rng, PRICE_BAND_BY_MODEL, model.astype(np.int64))
    low, high = PRICE_LIMITS[band, 0], PRICE_LIMITS[band, 1]
    price = seconds_between(rng, low // 10, high // 10 + 1, n) * 10
    amount = (price * (0.55 + 0.40 * rng.random(n)) / 10).astype(np.int64) * 10
    return band, price.astype(np.int64), np.searchsorted(AMOUNT_EDGES, amount, side="right").astype(np.int16), amount


def _applications(
    rng: np.random.Generator, pop: Population, lead: np.ndarray, drive: np.ndarray, sale: np.ndarray, period: Period
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """First application (buyers before the sale, some test-drivers without buying) and a retry."""
    n = pop.n
    buyer = sale >= 0
    prev = np.where(drive >= 0, drive, np.where(lead >= 0, lead, sale - 3 * DAY))
    before_sale = np.clip(sale - seconds_between(rng, DAY // 2, 6 * DAY, n), prev + HOUR, sale - 600)
    browsing = drive + seconds_between(rng, DAY, 10 * DAY, n)
    applies = np.where(buyer, rng.random(n) < 0.62, (drive >= 0) & (rng.random(n) < 0.12))
    app = observed(np.where(applies, np.where(buyer, before_sale, browsing), NONE), period)
    approved = rng.random(n) < np.where(buyer, 0.85, 0.40)
    retry = buyer & (app >= 0) & ~approved & (rng.random(n) < 0.4)
    app2 = np.where(retry, app + ((sale - app) * (0.2 + 0.6 * rng.random(n))).astype(np.int64), NONE)
    return app, app2, approved


def _contracts(
    rng: np.random.Generator, sale: np.ndarray, approved: np.ndarray, app: np.ndarray, product: np.ndarray, period: Period
) -> tuple[np.ndarray, np.ndarray]:
    """New contracts start 0-14 days after the sale (a few 31-40 days: not 'financed')."""
    n = len(sale)
    signs = (sale >= 0) & (app >= 0) & approved & (rng.random(n) < 0.92)
    delay = np.where(rng.random(n) < 0.95, seconds_between(rng, 0, 15, n), seconds_between(rng, 31, 41, n))
    start = np.where(signs, sale // DAY + delay, NONE)
    start = np.where(start * DAY < period.end_exclusive, start, NONE)
    term = TERMS[choice_by_row(rng, TERM_WEIGHTS_BY_PRODUCT, product.astype(np.int64))]
    end = np.where(start >= 0, add_months(np.maximum(start, 0), term), NONE)
    return start, end
