"""The client's upload: streamed with progress, retried on connection errors and 502/503/504 (the gateway
answers a retried, already accepted upload as ``replayed``), and its new models mirror the server's."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from pydantic import BaseModel

from cleanroom.client import Client, DatasetVersionInfo, DatasetVersions, Rollback
from cleanroom.errors import ConfigError, StoreError
from cleanroom.gateway import models as server_models

TWINS: list[tuple[type[BaseModel], type[BaseModel]]] = [
    (server_models.RollbackResponse, Rollback),
    (server_models.DatasetVersions, DatasetVersions),
    (server_models.DatasetVersionOut, DatasetVersionInfo),
]
RECEIPT = {"partner": "northside-dealers", "dataset": "leads", "version": 3, "sha256": "a" * 64}


@pytest.mark.parametrize(("server", "client"), TWINS, ids=[c.__name__ for _, c in TWINS])
def test_client_models_mirror_the_server(server: type[BaseModel], client: type[BaseModel]) -> None:
    assert list(server.model_fields) == list(client.model_fields)
    for name, field in server.model_fields.items():
        assert field.is_required() == client.model_fields[name].is_required(), name
    for example in server.model_config.get("json_schema_extra", {}).get("examples", []):  # type: ignore[union-attr]
        client.model_validate(example)


@pytest.fixture()
def pair(tmp_path: Path) -> tuple[Path, Path]:
    arrow, manifest = tmp_path / "leads.arrow", tmp_path / "leads.manifest.json"
    arrow.write_bytes(bytes(range(256)) * 1024)  # 256 KiB: several multipart reads
    manifest.write_text("{}")
    return arrow, manifest


def _client(responses: list[httpx.Response | Exception], seen: list[bytes]) -> Client:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.read())
        answer = responses.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return Client("http://gateway.test", "crk_test", transport=httpx.MockTransport(handler))


def test_retries_then_gets_the_receipt(pair: tuple[Path, Path]) -> None:
    seen: list[bytes] = []
    retried: list[tuple[int, str]] = []
    progress: list[tuple[int, int]] = []
    busy = httpx.Response(503, headers={"retry-after": "0"})
    answers: list[httpx.Response | Exception] = [httpx.ConnectError("refused"), busy, httpx.Response(201, json={**RECEIPT, "replayed": True})]
    with _client(answers, seen) as client:
        receipt = client.upload("leads", *pair, retries=3, backoff_s=0.01, progress=lambda a, b: progress.append((a, b)),
                                on_retry=lambda n, why, _: retried.append((n, why)))
    assert receipt.replayed and receipt.version == 3
    assert [n for n, _ in retried] == [1, 2] and retried[1][1] == "HTTP 503"
    size = pair[0].stat().st_size
    assert len(seen) == 3 and all(pair[0].read_bytes() in body for body in seen), "each attempt sends the whole file"
    assert progress[-1] == (size, size)


def test_gives_up_after_the_retries(pair: tuple[Path, Path]) -> None:
    problem = {"type": "https://cleanroom.dev/errors/store.unavailable", "title": "t", "status": 503, "detail": "disk", "code": "store.unavailable"}
    busy = httpx.Response(503, json=problem, headers={"content-type": "application/problem+json"})
    with _client([busy, busy], []) as client, pytest.raises(StoreError) as exc:
        client.upload("leads", *pair, retries=1, backoff_s=0.01)
    assert exc.value.code == "store.unavailable"
    with _client([httpx.ConnectError("refused")], []) as client, pytest.raises(ConfigError) as gone:
        client.upload("leads", *pair)
    assert gone.value.code == "config.invalid"


def test_a_refusal_is_not_retried(pair: tuple[Path, Path]) -> None:
    problem = {"type": "x", "title": "t", "status": 409, "detail": "replayed", "code": "upload.replayed"}
    refused = httpx.Response(409, content=json.dumps(problem).encode(), headers={"content-type": "application/problem+json"})
    seen: list[bytes] = []
    with _client([refused], seen) as client, pytest.raises(Exception) as exc:
        client.upload("leads", *pair, retries=5, backoff_s=0.01)
    assert getattr(exc.value, "code", "") == "upload.replayed" and len(seen) == 1
