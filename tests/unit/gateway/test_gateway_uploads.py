"""The upload route: auth before the body, size limits, manifest checks, staging cleaned up."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pytest
from _gateway_helpers import Mint, ProblemCheck, TestClient, bearer
from fastapi import FastAPI

from cleanroom.crypto import new_signing_key, public_key_text
from cleanroom.manifest import Manifest
from cleanroom.partners import load_partner, set_public_key

PARTNER, DATASET = "northside-dealers", "sales"


def _prepared(tmp_path: Path, partners_dir: Path, rows: int = 3, *, register: bool = False, **manifest_overrides: str) -> tuple[Path, Path]:
    """A real Arrow IPC file of the declared schema and a signed manifest for it.

    With ``register`` the signing key becomes the partner's uploader key (a valid upload);
    without it the signature is by a stranger's key.
    """
    ds = load_partner(partners_dir / f"{PARTNER}.toml").dataset(DATASET)
    columns = {
        "hid": [f"{i:064x}" for i in range(rows)],
        "sold_at": [datetime(2026, 3, 1)] * rows,
        "dealer_id": ["NS-01"] * rows,
        "model": ["aster"] * rows,
        "region": ["north"] * rows,
        "price_band": ["30-45k"] * rows,
        "price_eur": [38_000] * rows,
        "salesperson": ["S7"] * rows,
    }
    path = tmp_path / "sales.arrow"
    table = pa.table(columns, schema=ds.arrow_schema())
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    manifest = Manifest.new(PARTNER, DATASET, path, ds.schema_hash(), rows).model_copy(update=manifest_overrides)
    manifest_file = tmp_path / "sales.manifest.json"
    key = new_signing_key()
    if register:
        set_public_key(partners_dir, PARTNER, "uploader", public_key_text(key))
    manifest.signed_by(key).write(manifest_file)
    return path, manifest_file


def _files(arrow: Path, manifest: Path) -> dict[str, tuple[str, bytes, str]]:
    return {
        "arrow": (arrow.name, arrow.read_bytes(), "application/vnd.apache.arrow.file"),
        "manifest": (manifest.name, manifest.read_bytes(), "application/json"),
    }


@pytest.fixture()
def uploader(mint: Mint) -> dict[str, str]:
    return bearer(mint(PARTNER, "uploader"))


def _url(dataset: str = DATASET) -> str:
    return f"/v1/datasets/{dataset}/uploads"


def test_valid_upload_reaches_ingest_and_leaves_no_staging(
    app: FastAPI,
    api: TestClient,
    uploader: dict[str, str],
    problem: ProblemCheck,
    tmp_path: Path,
    partners_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    arrow, manifest = _prepared(tmp_path, partners_dir, register=True)
    with caplog.at_level(logging.ERROR, logger="cleanroom.gateway"):
        response = api.post(_url(), headers=uploader, files=_files(arrow, manifest))
    assert response.status_code in (200, 201), response.text
    assert response.json()["version"] == 1 and response.json()["partner"] == PARTNER
    assert not [r for r in caplog.records if r.exc_info]
    assert list(app.state.services.incoming.iterdir()) == []


def test_oversized_upload_is_refused_from_content_length(
    api: TestClient, uploader: dict[str, str], problem: ProblemCheck, tmp_path: Path, partners_dir: Path
) -> None:
    arrow, manifest = _prepared(tmp_path, partners_dir, rows=2000)
    assert arrow.stat().st_size > 64 * 1024
    out = problem(api.post(_url(), headers=uploader, files=_files(arrow, manifest)), "upload.too_large")
    assert out["details"]["limit"] == 64 * 1024  # type: ignore[index]


def test_missing_parts_and_foreign_manifests(
    api: TestClient, uploader: dict[str, str], problem: ProblemCheck, tmp_path: Path, partners_dir: Path
) -> None:
    arrow, manifest = _prepared(tmp_path, partners_dir)
    files = _files(arrow, manifest)
    out = problem(api.post(_url(), headers=uploader, files={"arrow": files["arrow"]}), "query.invalid")
    assert out["details"] == {"field": "body.manifest"}
    problem(api.post(_url(), headers=uploader, files={"manifest": files["manifest"]}), "query.invalid")
    problem(api.post(_url(), headers=uploader, files={**files, "manifest": ("m.json", b"{not json", "application/json")}), "upload.manifest_invalid")
    problem(api.post(_url("leads"), headers=uploader, files=files), "upload.manifest_invalid")
    problem(api.post(_url("contracts"), headers=uploader, files=files), "partner.unknown_dataset")


@pytest.mark.parametrize(("override", "code"), [({"partner": "lakeside-autos"}, "auth.forbidden"), ({"file": "../escape.arrow"}, "upload.manifest_invalid"), ({"file": ".."}, "upload.manifest_invalid")])
def test_manifest_must_speak_for_the_key_and_name_a_plain_file(
    app: FastAPI, api: TestClient, uploader: dict[str, str], problem: ProblemCheck, tmp_path: Path, partners_dir: Path, override: dict[str, str], code: str
) -> None:
    arrow, manifest = _prepared(tmp_path, partners_dir, **override)
    problem(api.post(_url(), headers=uploader, files=_files(arrow, manifest)), code)
    assert not (app.state.services.config.store / "escape.arrow").exists()
    assert list(app.state.services.incoming.iterdir()) == []


def test_upload_is_refused_before_the_body_for_a_bad_key(api: TestClient, problem: ProblemCheck, mint: Mint, tmp_path: Path, partners_dir: Path) -> None:
    arrow, manifest = _prepared(tmp_path, partners_dir)
    problem(api.post(_url(), files=_files(arrow, manifest)), "auth.missing")
    problem(api.post(_url(), headers=bearer(mint(PARTNER, "analyst")), files=_files(arrow, manifest)), "auth.forbidden")


def test_chunked_body_without_length_is_refused(api: TestClient, uploader: dict[str, str], problem: ProblemCheck) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        yield b"--x\r\n"

    response = api.post(_url(), headers={**uploader, "Content-Type": "multipart/form-data; boundary=x"}, content=chunks())
    assert "Content-Length" in str(problem(response, "query.invalid")["detail"])
