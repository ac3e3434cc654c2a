"""``cleanroom admin ingest`` and ``cleanroom datasets`` (list, rollback on the store) through the real CLI app and real files."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from _uploads import PARTNER
from typer.testing import CliRunner

from cleanroom.audit import AuditLog
from cleanroom.cli.main import app
from cleanroom.errors import CleanroomError
from cleanroom.ingest import UploadPair, find_uploads
from cleanroom.manifest import Manifest
from cleanroom.settings import GatewaySecrets


@pytest.fixture()
def keys_file(tmp_path: Path, gateway_secrets: GatewaySecrets) -> Path:
    path = tmp_path / "gateway.keys"
    gateway_secrets.write(path)
    return path


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout


def test_upload_folder_then_list(tmp_path: Path, partners_dir: Path, keys_file: Path, build: Callable[..., UploadPair]) -> None:
    folder = tmp_path / "prepared"
    folder.mkdir()
    for dataset, rows in (("leads", 40), ("sales", 30), ("consent", 20)):
        pair = build(dataset, rows=rows)
        for f in (pair.arrow, pair.manifest):
            f.rename(folder / f.name)
    store = tmp_path / "store"
    common = ["--store", str(store), "--keys-file", str(keys_file)]
    code, out = _run("admin", "ingest", "--partner", PARTNER, str(folder), *common, "--partners", str(partners_dir), "--json")
    assert code == 0, out
    assert {(r["dataset"], r["version"], r["rows"]) for r in json.loads(out)} == {("leads", 1, 40), ("sales", 1, 30), ("consent", 1, 20)}
    code, out = _run("datasets", *common, "--json")
    assert code == 0 and set(json.loads(out)) == {f"{PARTNER}.leads", f"{PARTNER}.sales", f"{PARTNER}.consent"}
    assert [e.event for e in AuditLog(store / "audit.jsonl").entries()] == ["upload"] * 3
    code, out = _run("datasets", *common)
    assert code == 0 and "northside-dealers.sales" in out


def test_ingest_rejection_exits_2_with_code(tmp_path: Path, partners_dir: Path, keys_file: Path, build: Callable[..., UploadPair]) -> None:
    pair = build(rows=10)
    common = ["--store", str(tmp_path / "store"), "--keys-file", str(keys_file), "--partners", str(partners_dir)]
    assert _run("admin", "ingest", "--partner", PARTNER, str(pair.arrow), *common)[0] == 0
    code, out = _run("admin", "ingest", "--partner", PARTNER, str(pair.manifest), *common, "--json")
    assert code == 0 and json.loads(out)[0]["replayed"] is True, "the same signed upload again is idempotent"
    pair.arrow.write_bytes(pair.arrow.read_bytes()[:-10])  # the manifest's nonce with other bytes
    code, out = _run("admin", "ingest", "--partner", PARTNER, str(pair.manifest), *common, "--json")
    assert code == 2 and json.loads(out)["error"]["code"] == "upload.manifest_invalid"


def test_find_uploads_refuses_paths_in_manifest(build: Callable[..., UploadPair]) -> None:
    pair = build(rows=5)
    assert find_uploads(pair.arrow.parent) == [pair]
    doc = Manifest.read(pair.manifest).model_copy(update={"file": "../../etc/passwd"})
    doc.write(pair.manifest)
    with pytest.raises(CleanroomError) as exc:
        find_uploads(pair.manifest)
    assert exc.value.code == "upload.manifest_invalid" and exc.value.details["key"] == "file"


def test_help_is_there() -> None:
    for command in (["admin", "ingest"], ["datasets", "list"], ["datasets", "rollback"]):
        code, out = _run(*command, "--help")
        assert code == 0 and "--store" in out
    code, out = _run("--help")
    assert code == 0 and "admin" in out and "upload" in out
