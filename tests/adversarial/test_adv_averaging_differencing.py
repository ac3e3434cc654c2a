"""Averaging, differencing and trackers: combining several noisy answers to cancel the noise or isolate one person.

- Averaging by repeats (Dinur and Nissim 2003 note that repeated noisy answers average out): the
  release cache returns the SAME noisy answer for the same question at no charge.
- Averaging by equivalent variants (rewritten SQL, reordered filters, aliases, case): either the
  same cache entry or a fresh charge each time; the budget bounds how many fresh draws exist.
- Differencing by filter (Denning et al. 1979/1980, "The tracker: a threat to statistical database
  security"): q(all) - q(all but a group) isolates the group; trackers combine several allowed
  query sets whose difference is one person. Each is a noisy, separately charged release: played
  as the distinguishing game, whose bound is the SUM of the epsilons the ledger charged per round.
- Differencing by re-upload and by consent change: the uploader (same partner as the analyst)
  publishes a version without the target, or revokes her consent, and asks again: a new data
  version is a new cache key and a new charge, until ``budget.exhausted``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _live_helpers import bearer, check_problem
from adversary import BRAND, LAKE, NORTH, World, fresh_epsilon, make_world, play, value, violation
from collab import write_csv

from cleanroom.client import Client

WS = "aurora_motors__web_sessions"
VARIANTS = [
    f"SELECT model, COUNT(DISTINCT pid) AS n FROM {WS} WHERE region IN ('north', 'east') GROUP BY model",
    f"select model, count(distinct pid) as n from {WS} where region in ('north', 'east') group by model",
    f"SELECT model, COUNT(DISTINCT pid) AS n FROM {WS} WHERE region IN ('east', 'north') GROUP BY model",
    f"SELECT w.model, COUNT(DISTINCT pid) AS n FROM {WS} AS w WHERE w.region IN ('north', 'east') GROUP BY w.model",
    f"SELECT model, COUNT(DISTINCT pid) AS n FROM {WS} WHERE (region IN ('north', 'east')) GROUP BY model;",
    f"SELECT model, COUNT(DISTINCT pid) AS n /* same */ FROM {WS} WHERE region IN ('north', 'east', 'north') GROUP BY model",
    f"SELECT model, COUNT(DISTINCT pid) AS m FROM {WS} WHERE region IN ('north', 'east') GROUP BY model",
    f"SELECT model, COUNT(DISTINCT pid) AS n FROM {WS} WHERE region IN ('north', 'east') AND model IN "
    "('aster', 'borealis', 'cirrus', 'dune', 'ember', 'fjord') GROUP BY model",
]
SMALL_BUDGET = {"privacy": {"monthly_budget_per_partner": 3, "collaboration_monthly_cap": 30}}


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory, repo: Path, raw_with_eve: Path) -> Iterator[World]:
    """A collaboration with Eve where each partner may spend epsilon 3 a month."""
    with make_world(tmp_path_factory.mktemp("adv-small") / "c", repo, raw_with_eve, policy_overrides=SMALL_BUDGET) as made:
        yield made


def test_repeating_a_question_returns_the_same_noise_at_no_charge(worlds: dict[bool, World]) -> None:
    """Averaging by repeats: 25 identical requests, one charge, one noise draw."""
    world = worlds[True]
    body = {"template": "funnel", "params": {"dimensions": ["model"]}, "epsilon": 0.2}
    answers = [world.query(NORTH, body).json() for _ in range(25)]
    assert {str(a["rows"]) for a in answers} == {str(answers[0]["rows"])}
    assert [a["cached"] for a in answers] == [False] + [True] * 24
    assert sum(world.charged()[a["query_id"]] for a in answers if a["query_id"] in world.charged()) == pytest.approx(0.2)


def test_equivalent_variants_share_the_cache_or_pay_each_time_and_the_budget_bounds_them(small: World) -> None:
    """Averaging by equivalent rewrites: each variant is either the cached answer (no charge) or charged in full;
    after epsilon 3 the budget refuses (budget.exhausted) and releases nothing more."""
    answers, fresh = [], 0
    for sql in VARIANTS:
        response = small.query(BRAND, {"sql": sql, "epsilon": 1.0})
        if response.status_code == 429:
            check_problem(response, "budget.exhausted")
            assert "rows" not in response.json()
            continue
        body = response.json()
        answers.append(body)
        charged = small.charged().get(body["query_id"])
        if body["cached"]:
            assert charged is None and body["epsilon_charged"] == 0 and any(a["rows"] == body["rows"] for a in answers[:-1])
        else:
            fresh += 1
            assert charged == 1
    assert fresh <= 3, "the monthly budget of 3 admits at most three fresh draws"
    spent = sum(small.charged().values())
    assert spent <= 3
    check_problem(small.query(BRAND, {"sql": VARIANTS[0].replace("'east'", "'west'"), "epsilon": 1.0}), "budget.exhausted")


def test_differencing_by_complementary_filters_is_bounded_by_the_summed_epsilon(worlds: dict[bool, World]) -> None:
    """Denning-style differencing: q(models A) + q(models B) - q(all) counts persons seen in both halves, Eve among them."""
    sets = (_ALL, *_TRACK[:2])
    exact = {w: [sum(worlds[w].oracle.exact(BRAND, "sql", {"sql": s}).part("n").values) for s in sets] for w in (False, True)}
    d = {w: exact[w][1] + exact[w][2] - exact[w][0] for w in (False, True)}
    assert d[True] - d[False] == 1, "the difference isolates Eve"

    def ask(world: World, eps: float) -> list[Any]:
        return [world.query(BRAND, {"sql": s, "epsilon": fresh_epsilon(0.34)}) for s in sets]

    def guess(b: list[dict[str, Any]]) -> bool:
        return (value(b[1], "n") or 0) + (value(b[2], "n") or 0) - (value(b[0], "n") or 0) > d[False]

    result = play("differencing by filter", worlds, 150, ask, guess)
    assert violation(result) is None, violation(result)


_ALL = f"SELECT COUNT(DISTINCT pid) AS n FROM {WS}"
_FALSE = f"SELECT COUNT(DISTINCT pid) AS n FROM {WS} WHERE configurator_completed = 'false'"
_TRACK = [f"SELECT COUNT(DISTINCT pid) AS n FROM {WS} WHERE model IN ({m})" for m in
          ("'aster', 'borealis', 'cirrus'", "'dune', 'ember', 'fjord'", "'aster', 'dune'")]


def test_a_tracker_is_bounded_by_the_summed_epsilon(worlds: dict[bool, World]) -> None:
    """Denning, Denning and Schwartz 1979: three allowed query sets (each above any threshold) whose
    combination isolates what a forbidden one would show; the attacker combines them all."""
    exact = {w: [sum(worlds[w].oracle.exact(BRAND, "sql", {"sql": s}).part("n").values) for s in _TRACK] for w in (False, True)}
    base = sum(exact[False])
    assert sum(exact[True]) - base == 3, "Eve is in every tracker set"

    def ask(world: World, eps: float) -> list[Any]:
        return [world.query(BRAND, {"sql": s, "epsilon": fresh_epsilon(0.34)}) for s in _TRACK]

    result = play("tracker", worlds, 150, ask, lambda b: sum(value(x, "n") or 0 for x in b) > base + 1.5)
    assert violation(result) is None, violation(result)


def _without_eve(path: Path) -> None:
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    write_csv(path, rows[0], [r for r in rows[1:] if "eve.target@example.org" not in r])


@pytest.mark.parametrize("dataset", ["leads", "consent"])
def test_differencing_by_reupload_or_consent_change_is_charged_until_the_budget_stops_it(
        tmp_path: Path, repo: Path, raw_with_eve: Path, dataset: str) -> None:
    """Lakeside's uploader publishes a version without Eve (or without her consent) and its analyst asks again."""
    with make_world(tmp_path / "c", repo, raw_with_eve, policy_overrides=SMALL_BUDGET) as small:
        body = {"template": "overlap", "params": {"datasets": ["lakeside-autos.leads", "aurora-motors.web_sessions"]}, "epsilon": 1.0}
        first = small.query(LAKE, body)
        assert first.status_code == 200 and first.json()["cached"] is False
        _without_eve(small.collab.raw / LAKE / f"{dataset}.csv")
        pair = small.collab.reprepare(LAKE, f"no-eve-{dataset}")[dataset]
        with Client(small.gateway.url, small.collab.mint(LAKE, "uploader")) as uploader:
            uploader.upload(dataset, pair.arrow, pair.manifest)
        second = small.query(LAKE, body)
        assert second.status_code == 200 and second.json()["cached"] is False, "new data: a new release"
        assert small.charged()[second.json()["query_id"]] == 1
        assert small.query(LAKE, body).json()["cached"] is True, "asking again on the same version: the same noise"
        assert small.query(LAKE, {**body, "epsilon": 0.999}).status_code == 200
        check_problem(small.query(LAKE, {**body, "epsilon": 0.5}), "budget.exhausted")
        assert sum(small.charged().values()) <= 3
