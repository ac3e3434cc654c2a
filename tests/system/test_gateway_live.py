"""The gateway over real HTTP (uvicorn on loopback): health, auth, roles, the one error shape,
the CLI's key commands on the live store, and the typed client."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest
from _live_helpers import LiveGateway, bearer, check_problem
from typer.testing import CliRunner

from cleanroom.audit import AuditLog
from cleanroom.cli.main import app as cli
from cleanroom.client import Client
from cleanroom.crypto import new_signing_key, public_key_text
from cleanroom.errors import AuthError, PolicyError, UploadError
from cleanroom.manifest import Manifest
from cleanroom.partners import load_partner, set_public_key

Mint = Callable[[str, str], str]
QUERY = {"collaboration": "aurora-2026", "template": "funnel", "params": {}, "epsilon": 0.5}


def _audit(gw: LiveGateway) -> AuditLog:
    return AuditLog(gw.config.store / "audit.jsonl")


def _prepared(tmp_path: Path, partners: Path, rows: int) -> tuple[Path, Path]:
    """A real Arrow file of lakeside-autos' ``leads`` schema with a signed manifest."""
    ds = load_partner(partners / "lakeside-autos.toml").dataset("leads")
    values: dict[str, Any] = {"string": "web", "timestamp": datetime(2026, 4, 1), "int64": 1, "bool": True, "date": datetime(2026, 4, 1).date()}
    columns = {n: ([f"{i:064x}" for i in range(rows)] if n == "hid" else [values[c.type]] * rows) for n, c in ds.columns.items()}
    path = tmp_path / "leads.arrow"
    table = pa.table(columns, schema=ds.arrow_schema())
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    manifest = tmp_path / "leads.manifest.json"
    key = new_signing_key()
    set_public_key(partners, "lakeside-autos", "uploader", public_key_text(key))  # the gateway reads partner files per upload
    Manifest.new("lakeside-autos", "leads", path, ds.schema_hash(), rows).signed_by(key).write(manifest)
    return path, manifest


def test_health_over_http_reveals_no_server_or_timing(live_gateway: LiveGateway) -> None:
    response = httpx.get(f"{live_gateway.url}/healthz")
    assert response.status_code == 200 and response.json()["status"] == "ok"
    assert "server" not in response.headers
    assert not [h for h in response.headers if "timing" in h.lower() or "x-process" in h.lower()]


def test_every_failure_route_has_the_one_shape(live_gateway: LiveGateway, mint: Mint, tmp_path: Path) -> None:
    """datasette's test_error_shape: drive each way a request can fail, check one shape for all."""
    url = live_gateway.url
    analyst, uploader, compliance = (mint("aurora-motors", r) for r in ("analyst", "uploader", "compliance"))
    revoked_id, revoked = live_gateway.keys.create_key("aurora-motors", "analyst", actor="test")
    live_gateway.keys.revoke_key(revoked_id, actor="test")
    arrow, manifest = _prepared(tmp_path, live_gateway.config.partners, rows=3)
    files = {"arrow": arrow.read_bytes(), "manifest": manifest.read_bytes()}
    (tmp_path / "big").mkdir()
    big_arrow, big_manifest = _prepared(tmp_path / "big", live_gateway.config.partners, rows=4000)
    big = {"arrow": big_arrow.read_bytes(), "manifest": big_manifest.read_bytes()}
    lakeside = bearer(mint("lakeside-autos", "uploader"))
    cases: list[tuple[str, str, dict[str, Any], str]] = [
        ("GET", "/v1/budget?collaboration=aurora-2026", {}, "auth.missing"),
        ("GET", "/v1/budget?collaboration=aurora-2026", {"headers": bearer("crk_" + "n" * 43)}, "auth.invalid"),
        ("GET", "/v1/budget?collaboration=aurora-2026", {"headers": bearer(revoked)}, "auth.invalid"),
        ("GET", "/v1/audit", {"headers": bearer(analyst)}, "auth.forbidden"),
        ("POST", "/v1/queries", {"headers": bearer(uploader), "json": QUERY}, "auth.forbidden"),
        ("POST", "/v1/queries", {"headers": bearer(analyst), "json": {**QUERY, "template": None}}, "query.invalid"),
        ("POST", "/v1/queries", {"headers": bearer(analyst), "json": {**QUERY, "epsilon": 0}}, "budget.invalid_epsilon"),
        ("POST", "/v1/queries", {"headers": {**bearer(analyst), "Content-Type": "application/json"}, "content": b"["}, "query.invalid"),
        ("POST", "/v1/queries", {"headers": bearer(analyst), "json": {**QUERY, "params": {"p": "x" * 20_000}}}, "query.invalid"),
        ("POST", "/v1/queries", {"headers": bearer(analyst), "json": QUERY}, "policy.not_active"),
        ("GET", "/v1/queries/q_9", {"headers": bearer(analyst)}, "query.not_found"),
        ("GET", "/v1/policies/aurora-2026", {"headers": bearer(compliance)}, "policy.not_active"),
        ("GET", "/v1/audit?limit=0", {"headers": bearer(compliance)}, "query.invalid"),
        ("GET", "/v1/nowhere", {}, "query.no_endpoint"),
        ("PUT", "/v1/queries", {"headers": bearer(analyst)}, "query.no_endpoint"),
        ("POST", "/v1/datasets/leads/uploads", {"headers": bearer(uploader), "files": files}, "partner.unknown_dataset"),
        ("POST", "/v1/datasets/leads/uploads", {"headers": bearer(analyst), "files": files}, "auth.forbidden"),
        ("POST", "/v1/datasets/leads/uploads", {"headers": lakeside, "files": {"arrow": b"x"}}, "query.invalid"),
        ("POST", "/v1/datasets/leads/uploads", {"headers": lakeside, "files": {**files, "manifest": b"{}"}}, "upload.manifest_invalid"),
        ("POST", "/v1/datasets/leads/uploads", {"headers": lakeside, "files": big}, "upload.too_large"),
    ]
    with httpx.Client(base_url=url) as http:
        for method, path, kwargs, code in cases:
            body = check_problem(http.request(method, path, **kwargs), code)
            assert body["instance"] == path.split("?")[0], (method, path)
            if body["status"] >= 500:  # type: ignore[operator]
                assert body["detail"] == body["title"] and "details" not in body


