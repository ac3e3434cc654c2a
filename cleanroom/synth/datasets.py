"""Rows of the brand's, dealers' and finance partner's business datasets, from the journeys.

Column names here are exactly the business columns the partner files declare (``hid`` is added
later by ``prepare``). Several rows per person happen on purpose (repeat visits, a second lead, a
retried application) but stay far below 50 per person and dataset, and a person's rows of one
stage span at most two models, two channels, two dealer groups and three months, so no person
ever needs more than the engine's four groups per stage.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from cleanroom.synth.calendar import Period
from cleanroom.synth.domains import (
    AMOUNT_BANDS,
    CHANNELS,
    DEALER_GROUPS,
    DEALER_IDS,
    DEALERS,
    DECISIONS,
    LEAD_SOURCES,
    MODELS,
    PRICE_BANDS,
    PRODUCTS,
    REGIONS,
)
from cleanroom.synth.frame import Coded, Column, Rows
from cleanroom.synth.journeys import NONE, Journey
from cleanroom.synth.people import SEGMENT_WEB, Population
from cleanroom.synth.sampling import DAY, choice, choice_by_row, explode, geometric_count, seconds_between

SOURCE_BY_SEGMENT = np.array([[0.70, 0.05, 0.17, 0.08], [0.05, 0.65, 0.20, 0.10], [0.25, 0.25, 0.25, 0.25], [0.25, 0.25, 0.25, 0.25]])
PHONE_SOURCE = LEAD_SOURCES.index("phone")
NORTHSIDE_DEALERS = len(DEALERS["northside-dealers"])
SALESPEOPLE_PER_DEALER = 8


def _model_of(rng: np.random.Generator, pop: Population, pid: np.ndarray, second_share: float = 0.3) -> Coded:
    """The model a row is about: the person's first model, sometimes their second."""
    second = (pop.model2[pid] >= 0) & (rng.random(len(pid)) < second_share)
    return Coded(np.where(second, pop.model2[pid], pop.model1[pid]), MODELS)


def _keep_observed(rows: Rows, times: np.ndarray, period: Period) -> Rows:
    return rows.take(np.flatnonzero((times >= period.start) & (times < period.end_exclusive)))


def web_sessions(rng: np.random.Generator, pop: Population, jr: Journey, period: Period) -> Rows:
    """Configurator visits: 1-12 per web-first person over 45 days, on at most two channels."""
    visitors = np.flatnonzero(pop.segment == SEGMENT_WEB)
    owner, pos = explode(geometric_count(rng, 0.45, 12, len(visitors)))
    pid = visitors[owner]
    k = len(pid)
    t = pop.t0[pid] + np.where(pos == 0, 0, seconds_between(rng, 0, 45 * DAY, k))
    second = (pop.channel2[pid] >= 0) & (rng.random(k) < 0.3)
    channel = np.where(second, pop.channel2[pid], pop.channel1[pid])
    completed = rng.random(k) < np.where(jr.lead[pid] >= 0, 0.65, 0.30)
    cols = {
        "session_at": t,
        "model": _model_of(rng, pop, pid),
        "channel": Coded(channel, CHANNELS),
        "region": Coded(pop.region[pid], REGIONS),
        "configurator_completed": completed,
    }
    return _keep_observed(Rows(pid, cols), t, period)


def _dealer_rows(pid: np.ndarray, dealer: np.ndarray, extra: dict[str, Column]) -> Rows:
    return Rows(pid, {"dealer_id": Coded(dealer, DEALER_IDS), **extra})


def _split_by_group(rows: Rows, period: Period, time_column: str) -> dict[str, Rows]:
    """Dealer rows go to the dealer group that owns the row's dealer (and must fall in the period)."""
    dealer = rows.columns["dealer_id"]
    times = rows.columns[time_column]
    assert isinstance(dealer, Coded) and isinstance(times, np.ndarray)
    group = (dealer.codes >= NORTHSIDE_DEALERS).astype(np.int64)
    return {gid: _keep_observed(rows.take(np.flatnonzero(group == g)), times[group == g], period) for g, gid in enumerate(DEALER_GROUPS)}


