"""Authorization escapes between partners and roles (OWASP API Security Top 10: broken object-level
and function-level authorization), by a malicious partner holding one kind of key.

Defence: every key is bound to one partner and one role; routes check the role before reading a
body; results are fetched by id only within the partner that paid for them; an upload must be
signed by the uploader key of the partner whose key sends it. Expected: the documented problem,
nothing released, nothing charged, nothing changed.
"""

from __future__ import annotations

import json

import httpx
import pytest
from _live_helpers import bearer, check_problem
from adversary import BRAND, FIN, LAKE, NORTH, World
from collab import COLLABORATION

ARROW = "application/vnd.apache.arrow.file"


def _upload(world: World, key: str, dataset: str, partner_files: str) -> httpx.Response:
    pair = world.collab.uploads(partner_files)[dataset]
    files = {"arrow": ("x.arrow", pair.arrow.read_bytes(), ARROW), "manifest": ("x.manifest.json", pair.manifest.read_bytes(), "application/json")}
    return world.client.post(f"/v1/datasets/{dataset}/uploads", files=files, headers=bearer(key))


def test_another_partners_query_id_is_not_found(worlds: dict[bool, World]) -> None:
    """IDOR on results: Lakeside fetches Northside's paid result by id."""
    world = worlds[True]
    mine = world.query(NORTH, {"template": "funnel", "params": {"dimensions": ["region"]}, "epsilon": 0.25}).json()
    for other in (LAKE, BRAND, FIN):
        check_problem(world.client.get(f"/v1/queries/{mine['query_id']}", headers=bearer(world.analysts[other])), "query.not_found")
    check_problem(world.client.get("/v1/queries/q_0000000000000000", headers=bearer(world.analysts[NORTH])), "query.not_found")


@pytest.mark.parametrize("role", ["uploader", "compliance", "report"])
def test_non_analyst_keys_cannot_query(worlds: dict[bool, World], role: str) -> None:
    """An uploader, compliance or report key running ad hoc queries (function-level authorization)."""
    world = worlds[True]
    key = world.collab.mint(BRAND, role)
    before = len(world.charged())
    check_problem(world.query(BRAND, {"template": "funnel", "params": {}, "epsilon": 0.5}, key=key), "auth.forbidden")
    assert len(world.charged()) == before


@pytest.mark.parametrize("role", ["analyst", "compliance", "report"])
def test_only_uploader_keys_upload(worlds: dict[bool, World], role: str) -> None:
    world = worlds[True]
    check_problem(_upload(world, world.collab.mint(LAKE, role), "leads", LAKE), "auth.forbidden")


def test_an_uploader_cannot_upload_another_partners_dataset(worlds: dict[bool, World]) -> None:
    """Lakeside's uploader sends Northside's (validly signed) sales file: refused before ingest."""
    world = worlds[True]
    key = world.collab.mint(LAKE, "uploader")
    body = check_problem(_upload(world, key, "sales", NORTH), "auth.forbidden")
    assert NORTH in body["detail"]
    check_problem(_upload(world, key, "web_sessions", BRAND), "partner.unknown_dataset")


def test_a_compliance_key_cannot_touch_another_partners_versions(worlds: dict[bool, World]) -> None:
    world = worlds[True]
    key = world.collab.mint(LAKE, "compliance")
    listing = world.client.get(f"/v1/datasets/{NORTH}/sales/versions", headers=bearer(key))
    rollback = world.client.post(f"/v1/datasets/{NORTH}/sales/rollback", json={"version": 1}, headers=bearer(key))
    for response in (listing, rollback):
        assert response.status_code in (403, 404), response.text
        check_problem(response, response.json()["code"])
    analyst = world.client.post(f"/v1/datasets/{LAKE}/leads/rollback", json={"version": 1}, headers=bearer(world.analysts[LAKE]))
    check_problem(analyst, "auth.forbidden")


def test_a_dealer_cannot_reach_brand_only_templates_or_contract_joins(worlds: dict[bool, World]) -> None:
    world = worlds[True]
    check_problem(world.query(NORTH, {"sql": "SELECT COUNT(DISTINCT pid) FROM northside_dealers__sales", "epsilon": 0.5}),
                  "policy.template_not_allowed")
    check_problem(world.query(NORTH, {"template": "overlap", "params": {"datasets": ["northside-dealers.sales", "aurora-financial.contracts"]},
                                      "epsilon": 0.5}), "policy.join_not_approved")
    check_problem(world.query(FIN, {"template": "attribution", "params": {}, "epsilon": 0.5}), "policy.template_not_allowed")


def test_a_report_key_cannot_release_a_section_to_itself_ad_hoc(worlds: dict[bool, World]) -> None:
    """The report key runs only the policy's sections, and an analyst key cannot run those."""
    world = worlds[True]
    check_problem(world.client.post(f"/v1/reports/{COLLABORATION}/2026-10/sections/funnel_by_model", headers=bearer(world.analysts[BRAND])),
                  "auth.forbidden")


@pytest.mark.parametrize("header", [{}, {"Authorization": "Bearer crk_" + "A" * 43}, {"Authorization": "Basic Zm9vOmJhcg=="}])
def test_missing_or_forged_bearer_keys(worlds: dict[bool, World], header: dict[str, str]) -> None:
    world = worlds[True]
    response = world.client.post("/v1/queries", json={"collaboration": COLLABORATION, "template": "funnel", "epsilon": 0.5}, headers=header)
    assert response.status_code == 401
    assert json.loads(response.text)["code"] in ("auth.missing", "auth.invalid")
