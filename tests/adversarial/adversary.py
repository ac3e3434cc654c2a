"""The adversary's toolkit: neighbouring worlds, the distinguishing game, and the sensitivity check.

Imported by name (test folders are not packages; conftest.py puts ``tests/system`` on the path).

- :func:`add_person` writes Eve, one extreme person, into EVERY partner's raw CSVs (60 rows per
  dataset, every consent purpose, measures of 10^12). A world without her is the same raw data
  with her rows removed from every partner: the two are neighbouring datasets for the privacy unit.
- :func:`play` runs the distinguishing game of differential privacy through the real HTTP API:
  each trial secretly picks a world, the attacker asks its question there with a fresh epsilon
  (so the release cache cannot hand back an earlier noise draw) and guesses the world from the
  released numbers. :func:`violation` compares its accuracy with e^eps / (1 + e^eps) for the
  epsilon the LEDGER charged, with a one-sided exact binomial test at 1e-6: a correct product
  fails it with probability below one in a million, whatever the machine's load.
- :func:`sensitivity_violations` compares the exact aggregates of the two worlds part by part
  with the sensitivity each part declares to ``cleanroom.dp`` (the number its noise is scaled to).
"""

from __future__ import annotations

import csv
import itertools
import math
import random
import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import httpx
from _live_helpers import LiveGateway, bearer
from collab import COLLABORATION, Collab, ExactOracle, build_collab, serve, synth_raw

from cleanroom.aggregate import ExactResult
from cleanroom.dp import l1_sensitivity, l2_sensitivity
from cleanroom.gateway import Limits

BRAND, NORTH, LAKE, FIN = "aurora-motors", "northside-dealers", "lakeside-autos", "aurora-financial"
PARTNERS = (BRAND, NORTH, LAKE, FIN)
CUSTOMERS, SEED = 1500, 11
# Budgets large enough for thousands of game trials (each partner signs them; see make_world).
BIG_BUDGETS = {"privacy": {"monthly_budget_per_partner": 100_000, "collaboration_monthly_cap": 400_000}}
ALPHA = 1e-6  # a correct product fails a statistical check here with probability below this

EVE_EMAIL = "eve.target@example.org"
EVE_ROWS = 60  # more than the policy's max_rows_per_person (50)
EVE_MEASURE = 10**12  # far above every clamp bound (150,000 and 120,000)
_PREFIX = {BRAND: "AMC", NORTH: "NSD", LAKE: "LKA", FIN: "AFS"}
_OFFSET_H = {"campaign_touches": -1, "web_sessions": 0, "leads": 1, "test_drives": 2, "sales": 3, "applications": 4}
DOMAINS: dict[str, list[str]] = {
    "model": ["aster", "borealis", "cirrus", "dune", "ember", "fjord"],
    "region": ["north", "south", "east", "west", "central"],
    "channel": ["search", "social", "display", "email", "direct", "video"],
    "campaign": ["spring_launch", "summer_drive", "autumn_ev", "winter_service", "loyalty_upgrade", "fleet_offer", "ev_test_week",
                 "brand_always_on"],
    "source": ["web", "walk_in", "phone", "event"],
    "product": ["loan", "lease", "balloon"],
    "amount_band": ["<20k", "20-35k", "35-50k", "50k+"],
}


# --- worlds ------------------------------------------------------------------------------------------


def synth_base(dest: Path, repo: Path) -> Path:
    return synth_raw(dest, repo, customers=CUSTOMERS, seed=SEED)


def person_rows(partner: str, dataset: str, header: list[str], email: str = EVE_EMAIL, crm: str = "99999999",
                rows: int = EVE_ROWS, measure: int = EVE_MEASURE) -> list[list[Any]]:
    """One person's raw rows for ``partner``'s ``dataset`` with the given CSV header (identity columns first)."""
    if dataset == "consent":
        return [[_cell(c, partner, email, crm, {"purpose": p, "granted_at": "2020-01-01T00:00:00", "revoked_at": ""}.get)
                 for c in header] for p in ("measurement", "attribution", "analytics")]
    out = []
    for i in range(rows):
        when = datetime(2025, 11, 2, 9) + timedelta(days=5 * i, hours=_OFFSET_H.get(dataset, 0))
        out.append([_cell(c, partner, email, crm, lambda col, i=i, when=when: _value(col, partner, i, when, measure)) for c in header])
    return out


