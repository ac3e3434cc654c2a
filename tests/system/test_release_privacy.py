"""Privacy through the real server: nothing leaves but noisy aggregates, to whom the policy allows.

One collaboration of 4,000 synthetic customers (the shipped policy, budgets raised so the module
can run every template) is built once for the module; a uvicorn server runs over it. The exact
engine answers come from ``ExactOracle`` on a private copy of the store, only to show that the
gateway never released them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _live_helpers import LiveGateway, bearer, check_problem
from collab import COLLABORATION, Collab, ExactOracle, build_collab, check_intervals, hex64_tokens, raw_identifiers, records, serve

from cleanroom.aggregate import ExactResult

BUDGETS = {"privacy": {"monthly_budget_per_partner": 100, "collaboration_monthly_cap": 400}}
BRAND, NORTH, LAKE, FIN = "aurora-motors", "northside-dealers", "lakeside-autos", "aurora-financial"
WINDOW = {"window_start": "2026-11-01", "window_end": "2027-01-31"}

# Every template, each twice with different parameters: (partner, template, params).
RUNS: list[tuple[str, str, dict[str, Any]]] = [
    (BRAND, "funnel", {"dimensions": ["model"]}),
    (BRAND, "funnel", {"dimensions": ["region"], "entry": "configurator", "window_days": 60}),
    (NORTH, "funnel", {"dimensions": ["dealer_group"], "entry": "lead"}),
    (NORTH, "funnel", {"dimensions": ["model"], "filters": {"region": ["north", "east"]}}),
    (BRAND, "attribution", {"model": "last_touch", "by": "campaign"}),
    (BRAND, "attribution", {"model": "linear", "by": "channel", "lookback_days": 60}),
    (BRAND, "overlap", {"datasets": ["aurora-motors.web_sessions", "northside-dealers.sales"]}),
    (NORTH, "overlap", {"datasets": ["northside-dealers.leads", "lakeside-autos.leads"]}),
    (BRAND, "lifecycle", {**WINDOW, "by": "product"}),
    (FIN, "lifecycle", {**WINDOW, "by": "amount_band"}),
    (BRAND, "sql", {"sql": "SELECT model, COUNT(DISTINCT pid) AS buyers, SUM(price_eur) AS revenue "
                           "FROM northside_dealers__sales GROUP BY model"}),
    (BRAND, "sql", {"sql": "SELECT region, COUNT(DISTINCT pid) AS visitors "
                           "FROM aurora_motors__web_sessions WHERE model = 'aster' GROUP BY region"}),
]
RAW_ID = re.compile(r"\b[A-Z]{3}-\d{8}\b")


@pytest.fixture(scope="module")
def collab(tmp_path_factory: pytest.TempPathFactory, repo: Path, synth_4k: Path) -> Collab:
    return build_collab(tmp_path_factory.mktemp("privacy") / "collab", repo, raw_source=synth_4k, policy_overrides=BUDGETS)


@pytest.fixture(scope="module")
def oracle(collab: Collab) -> Iterator[ExactOracle]:
    made = ExactOracle(collab)
    yield made
    made.close()


@pytest.fixture(scope="module")
def gateway(collab: Collab, oracle: ExactOracle) -> Iterator[LiveGateway]:
    with serve(collab.config()) as live:
        yield live


@pytest.fixture(scope="module")
def forbidden(collab: Collab) -> set[str]:
    """Everything that identifies a person: hids (partner-side and peppered), raw CRM ids, e-mails."""
    return collab.all_hids() | raw_identifiers(collab.raw)


@pytest.fixture(scope="module")
def analysts(collab: Collab, gateway: LiveGateway) -> dict[str, str]:
    return {pid: collab.mint(pid, "analyst") for pid in (BRAND, NORTH, LAKE, FIN)}


def _post(gateway: LiveGateway, key: str, template: str, params: dict[str, Any], epsilon: float) -> httpx.Response:
    body: dict[str, Any] = {"collaboration": COLLABORATION, "epsilon": epsilon}
    body.update({"sql": params["sql"]} if template == "sql" else {"template": template, "params": params})
    return httpx.post(f"{gateway.url}/v1/queries", json=body, headers=bearer(key), timeout=60)


def _pairs(body: dict[str, Any], exact: ExactResult) -> list[tuple[float, float]]:
    """(released, exact) for every released count or credit, matched row by row.

    Templates release partitions; the shown numbers are sums of their cells, so the exact side
    is the same sums of the exact cells (written out here, independently of the presenter).
    """
    rows = records(body)
    template = body["template"]
    if template == "funnel":
        return _zip([r["persons"] for r in rows], _exact_funnel(exact))
    if template == "attribution":
        credit = exact.part("credit")
        by_value: dict[str, int] = {}
        for cell, v in zip(credit.cells, credit.values, strict=True):
            by_value[cell[0]] = by_value.get(cell[0], 0) + v
        assert [r[exact.dimensions[0]] for r in rows[:-1]] == list(by_value)
        return _zip([r["credited_sales"] for r in rows], [v / 1000 for v in by_value.values()] + [sum(credit.values) / 1000])
    if template == "overlap":
        venn = dict(zip(exact.part("venn").cells, exact.part("venn").values, strict=True))
        out = []
        for r in rows:
            a, b = r["dataset_a"], r["dataset_b"]
            exact_a, exact_b, both = (venn[(a, b, "a_only")] + venn[(a, b, "both")], venn[(a, b, "b_only")] + venn[(a, b, "both")], venn[(a, b, "both")])
            out += [(r[k], e) for k, e in (("persons_a", exact_a), ("persons_b", exact_b), ("shared", both)) if r[k] is not None]
        return out
    if template == "lifecycle":
        ending = dict(zip(exact.part("ending").cells, exact.part("ending").values, strict=True))
        by = exact.dimensions[0]
        return _zip([r["contracts_ending"] for r in rows], [ending[(r[by], "not_seen")] + ending[(r[by], "seen_again")] for r in rows])
    return [pair for p in exact.parts for pair in _zip([r[p.name] for r in rows], p.values)]


def _exact_funnel(exact: ExactResult) -> list[int]:
    """Persons reaching each stage per cohort group: the cells of that stage and every later one (financed after sale)."""
    part = exact.part("reached")
    stages: list[str] = list(exact.meta["stages"])
    value = dict(zip(part.cells, part.values, strict=True))
    out = []
    for group in dict.fromkeys(c[1:] for c in part.cells):
        steps = stages[:-1] if stages[-1] == "financed" else stages
        out += [sum(value[(s, *group)] for s in stages[k:]) for k in range(len(steps))]
        if stages[-1] == "financed":
            out.append(value[("financed", *group)])
    return out


def _zip(released: list[Any], exact: list[float]) -> list[tuple[float, float]]:
    assert len(released) == len(exact), "released cells must match the public domain one to one"
    return [(r, e) for r, e in zip(released, exact, strict=True) if r is not None]


def _check_private(body_text: str, forbidden: set[str]) -> None:
    """No hid-shaped token at all, no identifier of any kind, in a query answer."""
    assert not hex64_tokens(body_text), "a 64-hex token (hid-shaped) in a released body"
    assert not RAW_ID.search(body_text) and "@" not in body_text
    assert not {t for t in re.findall(r"[\w.+-]+", body_text) if t in forbidden}


@pytest.mark.parametrize("run", range(len(RUNS)), ids=[f"{t}-{i % 2}" for i, (_, t, _) in enumerate(RUNS)])
def test_every_template_releases_noisy_values_with_intervals_never_exact(
    run: int, gateway: LiveGateway, analysts: dict[str, str], oracle: ExactOracle, forbidden: set[str]
) -> None:
    partner, template, params = RUNS[run]
    response = _post(gateway, analysts[partner], template, params, epsilon=0.5)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["epsilon_charged"] == 0.5 and body["cached"] is False
    _check_private(response.text, forbidden)
    assert check_intervals(body) >= 1
    assert all(n["scale"] > 0 and n["ci95"] > 0 and n["mechanism"] for n in body["noise"])
    pairs = _pairs(body, oracle.exact(partner, template, params))
    assert pairs, "something must be released"
    # Each noisy cell is exact with probability ~0.25 at scale 2: with three Venn cells all exact 1.5 % of the time.
    # Demand a difference only where that chance is negligible (more than 3 cells).
    assert len(pairs) <= 3 or any(abs(r - e) > 1e-9 for r, e in pairs), f"every released value equals the exact answer: {pairs}"


def test_fresh_epsilon_gives_fresh_noise_never_the_exact_answer(gateway: LiveGateway, analysts: dict[str, str], oracle: ExactOracle) -> None:
    """Same question at two epsilons: two different noisy vectors, neither equal to the truth."""
    params = {"dimensions": ["model"]}
    exact = _exact_funnel(oracle.exact(NORTH, "funnel", params))
    first, second = (_post(gateway, analysts[NORTH], "funnel", params, eps).json() for eps in (0.3, 0.31))
    a, b = ([r["persons"] for r in records(x)] for x in (first, second))
    assert a != b and a != exact and b != exact


def test_other_endpoints_return_no_hid_row_or_identifier(
    collab: Collab, gateway: LiveGateway, analysts: dict[str, str], forbidden: set[str]
) -> None:
    """The stored result, budget, policy and audit pages: hashes appear, hids and raw ids never."""
    released = _post(gateway, analysts[BRAND], "overlap", {"datasets": "all"}, 0.2).json()
    compliance = collab.mint(BRAND, "compliance")
    bodies = [
        httpx.get(f"{gateway.url}/v1/queries/{released['query_id']}", headers=bearer(analysts[BRAND])),
        httpx.get(f"{gateway.url}/v1/budget", params={"collaboration": COLLABORATION}, headers=bearer(analysts[BRAND])),
        httpx.get(f"{gateway.url}/v1/policies/{COLLABORATION}", headers=bearer(analysts[BRAND])),
        httpx.get(f"{gateway.url}/v1/audit", params={"limit": 1000}, headers=bearer(compliance)),
    ]
    for response in bodies:
        assert response.status_code == 200, response.text
        assert not hex64_tokens(response.text) & forbidden
        assert not RAW_ID.search(response.text)
    assert bodies[0].json()["rows"] == released["rows"]
    assert not hex64_tokens(bodies[0].text) and not hex64_tokens(bodies[1].text)


@pytest.mark.parametrize(
    ("template", "params", "code"),
    [
        ("attribution", {"model": "last_touch", "by": "campaign"}, "policy.template_not_allowed"),
        ("lifecycle", {**WINDOW, "by": "product"}, "policy.template_not_allowed"),
        ("sql", {"sql": "SELECT model, COUNT(DISTINCT pid) FROM northside_dealers__sales GROUP BY model"}, "policy.template_not_allowed"),
        ("overlap", {"datasets": ["northside-dealers.sales", "aurora-financial.contracts"]}, "policy.join_not_approved"),
    ],
)
def test_dealer_cannot_run_what_its_role_is_not_granted(
    template: str, params: dict[str, Any], code: str, collab: Collab, gateway: LiveGateway, analysts: dict[str, str]
) -> None:
    spent = _spent(collab, NORTH)
    body = check_problem(_post(gateway, analysts[NORTH], template, params, 0.5), code)
    assert body["status"] == 403
    assert _spent(collab, NORTH) == spent, "a refused query must cost nothing"


def test_finance_analyst_cannot_run_brand_only_templates(gateway: LiveGateway, analysts: dict[str, str]) -> None:
    check_problem(_post(gateway, analysts[FIN], "attribution", {}, 0.5), "policy.template_not_allowed")


@pytest.mark.parametrize("role", ["uploader", "compliance"])
def test_uploader_and_compliance_keys_cannot_query(role: str, collab: Collab, gateway: LiveGateway) -> None:
    key = collab.mint(BRAND, role)
    check_problem(_post(gateway, key, "funnel", {}, 0.5), "auth.forbidden")
    check_problem(httpx.get(f"{gateway.url}/v1/queries/q_0000000000000000", headers=bearer(key)), "auth.forbidden")


def test_epsilon_above_the_cap_is_refused_and_costs_nothing(collab: Collab, gateway: LiveGateway, analysts: dict[str, str]) -> None:
    spent = _spent(collab, LAKE)
    body = check_problem(_post(gateway, analysts[LAKE], "funnel", {}, 1.000001), "policy.epsilon_above_cap")
    assert "1.000001" in body["detail"] and _spent(collab, LAKE) == spent
    assert _post(gateway, analysts[LAKE], "funnel", {}, 1.0).status_code == 200


def test_a_result_is_only_visible_to_the_partner_that_asked(gateway: LiveGateway, analysts: dict[str, str]) -> None:
    mine = _post(gateway, analysts[NORTH], "funnel", {"dimensions": ["month"]}, 0.2).json()
    check_problem(httpx.get(f"{gateway.url}/v1/queries/{mine['query_id']}", headers=bearer(analysts[LAKE])), "query.not_found")
    assert httpx.get(f"{gateway.url}/v1/queries/{mine['query_id']}", headers=bearer(analysts[NORTH])).json()["rows"] == mine["rows"]


def test_brand_threshold_binds_every_count_over_brand_data(gateway: LiveGateway, analysts: dict[str, str], oracle: ExactOracle) -> None:
    """aurora-motors' [restrictions] min_threshold 25 (policy: 20): no released count over its data is below 25,
    while small exact cells exist (so suppression is exercised). The sharp 20-vs-25 contrast is in test_release_consent."""
    params = {"dimensions": ["model", "month"]}
    body = _post(gateway, analysts[NORTH], "funnel", params, 1.0).json()
    released = [r["persons"] for r in records(body) if r["persons"] is not None]
    exact = _exact_funnel(oracle.exact(NORTH, "funnel", params))
    assert released and min(released) >= 25
    assert body["suppressed_cells"] > 0 and sum(1 for v in exact if v < 20) > 0


def test_a_cached_result_never_crosses_into_a_scope_that_could_not_compute_it(gateway: LiveGateway, analysts: dict[str, str]) -> None:
    """The brand may join sales with contracts, dealers may not (policy joins: contracts, roles [brand, finance]).
    A dealer asking the question the brand asked must get its own answer, without the financed branch."""
    assert "financed" in _stages(gateway, "brand") and "financed" not in _stages(gateway, "dealer")
    brand = _post(gateway, analysts[BRAND], "funnel", {}, 0.45).json()
    assert brand["cached"] is False and "financed" in {r["stage"] for r in records(brand)}
    dealer = _post(gateway, analysts[NORTH], "funnel", {}, 0.45).json()
    assert "financed" not in {r["stage"] for r in records(dealer)}, "a dealer received the contract-based financed branch"
    assert dealer["cached"] is False and any("financed" in n for n in dealer["notes"])


def _stages(gateway: LiveGateway, role: str) -> list[str]:
    """The cohort funnel's stages in a role's scope (deterministic: no data, no noise)."""
    from datetime import UTC, datetime

    from cleanroom.engine import compile_query
    from cleanroom.gateway.release import build_scope
    from cleanroom.partners import load_partners
    from cleanroom.policy import active_policy

    partners = load_partners(gateway.config.partners)
    policy = active_policy(COLLABORATION, gateway.config.policies, gateway.config.store, partners)
    scope = build_scope(policy, partners, role, policy.template_rule("funnel"), datetime.now(UTC))
    return list(compile_query("funnel", {}, scope).meta["stages"])


def _spent(collab: Collab, partner: str) -> str:
    rows = [c for c in collab.ledger().charges(COLLABORATION) if c["partner"] == partner]
    return ",".join(c["query_id"] for c in rows)
