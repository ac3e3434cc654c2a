"""Attribution in SQL equals a plain-Python reading of docs/explanation/metrics.md, on random
small journeys, for every credit model; and every sale's credits sum to exactly 1000."""

from __future__ import annotations

import math
import random
from collections import Counter
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

import pytest
from engine_kit import DOMAINS, T0, Tables, make_scope

from cleanroom.engine import compile_query, execute

MODELS = ["first_touch", "last_touch", "linear", "time_decay", "position_based"]
Touch = tuple[datetime, str, str]  # (touched_at, campaign, channel)


def shares(model: str, touches: list[Touch], sold: datetime, half_life: int) -> list[Fraction | float]:
    """Each touch's share of one sale, oldest first (metrics.md, "Credit models")."""
    n = len(touches)
    if model == "first_touch":
        return [Fraction(1)] + [Fraction(0)] * (n - 1)
    if model == "last_touch":
        return [Fraction(0)] * (n - 1) + [Fraction(1)]
    if model == "linear":
        return [Fraction(1, n)] * n
    if model == "position_based":
        if n <= 2:
            return [Fraction(1, n)] * n
        return [Fraction(2, 5)] + [Fraction(1, 5) / (n - 2)] * (n - 2) + [Fraction(2, 5)]
    weights = [2 ** (-((sold - t).total_seconds() / 86400) / half_life) for t, _, _ in touches]
    return [w / sum(weights) for w in weights]


def milli_credits(parts: list[Fraction | float]) -> list[int]:
    """Floor every touch but the last; the last takes the residue so the sale sums to 1000."""
    head = [math.floor(1000 * p + (1e-9 if isinstance(p, float) else 0)) for p in parts[:-1]]
    return [*head, 1000 - sum(head)]


def reference(data: dict[str, list[dict[str, Any]]], params: dict[str, Any]) -> dict[str, Counter[str]]:
    by, lookback, max_touches = params["by"], timedelta(days=params["lookback_days"]), params["max_touches"]
    domain = DOMAINS[by]
    sales: dict[int, datetime] = {}
    for dealer in ("northside-dealers", "lakeside-autos"):
        for row in data[f"{dealer}.sales"]:
            sales[row["pid"]] = min(sales.get(row["pid"], row["sold_at"]), row["sold_at"])
    financed = {
        pid for pid, sold in sales.items()
        for c in data["aurora-financial.contracts"]
        if c["pid"] == pid and sold.date() - timedelta(days=7) <= c["start_date"] <= sold.date() + timedelta(days=30)
    }
    out = {"credit": Counter[str](), "credit_financed": Counter[str](), "sales": Counter(sales=len(sales), financed_sales=len(financed))}
    for pid, sold in sales.items():
        touches = sorted(
            (t["touched_at"], t["campaign"], t["channel"]) for t in data["aurora-motors.campaign_touches"]
            if t["pid"] == pid and sold - lookback <= t["touched_at"] <= sold and t[by] in domain
        )[-max_touches:]
        credit = Counter[str]()
        if not touches:
            credit["unattributed"] = 1000
        for (t, campaign, channel), milli in zip(touches, milli_credits(shares(params["model"], touches, sold, params["half_life_days"])) if touches else [], strict=True):
            credit[campaign if by == "campaign" else channel] += milli
        assert sum(credit.values()) == 1000
        out["credit"].update(credit)
        if pid in financed:
            out["credit_financed"].update(credit)
    return out


def random_journeys(rng: random.Random, persons: int = 30) -> dict[str, list[dict[str, Any]]]:
    data: dict[str, list[dict[str, Any]]] = {k: [] for k in ("aurora-motors.campaign_touches", "northside-dealers.sales", "lakeside-autos.sales", "aurora-financial.contracts")}
    for pid in range(1, persons + 1):
        sold = T0 + timedelta(days=rng.randint(40, 120), seconds=rng.randint(0, 86_399))
        for _ in range(rng.randint(0, 14)):
            # Some touches share a timestamp (ties), a few fall outside the domain or after the sale.
            when = sold - timedelta(seconds=rng.choice([0, 3_600, rng.randint(0, 100 * 86_400)])) + timedelta(days=rng.choice([0, 0, 0, 2]))
            campaign = rng.choice([*DOMAINS["campaign"], "not_a_campaign"])
            data["aurora-motors.campaign_touches"].append({"pid": pid, "touched_at": when, "campaign": campaign, "channel": rng.choice(DOMAINS["channel"])})
        if rng.random() < 0.8:
            dealer = rng.choice(["northside-dealers", "lakeside-autos"])
            data[f"{dealer}.sales"].append({"pid": pid, "sold_at": sold, "dealer_id": "NS-01", "model": "aster", "region": "north", "price_band": "<30k", "price_eur": 1})
            if rng.random() < 0.3:
                data[f"{dealer}.sales"].append({"pid": pid, "sold_at": sold + timedelta(days=rng.randint(1, 30)), "dealer_id": "NS-01", "model": "aster", "region": "north", "price_band": "<30k", "price_eur": 1})
        if rng.random() < 0.5:
            start = sold.date() + timedelta(days=rng.randint(-10, 35))
            data["aurora-financial.contracts"].append({"pid": pid, "start_date": start, "end_date": start + timedelta(days=700), "product": "loan", "model": "aster", "amount_band": "<20k", "amount_eur": 1})
    return data


def param_sets(rng: random.Random) -> list[dict[str, Any]]:
    return [
        {"model": m, "by": rng.choice(["campaign", "channel"]), "lookback_days": rng.choice([1, 7, 30, 90]),
         "half_life_days": rng.choice([1, 7, 60]), "max_touches": rng.choice([1, 2, 3, 10, 20])}
        for m in MODELS
    ]


@pytest.mark.parametrize("seed", range(6))
def test_sql_credits_equal_the_reference(seed: int) -> None:
    rng = random.Random(seed)
    data = random_journeys(rng)
    tables = Tables().consent_everyone(range(1, 31))
    for qualified, rows in data.items():
        tables.add(qualified, rows)
    scope = make_scope(consent_purposes=["measurement", "attribution"], max_rows_per_person=50)
    for params in param_sets(rng):
        result = execute(compile_query("attribution", params, scope), tables.con)
        want = reference(data, params)
        credit = result.part("credit")  # one partition: (value, financing)
        total: Counter[str] = Counter()
        financed: Counter[str] = Counter()
        for (value, financing), v in zip(credit.cells, credit.values, strict=True):
            total[value] += v
            if financing == "financed":
                financed[value] += v
        assert {k: v for k, v in total.items() if v} == {k: v for k, v in want["credit"].items() if v}, f"seed {seed}, {params}"
        assert {k: v for k, v in financed.items() if v} == {k: v for k, v in want["credit_financed"].items() if v}, f"seed {seed}, {params}"
        assert sum(credit.values) == 1000 * want["sales"]["sales"], "every sale's credits sum to 1000"
        assert sum(financed.values()) == 1000 * want["sales"]["financed_sales"]