def _cell(column: str, partner: str, email: str, crm: str, other: Callable[[str], Any]) -> Any:
    identity = {"crm_id": f"{_PREFIX[partner]}-{crm}", "first_name": "Eve", "last_name": "Target", "email": email, "phone": ""}
    return identity[column] if column in identity else other(column)


def _value(column: str, partner: str, i: int, when: datetime, measure: int) -> Any:
    if column.endswith("_at"):
        return when.isoformat()
    if column == "start_date":
        return when.date().isoformat()
    if column == "end_date":
        return (date(2027, 1, 1) + timedelta(days=3 * i)).isoformat()
    if column in ("price_eur", "amount_eur"):
        return measure
    if column == "dealer_id":
        return f"NS-0{1 + i % 6}" if partner == NORTH else f"LA-0{1 + i % 4}"
    if column == "salesperson":
        return "XX-01-S01"
    if column == "region":
        return DOMAINS["region"][(i // 12) % 5]
    if column in DOMAINS:
        return DOMAINS[column][i % len(DOMAINS[column])]
    return {"price_band": "60k+", "decision": "approved", "configurator_completed": "true" if i % 2 == 0 else "false"}[column]


def add_person(source: Path, dest: Path, only: str | None = None, **kwargs: Any) -> Path:
    """A copy of the raw folder ``source`` with one extreme person appended to EVERY partner's CSVs
    (or only to ``only``, "partner/dataset", and that partner's consent)."""
    shutil.copytree(source, dest)
    for path in sorted(dest.glob("*/*.csv")):
        if only is not None and f"{path.parent.name}/{path.stem}" not in (only, f"{only.split('/')[0]}/consent"):
            continue
        with path.open(newline="", encoding="utf-8") as fh:
            header = next(csv.reader(fh))
        with path.open("a", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerows(person_rows(path.parent.name, path.stem, header, **kwargs))
    return dest


@dataclass
class World:
    """One collaboration with a running gateway, its exact oracle (the attacker's background knowledge) and analyst keys."""

    collab: Collab
    gateway: LiveGateway
    oracle: ExactOracle
    analysts: dict[str, str]
    client: httpx.Client = field(repr=False)

    def query(self, partner: str, body: dict[str, Any], key: str | None = None) -> httpx.Response:
        payload = {"collaboration": COLLABORATION, **body}
        return self.client.post("/v1/queries", json=payload, headers=bearer(key or self.analysts[partner]))

    def charged(self) -> dict[str, Fraction]:
        """query id -> the epsilon the ledger charged for it (exact)."""
        return {c["query_id"]: Fraction(c["epsilon"]) for c in self.collab.ledger().charges(COLLABORATION)}


@contextmanager
def make_world(root: Path, repo: Path, raw: Path, *, policy_overrides: dict[str, Any] | None = None, limits: Limits | None = None,
               **build: Any) -> Iterator[World]:
    """Build, sign and activate a collaboration over ``raw`` and serve it on loopback."""
    collab = build_collab(root, repo, raw_source=raw, policy_overrides=policy_overrides or BIG_BUDGETS, **build)
    oracle = ExactOracle(collab)
    with ExitStack() as stack:
        stack.callback(oracle.close)
        gateway = stack.enter_context(serve(collab.config(limits or Limits(release_time_quantum_s=0))))
        client = stack.enter_context(httpx.Client(base_url=gateway.url, timeout=120))
        yield World(collab, gateway, oracle, {p: collab.mint(p, "analyst") for p in PARTNERS}, client)


# --- fresh epsilons -----------------------------------------------------------------------------------

_counter = itertools.count(1)


def fresh_epsilon(top: float = 1.0) -> float:
    """An epsilon no other request of this session used (exact to 6 decimals): never a cache hit."""
    return round(top - next(_counter) * 1e-6, 6)


# --- the distinguishing game --------------------------------------------------------------------------


@dataclass(frozen=True)
class GameResult:
    name: str
    trials: int
    correct: int
    epsilon: Fraction  # the largest total epsilon the ledgers charged for one trial

    @property
    def accuracy(self) -> float:
        return self.correct / self.trials

    @property
    def bound(self) -> float:
        return dp_accuracy_bound(self.epsilon)


def dp_accuracy_bound(epsilon: Fraction | float) -> float:
    """The best accuracy any test can have between two neighbouring worlds under epsilon-DP."""
    return 1.0 / (1.0 + math.exp(-float(epsilon)))


def binom_sf(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), exactly (log space)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    logs = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * math.log(p) + (n - i) * math.log1p(-p)
            for i in range(k, n + 1)]
    top = max(logs)
    return min(1.0, math.exp(top) * sum(math.exp(v - top) for v in logs))


def violation(result: GameResult, alpha: float = ALPHA) -> str | None:
    """Why ``result`` refutes the epsilon the ledger charged (a one-sided exact binomial test), or None."""
    tail = binom_sf(result.correct, result.trials, result.bound)
    if tail >= alpha:
        return None
    return (f"{result.name}: {result.correct}/{result.trials} correct ({result.accuracy:.3f}) against the epsilon-DP bound "
            f"{result.bound:.3f} at the charged epsilon {float(result.epsilon):g}: P(this or better | bound) = {tail:.2e} < {alpha:g}")


Ask = Callable[[World, float], list[httpx.Response]]
Guess = Callable[[list[dict[str, Any]]], bool]


def play(name: str, worlds: dict[bool, World], trials: int, ask: Ask, guess: Guess, seed: int = 2026) -> GameResult:
    """``trials`` rounds: a secret fair coin picks a world, ``ask`` queries it, ``guess`` names the world from the bodies.

    Every release must be fresh (``cached: false``); the epsilon of a round is what the ledger
    charged for its query ids, summed (an attacker asking several questions per round pays for each).
    """
    coin = random.Random(seed)
    correct = 0
    rounds: list[tuple[bool, list[str]]] = []
    for _ in range(trials):
        secret = coin.random() < 0.5
        responses = ask(worlds[secret], fresh_epsilon())
        bodies = []
        for r in responses:
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["cached"] is False, "a game round must draw fresh noise"
            bodies.append(body)
        rounds.append((secret, [b["query_id"] for b in bodies]))
        correct += guess(bodies) == secret
    charged = {w: worlds[w].charged() for w in worlds}
    epsilon = max(sum((charged[secret][q] for q in ids), Fraction(0)) for secret, ids in rounds)
    return GameResult(name, trials, correct, epsilon)


def value(body: dict[str, Any], column: str, row: int = 0) -> Any:
    return body["rows"][row][body["columns"].index(column)]


# --- sensitivity ---------------------------------------------------------------------------------------


def sensitivity_violations(without: ExactResult, with_: ExactResult) -> list[str]:
    """Every part whose exact values moved further between neighbouring worlds than it declares."""
    found = []
    for b, a in zip(without.parts, with_.parts, strict=True):
        assert b.name == a.name and b.cells == a.cells and b.bounds == a.bounds
        diffs = [x - y for x, y in zip(a.values, b.values, strict=True)]
        l1 = sum(abs(d) for d in diffs)
        l2 = math.sqrt(sum(d * d for d in diffs))
        touched = sum(1 for d in diffs if d)
        declared = l1_sensitivity(b.bounds)
        if l1 > declared:
            found.append(f"{without.template}.{b.name}: L1 change {l1} > declared L1 sensitivity {declared}")
        if l2 > l2_sensitivity(b.bounds) * (1 + 1e-12):
            found.append(f"{without.template}.{b.name}: L2 change {l2:.1f} > declared L2 sensitivity {l2_sensitivity(b.bounds):.1f}")
        if touched > b.bounds.max_cells_per_person:
            found.append(f"{without.template}.{b.name}: {touched} cells moved > declared {b.bounds.max_cells_per_person}")
    return found


__all__ = [
    "BIG_BUDGETS", "BRAND", "FIN", "LAKE", "NORTH", "PARTNERS", "GameResult", "World", "add_person", "binom_sf", "dp_accuracy_bound",
    "fresh_epsilon", "make_world", "person_rows", "play", "sensitivity_violations", "synth_base", "value", "violation",
]
