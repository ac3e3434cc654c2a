"""Re-uploading one's own earlier upload, and ``cleanroom datasets list|rollback`` on the store directly (operator)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from _uploads import PARTNER
from typer.testing import CliRunner

from cleanroom.audit import AuditLog
from cleanroom.cli.main import app
from cleanroom.ingest import UploadPair, ingest_upload
from cleanroom.settings import GatewaySecrets
from cleanroom.store import Store

LEADS = f"{PARTNER}.leads"


def test_reupload_of_an_older_manifest_is_an_audited_rollback(store: Store, partners_dir: Path, build: Callable[..., UploadPair],
                                                               tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit.jsonl")
    first, second = build(rows=100), build(rows=120)
    for pair in (first, second):
        ingest_upload(store, partners_dir, PARTNER, pair.arrow, pair.manifest, actor="test", audit=audit)
    back = ingest_upload(store, partners_dir, PARTNER, first.arrow, first.manifest, actor="test", audit=audit)
    assert (back.version, back.rows, back.replayed, back.rolled_back_from) == (1, 100, True, 2)
    assert store.active_versions()[LEADS].version == 1
    entry = list(audit.entries())[-1]
    assert entry.event == "dataset.rollback" and entry.actor == "test"
    assert {k: entry.details[k] for k in ("partner", "dataset", "from_version", "to_version", "via")} == \
        {"partner": PARTNER, "dataset": "leads", "from_version": 2, "to_version": 1, "via": "upload"}


def test_datasets_list_and_rollback_on_the_store(tmp_path: Path, partners_dir: Path, gateway_secrets: GatewaySecrets,
                                                  build: Callable[..., UploadPair]) -> None:
    keys_file = tmp_path / "gateway.keys"
    gateway_secrets.write(keys_file)
    common = ["--store", str(tmp_path / "store"), "--keys-file", str(keys_file)]
    for rows in (60, 80):
        pair = build(rows=rows)
        result = CliRunner().invoke(app, ["admin", "ingest", "--partner", PARTNER, str(pair.manifest), *common, "--partners", str(partners_dir)])
        assert result.exit_code == 0, result.output
    listed = CliRunner().invoke(app, ["datasets", "list", LEADS, *common, "--json"])
    assert listed.exit_code == 0, listed.output
    versions = json.loads(listed.stdout)[LEADS]
    assert versions["active"] == 2 and [(v["version"], v["rows"], v["retained"]) for v in versions["versions"]] == [(1, 60, True), (2, 80, True)]
    env = {"CLEANROOM_GATEWAY": ""}
    done = CliRunner().invoke(app, ["datasets", "rollback", LEADS, "--to-version", "1", *common, "--json"], env=env)
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout) | {"sha256": ""} == {"partner": PARTNER, "dataset": "leads", "from_version": 2, "to_version": 1, "changed": True,
                                                         "rows": 60, "sha256": ""}
    table = CliRunner().invoke(app, ["datasets", *common])
    assert table.exit_code == 0 and "*1" in table.stdout
    missing = CliRunner().invoke(app, ["datasets", "rollback", LEADS, "--to-version", "7", *common], env=env)
    assert missing.exit_code == 1 and "store.not_found" in missing.stderr
    [entry] = [e for e in AuditLog(tmp_path / "store" / "audit.jsonl").entries() if e.event == "dataset.rollback"]
    assert entry.actor.startswith("cli:") and entry.details["via"] == "cli" and entry.details["to_version"] == 1
