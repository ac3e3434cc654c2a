"""Fixtures for the gateway's in-process tests: a real app over a temp store, real keys, real audit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from _gateway_helpers import Mint, ProblemCheck, TestClient, check_problem
from fastapi import FastAPI

from cleanroom.crypto import new_secret
from cleanroom.gateway import ApiKeys, GatewayConfig, Limits, create_app
from cleanroom.settings import GatewaySecrets


@pytest.fixture()
def gateway_config(tmp_path: Path, partners_dir: Path) -> GatewayConfig:
    keys_file = tmp_path / "gateway.keys.json"
    GatewaySecrets(pepper=new_secret(), db_key=new_secret()).write(keys_file)
    return GatewayConfig(
        store=tmp_path / "store",
        partners=partners_dir,
        policies=tmp_path / "policies",
        keys_file=keys_file,
        limits=Limits(max_upload_bytes=64 * 1024, max_json_bytes=8 * 1024, max_manifest_bytes=4 * 1024),
    )


@pytest.fixture()
def app(gateway_config: GatewayConfig) -> FastAPI:
    return create_app(gateway_config)


@pytest.fixture()
def api(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture()
def transport(api: TestClient) -> httpx.BaseTransport:
    """The in-process transport of the test client, for ``cleanroom.client.Client``."""
    return api._transport


@pytest.fixture()
def keys(app: FastAPI) -> ApiKeys:
    return app.state.services.keys  # type: ignore[no-any-return]


@pytest.fixture()
def mint(keys: ApiKeys) -> Mint:
    """``mint(partner, role) -> plaintext key`` on the app's own key store."""

    def make(partner: str, role: str) -> str:
        return keys.create_key(partner, role, "test", actor="test")[1]

    return make


@pytest.fixture()
def problem() -> ProblemCheck:
    return check_problem
