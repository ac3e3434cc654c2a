"""The app in-process: routes, roles, the one problem+json shape, body limits, audit visibility."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import FastAPI

from cleanroom.errors import CODES, InternalError, QueryError
from cleanroom.gateway.problems import http_error, problem_for, validation_error

from _gateway_helpers import Mint, ProblemCheck, TestClient, bearer

QUERY = {"collaboration": "aurora-2026", "template": "funnel", "params": {"by": ["model"]}, "epsilon": 0.5}


def test_health_needs_no_key_and_reports_no_timing(api: TestClient) -> None:
    response = api.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": "0.1.0"}
    assert not any("timing" in h.lower() for h in response.headers)


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v1/queries"), ("GET", "/v1/queries/q_1"), ("GET", "/v1/budget?collaboration=aurora-2026"),
     ("POST", "/v1/datasets/sales/uploads"), ("GET", "/v1/policies/aurora-2026"), ("GET", "/v1/audit")],
)
def test_every_protected_route_needs_a_key(api: TestClient, problem: ProblemCheck, method: str, path: str) -> None:
    missing = api.request(method, path)
    problem(missing, "auth.missing")
    assert missing.headers["www-authenticate"].startswith("Bearer")
    problem(api.request(method, path, headers={"Authorization": "Basic dTpw"}), "auth.missing")
    problem(api.request(method, path, headers=bearer("crk_" + "x" * 43)), "auth.invalid")


def test_auth_failures_are_audited_without_the_key(app: FastAPI, api: TestClient) -> None:
    bogus = "crk_" + "Z" * 43
    api.get("/v1/audit", headers=bearer(bogus))
    api.get("/v1/audit")
    entries = list(app.state.services.audit.entries())
    assert [(e.event, e.details["reason"], e.details["where"]) for e in entries] == [
        ("auth.failure", "invalid", "GET /v1/audit"),
        ("auth.failure", "missing", "GET /v1/audit"),
    ]
    assert bogus not in app.state.services.audit.path.read_text()


@pytest.mark.parametrize(
    ("role", "method", "path"),
    [("uploader", "POST", "/v1/queries"), ("compliance", "POST", "/v1/queries"), ("analyst", "GET", "/v1/audit"),
     ("report", "GET", "/v1/audit"), ("analyst", "POST", "/v1/datasets/sales/uploads"), ("uploader", "GET", "/v1/budget?collaboration=aurora-2026"),
     ("uploader", "GET", "/v1/queries/q_1")],
)
def test_roles_are_enforced_and_refusals_audited(app: FastAPI, api: TestClient, mint: Mint, problem: ProblemCheck, role: str, method: str, path: str) -> None:
    key = mint("northside-dealers", role)
    body = problem(api.request(method, path, headers=bearer(key), json=QUERY if method == "POST" else None), "auth.forbidden")
    assert role in str(body["detail"])
    last = list(app.state.services.audit.entries())[-1]
    assert (last.event, last.details["reason"], last.details["role"]) == ("auth.failure", "forbidden", role)
    assert last.actor.startswith("northside-dealers/kid_")


def test_nothing_is_released_without_an_active_policy(api: TestClient, mint: Mint, problem: ProblemCheck) -> None:
    key = mint("aurora-motors", "analyst")
    for method, path, body, code in [("POST", "/v1/queries", QUERY, "policy.not_active"), ("GET", "/v1/queries/q_1", None, "query.not_found"),
                                     ("GET", "/v1/budget?collaboration=aurora-2026", None, "policy.not_active"),
                                     ("GET", "/v1/policies/aurora-2026", None, "policy.not_active")]:
        response = api.request(method, path, headers=bearer(key), json=body)
        problem(response, code)
        assert "Traceback" not in response.text


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [({**QUERY, "epsilon": -1}, "budget.invalid_epsilon", "body.epsilon"),
     ({**QUERY, "epsilon": "NaN"}, "budget.invalid_epsilon", "body.epsilon"),
     ({**QUERY, "epsilon": True}, "budget.invalid_epsilon", "body.epsilon"),  # JSON true is not 1.0
     ({**QUERY, "epsilon": "0.5"}, "budget.invalid_epsilon", "body.epsilon"),  # a string is not a number
     ({k: v for k, v in QUERY.items() if k != "collaboration"}, "query.invalid", "body.collaboration"),
     ({**QUERY, "sql": "SELECT 1"}, "query.invalid", "body"),
     ({**QUERY, "collaboration": "Aurora 2026!"}, "query.invalid", "body.collaboration"),
     ({**QUERY, "surprise": 1}, "query.invalid", "body.surprise")],
)
def test_invalid_query_bodies_name_the_field(api: TestClient, mint: Mint, problem: ProblemCheck, body: dict[str, Any], code: str, field: str) -> None:
    out = problem(api.post("/v1/queries", headers=bearer(mint("aurora-motors", "analyst")), json=body), code)
    fields = [e["field"] for e in out["details"]["errors"]]  # type: ignore[index]
    assert field in fields
    assert str(out["detail"]).startswith(fields[0])


def test_non_json_body_and_unknown_routes(api: TestClient, mint: Mint, problem: ProblemCheck) -> None:
    key = mint("aurora-motors", "analyst")
    problem(api.post("/v1/queries", headers={**bearer(key), "Content-Type": "application/json"}, content=b"{nope"), "query.invalid")
    problem(api.get("/v1/nothing-here"), "query.no_endpoint")
    problem(api.delete("/healthz"), "query.no_endpoint")
    problem(api.get("/v1/queries/bad id!", headers=bearer(key)), "query.invalid")


def test_oversized_json_body_is_refused_before_reading(api: TestClient, mint: Mint, problem: ProblemCheck) -> None:
    big = {**QUERY, "params": {"pad": "x" * 10_000}}
    out = problem(api.post("/v1/queries", headers=bearer(mint("aurora-motors", "analyst")), json=big), "query.invalid")
    assert out["details"]["limit"] == 8 * 1024  # type: ignore[index]


def test_audit_shows_only_the_callers_partner(api: TestClient, mint: Mint, keys: Any) -> None:
    motors = mint("aurora-motors", "compliance")
    lakeside = mint("lakeside-autos", "compliance")
    revoked_id, revoked = keys.create_key("aurora-motors", "analyst", actor="t")
    keys.revoke_key(revoked_id, actor="t")
    api.get("/v1/budget?collaboration=aurora-2026", headers=bearer(revoked))
    page = api.get("/v1/audit", headers=bearer(motors)).json()
    assert page["chain_ok"] is True and page["next_after"] is None
    seen = [(e["event"], e["details"].get("partner")) for e in page["entries"]]
    assert seen == [("apikey.create", "aurora-motors"), ("apikey.create", "aurora-motors"), ("apikey.revoke", "aurora-motors"), ("auth.failure", "aurora-motors")]
    other = api.get("/v1/audit", headers=bearer(lakeside)).json()
    assert [(e["event"], e["details"]["partner"]) for e in other["entries"]] == [("apikey.create", "lakeside-autos")]


def test_audit_pages(api: TestClient, mint: Mint) -> None:
    key = mint("aurora-motors", "compliance")
    for _ in range(4):
        mint("aurora-motors", "analyst")
    first = api.get("/v1/audit?limit=2", headers=bearer(key)).json()
    assert [e["seq"] for e in first["entries"]] == [0, 1] and first["next_after"] == 1
    rest = api.get(f"/v1/audit?limit=10&after={first['next_after']}", headers=bearer(key)).json()
    assert [e["seq"] for e in rest["entries"]] == [2, 3, 4] and rest["next_after"] is None


def test_problem_for_hides_server_error_text() -> None:
    secret_path = "/srv/store/cleanroom.duckdb"
    p = problem_for(QueryError("query.failed", f"duckdb crashed reading {secret_path}", path=secret_path), "/v1/queries")
    assert p.status == 500 and secret_path not in p.model_dump_json() and p.details is None
    p = problem_for(InternalError("internal.invariant", "boom"))
    assert p.detail == CODES["internal.invariant"][1]


def test_validation_and_http_error_mapping() -> None:
    err = validation_error([{"loc": ("body", "epsilon"), "msg": "bad", "input": "SECRET"}, {"loc": ("body", "epsilon"), "msg": "worse"}])
    assert err.code == "budget.invalid_epsilon" and "SECRET" not in json.dumps(err.details) and "(and 1 more)" in err.message
    assert validation_error([{"loc": ("query", "limit"), "msg": "too big"}]).code == "query.invalid"
    from starlette.exceptions import HTTPException

    assert http_error(HTTPException(405)).code == "query.no_endpoint"
    assert http_error(HTTPException(413)).code == "upload.too_large"
    assert http_error(HTTPException(418)).code == "query.invalid"
    assert http_error(HTTPException(502, "upstream said /etc/x")).message == "internal error"


def test_openapi_documents_examples_security_and_problems(api: TestClient) -> None:
    spec = api.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert len(schemas["QueryRequest"]["examples"]) == 2
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    query_post = spec["paths"]["/v1/queries"]["post"]
    assert "application/problem+json" in query_post["responses"]["429"]["content"]
    upload = spec["paths"]["/v1/datasets/{dataset}/uploads"]["post"]
    assert set(upload["requestBody"]["content"]["multipart/form-data"]["schema"]["required"]) == {"arrow", "manifest"}
    assert api.get("/docs").status_code == 200
