"""Small cells, threshold and error oracles, a partner's dictionary attack with the salt, and collusion.

- Many-filter small-cell isolation (Denning's query-set-size control and its failure): filters
  narrowed until a cell holds a handful of persons, Eve among them: suppressed on the noisy count.
- Threshold oracle: does suppression, or the shape of the answer, depend on Eve's presence beyond
  what the noise allows? The status, columns, notes and suppression pattern of an isolating query
  are compared between the neighbouring worlds.
- Error oracle (Debenedetti et al. 2023, "Privacy side channels in machine learning systems"):
  error codes and messages must be the same in both worlds for the same request, valid or not.
- Dictionary attack by a partner holding the salt: Northside keys guessed e-mails (Eve's among
  them, padded with customers it knows the brand has, to lift the overlap above the threshold;
  "audience padding") into its own leads and asks the overlap with the brand's sessions: the
  answer is still noisy and charged, and the membership game stays within epsilon.
- Collusion against the collaboration cap: two partners pooling their budgets stop at the
  collaboration's monthly cap; a second dealer asking the first's question gets the same noise.
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _live_helpers import check_problem
from adversary import BRAND, EVE_EMAIL, LAKE, NORTH, World, add_person, fresh_epsilon, make_world, person_rows, play, value, violation
from collab import write_csv

WS = "aurora_motors__web_sessions"
ISOLATING = (f"SELECT COUNT(DISTINCT pid) AS n FROM {WS} WHERE model = 'aster' AND region = 'north' AND channel = 'search' "
             "AND configurator_completed = 'true'")
REQUESTS: list[tuple[str, dict[str, Any]]] = [
    (BRAND, {"sql": ISOLATING, "epsilon": 0.5}),
    (BRAND, {"sql": f"SELECT COUNT(DISTINCT pid) FROM {WS} WHERE model = 'tesla'", "epsilon": 0.5}),
    (BRAND, {"sql": "SELECT SUM(price_eur) AS r FROM northside_dealers__sales WHERE price_band = '60k+'", "epsilon": 0.5}),
    (BRAND, {"sql": "SELECT SUM(amount_eur) AS a FROM aurora_financial__contracts WHERE product = 'loan'", "epsilon": 0.5}),
    (BRAND, {"template": "funnel", "params": {"dimensions": ["model"], "filters": {"region": ["north"]}}, "epsilon": 1.5}),
    (NORTH, {"template": "lifecycle", "params": {"window_start": "2027-01-01", "window_end": "2027-06-30"}, "epsilon": 0.5}),
    (BRAND, {"template": "lifecycle", "params": {"window_start": "2027-06-30", "window_end": "2027-01-01"}, "epsilon": 0.5}),
    (BRAND, {"template": "attribution", "params": {"model": "nope"}, "epsilon": 0.5}),
    (BRAND, {"template": "overlap", "params": {"datasets": ["aurora-motors.web_sessions", "aurora-motors.web_sessions"]}, "epsilon": 0.5}),
]


def test_many_filters_isolating_a_small_cell_are_suppressed(worlds: dict[bool, World]) -> None:
    exact = sum(worlds[True].oracle.exact(BRAND, "sql", {"sql": ISOLATING}).part("n").values)
    assert 1 <= exact <= 12, "the filters narrow the cell to a handful of persons, Eve included"
    for world in worlds.values():
        body = world.query(BRAND, {"sql": ISOLATING, "epsilon": 1.0}).json()
        assert value(body, "n") is None and value(body, "suppressed") is True and body["suppressed_cells"] == 1


def _shape(response: Any) -> tuple[Any, ...]:
    body = response.json()
    if response.status_code != 200:
        return (response.status_code, body["code"], body["detail"], body.get("details"))
    return (200, body["columns"], body["notes"], [n["scale"] for n in body["noise"]], body["epsilon_charged"],
            [[v is None for v in row] for row in body["rows"] if "suppressed" not in body["columns"]])


@pytest.mark.parametrize("index", range(len(REQUESTS)))
def test_no_threshold_or_error_oracle_between_neighbouring_worlds(worlds: dict[bool, World], index: int) -> None:
    """Same request in both worlds: the same status, code, message, columns, notes and noise scale."""
    partner, body = REQUESTS[index]
    body = {**body, "epsilon": fresh_epsilon(body["epsilon"])} if body["epsilon"] <= 1 else body
    shapes = [_shape(worlds[w].query(partner, body)) for w in (True, False)]
    assert shapes[0] == shapes[1]


# --- dictionary attack with the salt -------------------------------------------------------------------


def _dictionary_leads(raw: Path, base_raw: Path) -> None:
    """Northside's leads replaced by guessed e-mails: Eve's, 40 the brand is known to have (padding), 200 random guesses."""
    leads = raw / NORTH / "leads.csv"
    with leads.open(newline="", encoding="utf-8") as fh:
        header = next(csv.reader(fh))
    with (base_raw / BRAND / "consent.csv").open(newline="", encoding="utf-8") as fh:
        consented = {r["email"] for r in csv.DictReader(fh) if r["purpose"] == "measurement" and not r["revoked_at"]}
    with (base_raw / BRAND / "web_sessions.csv").open(newline="", encoding="utf-8") as fh:
        known = list(dict.fromkeys(r["email"] for r in csv.DictReader(fh) if "@" in r["email"] and r["email"] in consented))[:60]
    guesses = [EVE_EMAIL, *known, *(f"guess{i}@example.org" for i in range(200))]
    rows = [person_rows(NORTH, "leads", header, email=e, crm=f"8{i:07d}", rows=1)[0] for i, e in enumerate(guesses)]
    write_csv(leads, header, rows)
    consent = raw / NORTH / "consent.csv"
    with consent.open(newline="", encoding="utf-8") as fh:
        c_header = next(csv.reader(fh))
    with consent.open("a", newline="", encoding="utf-8") as fh:
        for i, e in enumerate(guesses[1:], start=1):  # Eve's own Northside consent comes with her rows in the world with her
            csv.writer(fh).writerows(person_rows(NORTH, "consent", c_header, email=e, crm=f"8{i:07d}"))


@pytest.fixture(scope="module")
def dictionary_worlds(tmp_path_factory: pytest.TempPathFactory, repo: Path, base_raw: Path) -> Iterator[dict[bool, World]]:
    root = tmp_path_factory.mktemp("adv-dictionary")
    made = {}
    for eve in (True, False):
        raw = root / f"raw-{eve}"
        if eve:
            add_person(base_raw, raw)
        else:
            shutil.copytree(base_raw, raw)
        _dictionary_leads(raw, base_raw)
        made[eve] = raw
    with make_world(root / "with", repo, made[True]) as w1, make_world(root / "without", repo, made[False]) as w0:
        yield {True: w1, False: w0}


def test_a_salt_holders_dictionary_attack_learns_only_what_dp_allows(dictionary_worlds: dict[bool, World]) -> None:
    params = {"datasets": ["northside-dealers.leads", "aurora-motors.web_sessions"]}
    exact = {w: dictionary_worlds[w].oracle.exact(NORTH, "overlap", params) for w in (True, False)}
    both = {w: dict(zip(exact[w].part("venn").cells, exact[w].part("venn").values, strict=True)) for w in exact}
    key = next(c for c in both[True] if c[-1] == "both")
    assert both[True][key] - both[False][key] == 1 and both[False][key] >= 25, "padding lifts the shared cell above the threshold"
    column = "shared"

    def ask(world: World, eps: float) -> list[Any]:
        return [world.query(NORTH, {"template": "overlap", "params": params, "epsilon": eps})]

    first = ask(dictionary_worlds[True], fresh_epsilon())[0].json()
    assert first["noise"][0]["scale"] > 0 and first["epsilon_charged"] > 0
    result = play("dictionary + padding", dictionary_worlds, 150, ask, lambda b: (value(b[0], column) or 0) > both[False][key])
    assert violation(result) is None, violation(result)


# --- collusion -----------------------------------------------------------------------------------------


def test_colluding_partners_stop_at_the_collaboration_cap(tmp_path: Path, repo: Path, base_raw: Path) -> None:
    """Brand and Northside pool their budgets (5 each) against a cap of 8 (+2 reserved for the report): 6 in total."""
    policy = {"privacy": {"monthly_budget_per_partner": 5, "collaboration_monthly_cap": 8, "report_reservation": 2}}
    with make_world(tmp_path / "c", repo, base_raw, policy_overrides=policy) as world:
        spent = 0
        for i in range(12):
            partner = (BRAND, NORTH)[i % 2]
            response = world.query(partner, {"template": "funnel", "params": {"dimensions": ["region"]}, "epsilon": round(1 - i * 0.001, 6)})
            if response.status_code == 429:
                check_problem(response, "budget.exhausted")
                continue
            spent += 1
        assert spent == 6 and float(sum(world.charged().values())) <= 6
        shared = world.query(NORTH, {"template": "overlap", "params": {"datasets": ["northside-dealers.leads", "lakeside-autos.leads"]},
                                     "epsilon": 0.5})
        check_problem(shared, "budget.exhausted")


def test_a_second_dealer_asking_the_same_question_gets_the_same_noise(worlds: dict[bool, World]) -> None:
    """Pooling answers across colluding partners of the same scope: the cache hands out one noise draw."""
    world = worlds[True]
    body = {"template": "funnel", "params": {"dimensions": ["month"]}, "epsilon": fresh_epsilon(0.3)}
    a, b = world.query(NORTH, body).json(), world.query(LAKE, body).json()
    assert a["rows"] == b["rows"] and b["cached"] is True and b["epsilon_charged"] == 0
