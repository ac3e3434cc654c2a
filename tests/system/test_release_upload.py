"""Uploads over HTTP (``POST /v1/datasets/{name}/uploads``) run the same ingest code as the CLI:
a new signed file becomes a new version that the next query reads; the same signed upload again is
idempotent; a manifest nonce reused for other bytes, a file changed after signing, or a manifest
changed after signing is refused and changes nothing. (Rollback by re-upload and per-partner
replays: test_dataset_versions.py.)"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _live_helpers import LiveGateway, bearer, check_problem
from collab import COLLABORATION, Collab, build_collab, serve, write_csv

from cleanroom.client import Client
from cleanroom.crypto import sha256_file
from cleanroom.errors import UploadError
from cleanroom.ingest import UploadPair
from cleanroom.manifest import Manifest, manifest_path

LAKE = "lakeside-autos"
ARROW = "application/vnd.apache.arrow.file"
QUERY = {"collaboration": COLLABORATION, "template": "overlap", "epsilon": 0.5,
         "params": {"datasets": ["lakeside-autos.leads", "lakeside-autos.sales"]}}


@pytest.fixture(scope="module")
def collab(tmp_path_factory: pytest.TempPathFactory, repo: Path, synth_4k: Path) -> Collab:
    return build_collab(tmp_path_factory.mktemp("upload") / "collab", repo, raw_source=synth_4k)


@pytest.fixture(scope="module")
def gateway(collab: Collab) -> Iterator[LiveGateway]:
    with serve(collab.config()) as live:
        yield live


def _drop_rows(raw_csv: Path, drop: int) -> None:
    """The partner's CRM export changed: its last ``drop`` rows are gone."""
    with raw_csv.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert len(rows) > drop + 1
    write_csv(raw_csv, rows[0], rows[1:-drop])


def _post(gateway: LiveGateway, key: str, dataset: str, arrow: bytes, manifest: bytes) -> httpx.Response:
    files = {"arrow": ("upload.arrow", arrow, ARROW), "manifest": ("upload.manifest.json", manifest, "application/json")}
    return httpx.post(f"{gateway.url}/v1/datasets/{dataset}/uploads", files=files, headers=bearer(key), timeout=60)


def _query(gateway: LiveGateway, key: str) -> dict[str, Any]:
    response = httpx.post(f"{gateway.url}/v1/queries", json=QUERY, headers=bearer(key), timeout=60)
    assert response.status_code == 200, response.text
    return dict(response.json())


@pytest.fixture(scope="module")
def second_leads(collab: Collab) -> UploadPair:
    """Lakeside prepares a new version of its leads (fewer rows) on its own machine."""
    _drop_rows(collab.raw / LAKE / "leads.csv", drop=100)
    return collab.reprepare(LAKE, "v2")["leads"]


@pytest.fixture(scope="module")
def version_two(collab: Collab, gateway: LiveGateway, second_leads: UploadPair) -> dict[str, Any]:
    """Query, query again (cached), upload version 2 over HTTP with the typed client, query again."""
    analyst = collab.mint(LAKE, "analyst")
    before, again = _query(gateway, analyst), _query(gateway, analyst)
    with Client(gateway.url, collab.mint(LAKE, "uploader")) as uploader:
        receipt = uploader.upload("leads", second_leads.arrow, second_leads.manifest)
    return {"before": before, "again": again, "receipt": receipt, "after": _query(gateway, analyst)}


def test_upload_over_http_makes_a_new_version_the_next_query_reads(
    collab: Collab, second_leads: UploadPair, version_two: dict[str, Any]
) -> None:
    receipt, before, after = version_two["receipt"], version_two["before"], version_two["after"]
    assert version_two["again"]["cached"] is True
    assert (receipt.partner, receipt.dataset, receipt.version, receipt.sha256) == (LAKE, "leads", 2, sha256_file(second_leads.arrow))
    assert after["cached"] is False and after["epsilon_charged"] == 0.5, "new data: a new release, charged"
    assert before["rows"] != after["rows"]
    uploads = [e for e in collab.audit().entries() if e.event == "upload" and e.details["partner"] == LAKE and e.details["dataset"] == "leads"]
    assert [e.details["version"] for e in uploads] == [1, 2]
    assert uploads[-1].details["rows"] == json.loads(second_leads.manifest.read_text())["row_count"] < uploads[0].details["rows"]


