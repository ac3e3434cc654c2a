"""Campaign touches: who saw which campaign on which channel, and when.

Campaigns differ in volume (an always-on brand campaign dwarfs the fleet offer), in season
(spring launch in spring, winter service in winter) and in how often they reach people shortly
before a purchase (the EV test week and the loyalty mailing convert; display-heavy always-on
mostly reaches browsers). Some buyers are never touched, so attribution has unattributed sales.
Touch times are strictly increasing per person, which keeps the attribution order unambiguous.
"""

from __future__ import annotations

import numpy as np

from cleanroom.synth.calendar import Period, month_of
from cleanroom.synth.domains import CAMPAIGNS, CHANNELS
from cleanroom.synth.frame import Coded, Rows
from cleanroom.synth.journeys import Journey
from cleanroom.synth.people import SEGMENT_NONE, Population
from cleanroom.synth.sampling import DAY, choice_by_row, explode, geometric_count, seconds_between

# Touch probability by segment (web, walk-in, touch-only, none) and for buyers.
P_TOUCHED = np.array([0.60, 0.35, 1.0, 0.0])
P_TOUCHED_BUYER = 0.85
P_BUYER_TOUCH_IN_LOOKBACK = 0.7
# Campaign weights per calendar month (rows Jan..Dec) before the returning/buyer adjustments.
_SEASONS = {
    "spring_launch": ((3, 4, 5), 2.5, 0.10),
    "summer_drive": ((6, 7, 8), 2.0, 0.10),
    "autumn_ev": ((9, 10, 11), 2.2, 0.10),
    "winter_service": ((12, 1, 2), 1.6, 0.15),
    "loyalty_upgrade": ((), 0.0, 0.20),
    "fleet_offer": ((), 0.0, 0.35),
    "ev_test_week": ((4, 10), 1.8, 0.05),
    "brand_always_on": ((), 0.0, 3.00),
}
LOYALTY_FOR_RETURNING = 3.0
BUYER_WINDOW_FACTOR = np.array([1.2, 1.1, 1.4, 0.8, 1.5, 0.6, 2.2, 0.7])
CHANNEL_BY_CAMPAIGN = np.array(
    [
        [0.30, 0.25, 0.15, 0.05, 0.00, 0.25],
        [0.20, 0.35, 0.20, 0.05, 0.00, 0.20],
        [0.25, 0.30, 0.10, 0.05, 0.00, 0.30],
        [0.15, 0.05, 0.10, 0.65, 0.00, 0.05],
        [0.05, 0.05, 0.05, 0.80, 0.00, 0.05],
        [0.40, 0.05, 0.20, 0.30, 0.00, 0.05],
        [0.20, 0.40, 0.10, 0.10, 0.00, 0.20],
        [0.45, 0.15, 0.30, 0.00, 0.05, 0.05],
    ]
)


def campaign_weights() -> np.ndarray:
    """Weights indexed by ``(calendar_month - 1) * 4 + returning * 2 + in_buyer_window``."""
    table = np.zeros((48, len(CAMPAIGNS)))
    for month in range(1, 13):
        base = np.array([peak if month in months else off for months, peak, off in _SEASONS.values()])
        for returning in (0, 1):
            row = base.copy()
            if returning:
                row[CAMPAIGNS.index("loyalty_upgrade")] = LOYALTY_FOR_RETURNING
            table[(month - 1) * 4 + returning * 2] = row
            table[(month - 1) * 4 + returning * 2 + 1] = row * BUYER_WINDOW_FACTOR
    return table


def campaign_touches(rng: np.random.Generator, pop: Population, jr: Journey, period: Period) -> Rows:
    buyer = jr.sale >= 0
    p = np.where(buyer, P_TOUCHED_BUYER, P_TOUCHED[pop.segment])
    touched = np.flatnonzero((pop.segment != SEGMENT_NONE) & (rng.random(pop.n) < p))
    owner, pos = explode(geometric_count(rng, 0.33, 15, len(touched)))
    pid = touched[owner]
    t = _touch_times(rng, pop, jr, pid, pos)
    in_window = buyer[pid] & (t <= jr.sale[pid]) & (t >= jr.sale[pid] - 30 * DAY)
    key = (month_of(t) - 1) * 4 + pop.returning[pid] * 2 + in_window
    campaign = choice_by_row(rng, campaign_weights(), key.astype(np.int64))
    channel = choice_by_row(rng, CHANNEL_BY_CAMPAIGN, campaign.astype(np.int64))
    rows = Rows(pid, {"touched_at": t, "campaign": Coded(campaign, CAMPAIGNS), "channel": Coded(channel, CHANNELS)})
    keep = (t >= period.start) & (t < period.end_exclusive)
    return rows.take(np.flatnonzero(keep))


def _touch_times(rng: np.random.Generator, pop: Population, jr: Journey, pid: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """From 20 days before the journey to the sale (or 45 days in); buyers' touches cluster in the month before the sale.

    Times are strictly increasing per person.
    """
    buyer = jr.sale[pid] >= 0
    late = buyer & (rng.random(len(pid)) < P_BUYER_TOUCH_IN_LOOKBACK)
    low = np.where(late, jr.sale[pid] - 30 * DAY, pop.t0[pid] - 20 * DAY)
    high = np.where(buyer, jr.sale[pid], pop.t0[pid] + 45 * DAY)
    t = seconds_between(rng, low, high, len(pid))
    # pid arrives grouped and pos counts 0.. within each group, so sorting by (pid, t) and adding
    # pos keeps every row with its owner and makes the times strictly increasing per person.
    return t[np.argsort(pid * (1 << 32) + (t - t.min() if len(t) else t), kind="stable")] + pos