def test_auth_failures_are_audited_over_http(live_gateway: LiveGateway) -> None:
    audit = _audit(live_gateway)
    before = sum(1 for _ in audit.entries())
    stolen = "crk_" + "s" * 43
    for _ in range(10):  # anonymous failures are aggregated per client and minute: the 1st and the 10th are written
        httpx.get(f"{live_gateway.url}/v1/audit", headers=bearer(stolen))
    entries = [e for e in list(audit.entries())[before:] if e.event == "auth.failure"]
    assert entries and all((e.details["reason"], e.details["where"]) == ("invalid", "GET /v1/audit") for e in entries)
    assert entries[-1].details["failures_in_window"] in (10, 20), "the running count, not one entry per request"
    assert stolen not in audit.path.read_text()
    assert audit.verify().ok


def test_cli_keys_work_against_the_live_server(live_gateway: LiveGateway) -> None:
    runner = CliRunner()
    where = ["--store", str(live_gateway.config.store), "--partners", str(live_gateway.config.partners)]
    made = runner.invoke(cli, ["apikey", "create", "--partner", "northside-dealers", "--role", "compliance", "--label", "dpo", *where, "--json"])
    assert made.exit_code == 0, made.stderr
    created = json.loads(made.stdout)
    with Client(live_gateway.url, created["api_key"]) as client:
        page = client.audit(limit=1000)
        assert page.chain_ok
        assert all(e.actor.startswith("northside-dealers") or e.details.get("partner") == "northside-dealers" for e in page.entries)
        assert any(e.event == "apikey.create" and e.details["key_id"] == created["key_id"] for e in page.entries)
        listed = runner.invoke(cli, ["apikey", "list", *where, "--json"])
        assert created["key_id"] in listed.stdout and created["api_key"] not in listed.stdout
        assert runner.invoke(cli, ["apikey", "revoke", created["key_id"], *where]).exit_code == 0
        with pytest.raises(AuthError) as exc:
            client.audit()
        assert exc.value.code == "auth.invalid" and created["key_id"] in exc.value.message


def test_client_over_real_http(live_gateway: LiveGateway, mint: Mint, tmp_path: Path) -> None:
    arrow, manifest = _prepared(tmp_path, live_gateway.config.partners, rows=5)
    with Client(live_gateway.url, mint("lakeside-autos", "uploader")) as uploader:
        assert uploader.health().status == "ok"
        receipt = uploader.upload("leads", arrow, manifest)
        assert (receipt.partner, receipt.dataset, receipt.version) == ("lakeside-autos", "leads", 1)
        with pytest.raises(UploadError) as bad:
            uploader.upload("sales", arrow, manifest)
        assert bad.value.code == "upload.manifest_invalid" and "sales" in bad.value.message
    with Client(live_gateway.url, mint("aurora-financial", "analyst")) as analyst:
        with pytest.raises(AuthError) as forbidden:
            analyst.audit()
        assert forbidden.value.code == "auth.forbidden"
        with pytest.raises(PolicyError) as inactive:
            analyst.query("aurora-2026", "lifecycle", {"window": "2026-Q4"}, 0.5)
        assert inactive.value.code == "policy.not_active"


def test_cli_query_over_real_http(live_gateway: LiveGateway, mint: Mint) -> None:
    runner = CliRunner()
    base = ["query", "--url", live_gateway.url, "--collaboration", "aurora-2026", "--template", "funnel", "--param", "by=[\"model\"]", "--json"]
    bad = runner.invoke(cli, [*base, "--api-key", "crk_" + "b" * 43])
    assert bad.exit_code == 2 and json.loads(bad.stdout)["error"]["code"] == "auth.invalid"
    inactive = runner.invoke(cli, base, env={"CLEANROOM_API_KEY": mint("aurora-motors", "report")})
    assert inactive.exit_code == 2 and json.loads(inactive.stdout)["error"]["code"] == "policy.not_active"