def _nonce_reused(collab: Collab, dataset: str) -> UploadPair:
    """A validly signed manifest that reuses the nonce of lakeside's accepted version 1 of ``dataset`` for other bytes."""
    old = Manifest.read(collab.uploads(LAKE)[dataset].manifest)
    folder = collab.root / f"nonce-reused-{dataset}"
    folder.mkdir(exist_ok=True)
    arrow = folder / f"{dataset}.arrow"
    arrow.write_bytes(b"not the file that nonce was first signed for")
    forged = Manifest.new(LAKE, dataset, arrow, old.schema_hash, old.row_count).model_copy(update={"nonce": old.nonce})
    forged.signed_by(collab.signing_key(LAKE, "uploader")).write(manifest_path(arrow))
    return UploadPair(arrow=arrow, manifest=manifest_path(arrow))


def test_the_same_upload_again_is_idempotent(collab: Collab, gateway: LiveGateway, second_leads: UploadPair,
                                             version_two: dict[str, Any]) -> None:
    response = _post(gateway, collab.mint(LAKE, "uploader"), "leads", second_leads.arrow.read_bytes(), second_leads.manifest.read_bytes())
    assert response.status_code == 201, response.text
    assert {k: response.json()[k] for k in ("version", "replayed", "rolled_back_from")} == {"version": 2, "replayed": True, "rolled_back_from": None}
    again = _query(gateway, collab.mint(LAKE, "analyst"))
    assert again["rows"] == version_two["after"]["rows"] and again["cached"] is True, "version 2 stays active, nothing new"


def test_a_nonce_reused_for_other_bytes_is_refused(collab: Collab, gateway: LiveGateway, version_two: dict[str, Any]) -> None:
    pair = _nonce_reused(collab, "leads")
    response = _post(gateway, collab.mint(LAKE, "uploader"), "leads", pair.arrow.read_bytes(), pair.manifest.read_bytes())
    body = check_problem(response, "upload.replayed")
    assert response.status_code == 409 and "nonce" in body["detail"]
    assert _query(gateway, collab.mint(LAKE, "analyst"))["rows"] == version_two["after"]["rows"], "version 2 stays active"


@pytest.fixture(scope="module")
def new_sales(collab: Collab) -> UploadPair:
    """A new, validly signed version of Lakeside's sales (never accepted here: every test tampers with it)."""
    _drop_rows(collab.raw / LAKE / "sales.csv", drop=10)
    return collab.reprepare(LAKE, "sales-v2")["sales"]


@pytest.mark.parametrize(
    ("tamper", "code"),
    [
        ("flip_a_byte", "upload.manifest_invalid"),      # the file is not the one that was signed
        ("edit_row_count", "upload.signature_invalid"),  # the manifest is not the one that was signed
        ("sign_with_other_key", "upload.signature_invalid"),
    ],
)
def test_a_tampered_upload_is_refused_and_changes_nothing(
    tamper: str, code: str, collab: Collab, gateway: LiveGateway, new_sales: UploadPair
) -> None:
    pair = new_sales
    arrow, manifest = bytearray(pair.arrow.read_bytes()), json.loads(pair.manifest.read_text())
    if tamper == "flip_a_byte":
        arrow[len(arrow) // 2] ^= 0x01
    elif tamper == "edit_row_count":
        manifest["row_count"] -= 1
    else:
        other = collab.reprepare("aurora-motors", f"tamper-{tamper}")["web_sessions"]  # a real signature by the brand's uploader key
        manifest["signature"] = json.loads(other.manifest.read_text())["signature"]
    analyst = collab.mint(LAKE, "analyst")
    before = _query(gateway, analyst)
    response = _post(gateway, collab.mint(LAKE, "uploader"), "sales", bytes(arrow), json.dumps(manifest).encode())
    check_problem(response, code)
    again = _query(gateway, analyst)
    assert again["cached"] is True and again["rows"] == before["rows"], "a refused upload must leave the data as it was"
    rejected = [e for e in collab.audit().entries() if e.event == "upload.rejected" and e.details.get("code") == code]
    assert rejected and rejected[-1].details["partner"] == LAKE


def test_the_client_raises_the_server_error(collab: Collab, gateway: LiveGateway) -> None:
    pair = _nonce_reused(collab, "sales")
    with Client(gateway.url, collab.mint(LAKE, "uploader")) as uploader, pytest.raises(UploadError) as exc:
        uploader.upload("sales", pair.arrow, pair.manifest)
    assert exc.value.code == "upload.replayed"


def test_an_upload_refusal_does_not_reveal_server_paths(collab: Collab, gateway: LiveGateway) -> None:
    pair = _nonce_reused(collab, "sales")
    response = _post(gateway, collab.mint(LAKE, "uploader"), "sales", pair.arrow.read_bytes(), pair.manifest.read_bytes())
    check_problem(response, "upload.replayed")
    assert str(collab.root) not in response.text
