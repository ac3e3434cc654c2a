"""The typed client against the real app in-process; its models mirror the server's; it imports no server code."""

from __future__ import annotations

import ast
import socket
from pathlib import Path

import httpx
import pytest
from _gateway_helpers import Mint
from pydantic import BaseModel

import cleanroom.client as client_pkg
from cleanroom.client import AuditPage, Budget, Client, Health, NoiseInfo, Policy, QueryResult, UploadReceipt, error_from_response
from cleanroom.client import _models as client_models
from cleanroom.errors import AuthError, BudgetError, ConfigError, PolicyError, QueryError, UploadError
from cleanroom.gateway import models as server_models

TWINS: list[tuple[type[BaseModel], type[BaseModel]]] = [
    (server_models.QueryResponse, QueryResult),
    (server_models.NoiseInfo, NoiseInfo),
    (server_models.BudgetResponse, Budget),
    (server_models.UploadResponse, UploadReceipt),
    (server_models.PolicyResponse, Policy),
    (server_models.AuditPage, AuditPage),
    (server_models.AuditEntryOut, client_models.AuditEntry),
    (server_models.HealthResponse, Health),
    (server_models.ReportPlan, client_models.ReportPlan),
    (server_models.ReportSectionPlan, client_models.ReportSectionPlan),
    (server_models.ReportRecipient, client_models.ReportRecipient),
    (server_models.DatasetFreshness, client_models.DatasetFreshness),
    (server_models.ExplainResponse, client_models.Explanation),
    (server_models.ExpectedAccuracy, client_models.ExpectedAccuracy),
    (server_models.PartPlanOut, client_models.PartPlanOut),
]


@pytest.mark.parametrize(("server", "client"), TWINS, ids=[c.__name__ for _, c in TWINS])
def test_client_models_mirror_the_server(server: type[BaseModel], client: type[BaseModel]) -> None:
    assert list(server.model_fields) == list(client.model_fields)
    for name, field in server.model_fields.items():
        assert field.is_required() == client.model_fields[name].is_required(), name
    for example in server.model_config.get("json_schema_extra", {}).get("examples", []):  # type: ignore[union-attr]
        client.model_validate(example)


def test_client_imports_no_server_module(repo: Path) -> None:
    allowed = ("cleanroom.errors", "cleanroom.client")
    for path in (repo / "cleanroom" / "client").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                assert not name.startswith("cleanroom") or name.startswith(allowed), f"{path.name} imports {name}"


def test_health_and_audit_in_process(transport: httpx.BaseTransport, mint: Mint) -> None:
    with Client("http://testserver", mint("aurora-financial", "compliance"), transport=transport) as c:
        assert c.health().status == "ok"
        page = c.audit()
        assert page.chain_ok and page.entries[0].event == "apikey.create"
        assert page.entries[0].details["partner"] == "aurora-financial"
        assert c.audit(after=page.entries[-1].seq).entries == []


@pytest.mark.parametrize(
    ("role", "call", "error", "code"),
    [
        ("analyst", lambda c: c.audit(), AuthError, "auth.forbidden"),
        ("uploader", lambda c: c.query("aurora-2026", "funnel", {}, 0.5), AuthError, "auth.forbidden"),
        ("analyst", lambda c: c.query("aurora-2026", "funnel", {}, -2.0), BudgetError, "budget.invalid_epsilon"),
        ("analyst", lambda c: c.sql("aurora-2026", "", 0.5), QueryError, "query.invalid"),
        ("analyst", lambda c: c.query("aurora-2026", "funnel", {}, 0.5), PolicyError, "policy.not_active"),
        ("analyst", lambda c: c.budget("aurora-2026"), PolicyError, "policy.not_active"),
        ("analyst", lambda c: c.get_query("../audit"), QueryError, "query.no_endpoint"),
        ("compliance", lambda c: c.policy("aurora-2026"), PolicyError, "policy.not_active"),
    ],
)
def test_problems_come_back_as_cleanroom_errors(transport: httpx.BaseTransport, mint: Mint, role: str, call, error: type, code: str) -> None:  # type: ignore[no-untyped-def]
    with Client("http://testserver", mint("aurora-motors", role), transport=transport) as c, pytest.raises(error) as exc:
        call(c)
    assert exc.value.code == code


def test_bad_key_and_upload_errors(transport: httpx.BaseTransport, mint: Mint, tmp_path: Path) -> None:
    with Client("http://testserver", "crk_" + "q" * 43, transport=transport) as c:
        assert c.health().status == "ok"
        with pytest.raises(AuthError) as exc:
            c.budget("aurora-2026")
    assert exc.value.code == "auth.invalid"
    (tmp_path / "x.arrow").write_bytes(b"ARROW1")
    (tmp_path / "x.manifest.json").write_text("{}")
    with Client("http://testserver", mint("lakeside-autos", "uploader"), transport=transport) as c, pytest.raises(UploadError) as up:
        c.upload("sales", tmp_path / "x.arrow", tmp_path / "x.manifest.json")
    assert up.value.code == "upload.manifest_invalid" and "partner" in up.value.message


def test_unreachable_gateway_is_a_clear_config_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with Client(f"http://127.0.0.1:{port}", "crk_x", timeout=2) as c, pytest.raises(ConfigError) as exc:
        c.health()
    assert exc.value.code == "config.invalid" and str(port) in exc.value.message


def test_non_problem_and_unknown_code_responses() -> None:
    request = httpx.Request("GET", "http://gw/v1/budget")
    html = httpx.Response(502, headers={"content-type": "text/html"}, content=b"<h1>Bad gateway</h1>", request=request)
    assert error_from_response(html).code == "internal.invariant"
    future = httpx.Response(418, headers={"content-type": "application/problem+json"}, json={"code": "tea.pot", "detail": "short and stout"}, request=request)
    err = error_from_response(future)
    assert err.code == "internal.invariant" and "tea.pot" in err.message
    known = httpx.Response(429, headers={"content-type": "application/problem+json"}, json={"code": "budget.exhausted", "detail": "d", "details": {"code": 1}}, request=request)
    err = error_from_response(known)
    assert isinstance(err, BudgetError) and err.details == {"code": 1}


def test_public_surface_is_explicit() -> None:
    assert sorted(client_pkg.__all__) == sorted(n for n in dir(client_pkg) if not n.startswith("_") and n not in {"annotations"})
    assert "crk_secret" not in repr(Client("http://x", "crk_secret"))
