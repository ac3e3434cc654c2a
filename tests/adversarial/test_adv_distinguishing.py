"""The distinguishing game of differential privacy, played through the real HTTP API.

Attack (membership inference, the definition of DP itself; Dwork et al. 2006): an analyst who
knows everybody but Eve (it holds the exact answer of the world without her) asks a count or a
sum that Eve changes, and guesses from the released number whether she is in the data. The
likelihood-ratio guess is optimal, and for a count under the discrete Laplace it reaches the
e^eps / (1 + e^eps) bound exactly: the test is tight, so halving the noise is caught.

The bound uses the epsilon the LEDGER charged (not the request), and the tolerance is a one-sided
exact binomial test at 1e-6 (adversary.violation). The seeded-bug tests patch the product inside
the test (noise halved, clamp removed) and assert that this same check then fails.
"""

from __future__ import annotations

import importlib
from dataclasses import replace
from typing import Any

import pytest
from adversary import BRAND, NORTH, GameResult, World, dp_accuracy_bound, play, value, violation

from cleanroom.dp import noise as dp_noise
from cleanroom.engine import restricted_sql

dp_release = importlib.import_module("cleanroom.dp.release")  # the module (cleanroom.dp.release is also a function name)
COUNT_SQL = "SELECT COUNT(DISTINCT pid) AS n FROM aurora_motors__web_sessions"
SUM_SQL = "SELECT SUM(price_eur) AS revenue FROM northside_dealers__sales"
FAST_TRIALS = 600  # enough that a halved noise scale fails the check with probability ~1e-6 (see test_a_halved_noise...)


def _exact(world: World, sql: str, part: str) -> int:
    exact = world.oracle.exact(BRAND, "sql", {"sql": sql})
    return int(sum(exact.part(part).values))


def count_game(worlds: dict[bool, World], trials: int, name: str = "count game") -> GameResult:
    """Guess "Eve is in" iff the noisy count exceeds the count without her (the likelihood-ratio test)."""
    c0, c1 = _exact(worlds[False], COUNT_SQL, "n"), _exact(worlds[True], COUNT_SQL, "n")
    assert c1 - c0 == 1, "the worlds must differ by exactly one person in the target count"

    def ask(world: World, eps: float) -> list[Any]:
        return [world.query(BRAND, {"sql": COUNT_SQL, "epsilon": eps})]

    return play(name, worlds, trials, ask, lambda bodies: (value(bodies[0], "n") or 0) > c0)


def sum_game(worlds: dict[bool, World], trials: int, name: str = "sum game") -> GameResult:
    """Guess "Eve is in" iff the noisy revenue is nearer the exact revenue with her than without."""
    s0, s1 = _exact(worlds[False], SUM_SQL, "revenue"), _exact(worlds[True], SUM_SQL, "revenue")
    assert s1 > s0
    mid = (s0 + s1) / 2

    def ask(world: World, eps: float) -> list[Any]:
        return [world.query(BRAND, {"sql": SUM_SQL, "epsilon": eps})]

    return play(name, worlds, trials, ask, lambda bodies: (value(bodies[0], "revenue") or 0) > mid)


def test_count_membership_game_stays_within_the_charged_epsilon(worlds: dict[bool, World]) -> None:
    """Membership inference on one person's presence in a count (DP's own game): accuracy <= e^eps/(1+e^eps)."""
    result = count_game(worlds, FAST_TRIALS)
    assert violation(result) is None, violation(result)
    assert 0.99 <= float(result.epsilon) <= 1.0, "the ledger charged what was asked (fresh epsilons just below 1)"


def test_sum_membership_game_stays_within_the_charged_epsilon(worlds: dict[bool, World]) -> None:
    """Membership inference through a sum Eve drives to 10^12 per row: clamp and row bound keep it within epsilon."""
    result = sum_game(worlds, 200)
    assert violation(result) is None, violation(result)


@pytest.mark.slow
def test_count_membership_game_with_many_trials(worlds: dict[bool, World]) -> None:
    """The same game with 6,000 trials: the tolerance shrinks to about 0.03 above the bound."""
    result = count_game(worlds, 6000, "count game (slow)")
    assert violation(result) is None, violation(result)
    assert result.accuracy <= result.bound + 0.03


# --- seeded bugs: the checks above must catch them -------------------------------------------------


def test_a_halved_noise_scale_is_caught_by_the_game(worlds: dict[bool, World], monkeypatch: pytest.MonkeyPatch) -> None:
    """Seeded bug: the Laplace scale is halved (the ledger still charges epsilon). The game must refute epsilon.

    With eps = 1 an optimal attacker then wins 88 % of rounds instead of 73 %: over 600 rounds the
    binomial test at 1e-6 rejects with probability about 1 - 1e-6.
    """
    def halved(sensitivity: int, epsilon: Any) -> dp_noise.Calibrated:
        honest = dp_noise.calibrate_laplace(sensitivity, epsilon)
        return replace(honest, scale=honest.scale / 2, measurement=dp_noise._laplace(honest.scale / 2))

    monkeypatch.setattr(dp_release, "calibrate_laplace", halved)
    result = count_game(worlds, FAST_TRIALS, "count game, noise halved")
    assert violation(result) is not None, f"halved noise went unnoticed: {result}"
    assert result.accuracy > dp_accuracy_bound(1.0)


def test_a_removed_clamp_is_caught_by_the_game(worlds: dict[bool, World], monkeypatch: pytest.MonkeyPatch) -> None:
    """Seeded bug: restricted SQL stops clamping measures. Eve's 10^12 prices then give her away every time."""
    honest = restricted_sql._source_columns

    def unclamped(table: Any, domains: Any, scope: Any) -> list[str]:
        cols = honest(table, domains, scope)
        return [c if not c.startswith("least(") else f"{c.split('greatest(')[1].split(',')[0]} AS {c.rsplit(' AS ', 1)[1]}" for c in cols]

    monkeypatch.setattr(restricted_sql, "_source_columns", unclamped)
    result = sum_game(worlds, 60, "sum game, clamp removed")
    assert violation(result) is not None, f"an unclamped sum went unnoticed: {result}"