def _visits(rng: np.random.Generator, base: np.ndarray, pop: Population, jr: Journey, repeat: float, spread: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Main visit at the home dealer, sometimes a repeat, and for two-group shoppers one at the other group."""
    main = np.flatnonzero(base >= 0)
    again = main[rng.random(len(main)) < repeat]
    other = main[jr.two_groups[main] & (rng.random(len(main)) < 0.6)]
    pid = np.concatenate([main, again, other])
    t = np.concatenate([
        base[main],
        base[again] + seconds_between(rng, DAY, spread * DAY, len(again)),
        base[other] + seconds_between(rng, 0, 20 * DAY, len(other)),
    ])
    dealer = np.concatenate([pop.dealer[main], pop.dealer[again], pop.other_dealer[other]])
    return pid, t, dealer


def leads(rng: np.random.Generator, pop: Population, jr: Journey, period: Period) -> dict[str, Rows]:
    """Leads; at northside-dealers a phone enquiry is recorded with the caller's phone only."""
    pid, t, dealer = _visits(rng, jr.lead, pop, jr, 0.15, 14)
    source = choice_by_row(rng, SOURCE_BY_SEGMENT, pop.segment[pid].astype(np.int64))
    cols: dict[str, Column] = {"lead_at": t, "model": _model_of(rng, pop, pid), "region": Coded(pop.region[pid], REGIONS), "source": Coded(source, LEAD_SOURCES)}
    rows = _dealer_rows(pid, dealer, cols).with_phone_only((source == PHONE_SOURCE) & (dealer < NORTHSIDE_DEALERS))
    return _split_by_group(rows, period, "lead_at")


def test_drives(rng: np.random.Generator, pop: Population, jr: Journey, period: Period) -> dict[str, Rows]:
    pid, t, dealer = _visits(rng, jr.drive, pop, jr, 0.10, 7)
    cols: dict[str, Column] = {"drive_at": t, "model": _model_of(rng, pop, pid, 0.4), "region": Coded(pop.region[pid], REGIONS)}
    return _split_by_group(_dealer_rows(pid, dealer, cols), period, "drive_at")


def sales(rng: np.random.Generator, pop: Population, jr: Journey, period: Period) -> dict[str, Rows]:
    """One sale per buyer, at the home dealer or (for some two-group shoppers) the other group."""
    pid = np.flatnonzero(jr.sale >= 0)
    dealer = jr.sale_dealer[pid]
    staff = dealer.astype(np.int64) * SALESPEOPLE_PER_DEALER + choice(rng, (5, 4, 3, 3, 2, 2, 1, 1), len(pid))
    pool = pa.array([f"{d}-S{i + 1:02d}" for d in DEALER_IDS for i in range(SALESPEOPLE_PER_DEALER)])
    cols: dict[str, Column] = {
        "sold_at": jr.sale[pid],
        "model": Coded(jr.sale_model[pid], MODELS),
        "region": Coded(pop.region[pid], REGIONS),
        "price_band": Coded(jr.price_band[pid], PRICE_BANDS),
        "price_eur": jr.price_eur[pid],
        "salesperson": pool.take(pa.array(staff)),
    }
    return _split_by_group(_dealer_rows(pid, dealer, cols), period, "sold_at")


def applications(rng: np.random.Generator, pop: Population, jr: Journey, period: Period) -> Rows:
    """Applications with their decision; a declined buyer sometimes retries and is approved."""
    first = np.flatnonzero(jr.app >= 0)
    retry = np.flatnonzero(jr.app2 >= 0)
    pid = np.concatenate([first, retry])
    decision = np.concatenate([np.where(jr.approved[first], 0, 1), np.zeros(len(retry), dtype=np.int64)])
    cols = {
        "applied_at": np.concatenate([jr.app[first], jr.app2[retry]]),
        "product": Coded(jr.product[pid], PRODUCTS),
        "model": Coded(jr.sale_model[pid], MODELS),
        "amount_band": Coded(jr.amount_band[pid], AMOUNT_BANDS),
        "decision": Coded(decision, DECISIONS),
    }
    return _keep_observed(Rows(pid, cols), cols["applied_at"], period)  # type: ignore[arg-type]


def contracts(pop: Population, jr: Journey) -> Rows:
    """New contracts from this period's sales plus the older contracts (2022-2025)."""
    new = np.flatnonzero(jr.contract_start != NONE)
    old = pop.old
    cols = {
        "start_date": np.concatenate([jr.contract_start[new], old.start_day]).astype(np.int32),
        "end_date": np.concatenate([jr.contract_end[new], old.end_day]).astype(np.int32),
        "product": Coded(np.concatenate([jr.product[new], old.product]), PRODUCTS),
        "model": Coded(np.concatenate([jr.sale_model[new], old.model]), MODELS),
        "amount_band": Coded(np.concatenate([jr.amount_band[new], old.amount_band]), AMOUNT_BANDS),
        "amount_eur": np.concatenate([jr.amount_eur[new], old.amount_eur]).astype(np.int64),
    }
    return Rows(np.concatenate([new, old.pid]), cols)  # type: ignore[arg-type]

