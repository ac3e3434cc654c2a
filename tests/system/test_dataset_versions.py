"""Replays per partner and dataset, idempotent re-uploads, and rollback, against a real gateway on loopback.

One collaboration, one server (module scope). The story, in order: northside-dealers uploads
lakeside-autos' exact leads bytes (and nonce) under its own manifest: not a replay, and nothing
about lakeside in the answer. Lakeside re-uploads its active leads: idempotent. Lakeside uploads
a version 2 of its leads; its compliance officer rolls back to version 1 over HTTP: the released
numbers and the engine's exact aggregates are version 1's again, and the rollback is audited.
Re-uploading version 2's own manifest makes version 2 active again (a rollback via upload). The
CLI (``cleanroom upload --gateway``, ``cleanroom datasets rollback|list``) runs against the same
server through typer's CliRunner.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _live_helpers import LiveGateway, bearer, check_problem
from collab import COLLABORATION, Collab, ExactOracle, build_collab, serve, write_csv
from typer.testing import CliRunner

from cleanroom.aggregate import ExactResult
from cleanroom.cli.main import app
from cleanroom.client import Client
from cleanroom.ingest import UploadPair
from cleanroom.manifest import Manifest, manifest_path

LAKE, NORTH = "lakeside-autos", "northside-dealers"
ARROW = "application/vnd.apache.arrow.file"
PARAMS = {"datasets": [f"{LAKE}.leads", f"{LAKE}.sales"]}
QUERY = {"collaboration": COLLABORATION, "template": "overlap", "epsilon": 0.5, "params": PARAMS}


@pytest.fixture(scope="module")
def collab(tmp_path_factory: pytest.TempPathFactory, repo: Path, synth_4k: Path) -> Collab:
    return build_collab(tmp_path_factory.mktemp("versions") / "collab", repo, raw_source=synth_4k)


@pytest.fixture(scope="module")
def exact_v1(collab: Collab) -> ExactResult:
    """The engine's exact overlap over lakeside's version 1, before the gateway changes anything."""
    return _exact(collab)


def _exact(collab: Collab) -> ExactResult:
    """The exact answer on a fresh private copy of the store as it is now (the copy is removed after)."""
    oracle = ExactOracle(collab)
    try:
        return oracle.exact(LAKE, "overlap", PARAMS)
    finally:
        oracle.close()
        shutil.rmtree(collab.root / "oracle-store")


@pytest.fixture(scope="module")
def gateway(collab: Collab, exact_v1: ExactResult) -> Iterator[LiveGateway]:
    with serve(collab.config()) as live:
        yield live


def _post(gateway: LiveGateway, key: str, dataset: str, arrow: Path, manifest: Path) -> httpx.Response:
    files = {"arrow": (arrow.name, arrow.read_bytes(), ARROW), "manifest": (manifest.name, manifest.read_bytes(), "application/json")}
    return httpx.post(f"{gateway.url}/v1/datasets/{dataset}/uploads", files=files, headers=bearer(key), timeout=60)


def _query(gateway: LiveGateway, key: str) -> dict[str, Any]:
    response = httpx.post(f"{gateway.url}/v1/queries", json=QUERY, headers=bearer(key), timeout=60)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _rollback(gateway: LiveGateway, key: str, partner: str, dataset: str, version: int) -> httpx.Response:
    return httpx.post(f"{gateway.url}/v1/datasets/{partner}/{dataset}/rollback", json={"version": version}, headers=bearer(key), timeout=60)


def _events(collab: Collab, event: str) -> list[Any]:
    return [e for e in collab.audit().entries() if e.event == event]


def _cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def _key_file(collab: Collab, partner: str, role: str) -> Path:
    path = collab.root / f"{partner}-{role}-{len(list(collab.root.glob('*.apikey')))}.apikey"
    path.write_text(collab.mint(partner, role) + "\n")
    path.chmod(0o600)
    return path


# --- replays are per partner and dataset ------------------------------------------------------------


def test_another_partners_identical_bytes_and_nonce_are_not_a_replay(collab: Collab, gateway: LiveGateway) -> None:
    lake = collab.uploads(LAKE)["leads"]
    theirs = Manifest.read(lake.manifest)
    folder = collab.root / "north-copies-lake"
    folder.mkdir()
    arrow = folder / "leads.arrow"
    arrow.write_bytes(lake.arrow.read_bytes())
    schema_hash = collab.partners()[NORTH].dataset("leads").schema_hash()
    mine = Manifest.new(NORTH, "leads", arrow, schema_hash, theirs.row_count, allow_shrink=True).model_copy(update={"nonce": theirs.nonce})
    mine.signed_by(collab.signing_key(NORTH, "uploader")).write(manifest_path(arrow))
    assert mine.sha256 == theirs.sha256 and mine.nonce == theirs.nonce
    response = _post(gateway, collab.mint(NORTH, "uploader"), "leads", arrow, manifest_path(arrow))
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["partner"], body["dataset"], body["version"], body["replayed"], body["rolled_back_from"]) == (NORTH, "leads", 2, False, None)
    assert body["warnings"] and "salt_fingerprint" in body["warnings"][0], "a manifest without a fingerprint is accepted with a warning"
    assert LAKE not in response.text


def test_a_nonce_reused_for_other_bytes_is_refused_without_naming_anyone_else(collab: Collab, gateway: LiveGateway) -> None:
    lake = collab.uploads(LAKE)["sales"]
    own = Manifest.read(collab.uploads(NORTH)["sales"].manifest)
    folder = collab.root / "north-nonce-reuse"
    folder.mkdir()
    arrow = folder / "sales.arrow"
    arrow.write_bytes(lake.arrow.read_bytes())
    schema_hash = collab.partners()[NORTH].dataset("sales").schema_hash()
    forged = Manifest.new(NORTH, "sales", arrow, schema_hash, Manifest.read(lake.manifest).row_count, allow_shrink=True)
    forged.model_copy(update={"nonce": own.nonce}).signed_by(collab.signing_key(NORTH, "uploader")).write(manifest_path(arrow))
    response = _post(gateway, collab.mint(NORTH, "uploader"), "sales", arrow, manifest_path(arrow))
    body = check_problem(response, "upload.replayed")
    assert f"{NORTH}.sales version 1" in str(body["detail"]) and LAKE not in response.text


def test_the_same_upload_again_is_idempotent(collab: Collab, gateway: LiveGateway) -> None:
    analyst = collab.mint(LAKE, "analyst")
    before = _query(gateway, analyst)
    pair = collab.uploads(LAKE)["consent"]
    response = _post(gateway, collab.mint(LAKE, "uploader"), "consent", pair.arrow, pair.manifest)
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["version"], body["replayed"], body["rolled_back_from"]) == (1, True, None)
    assert body["sha256"] == Manifest.read(pair.manifest).sha256
    after = _query(gateway, analyst)
    assert after["cached"] is True and after["rows"] == before["rows"], "nothing changed: the same release"
    [entry] = [e for e in _events(collab, "upload.idempotent") if e.details["partner"] == LAKE]
    assert entry.details == {"partner": LAKE, "dataset": "consent", "version": 1, "sha256": body["sha256"]}


# --- rollback -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def leads_v2(collab: Collab) -> UploadPair:
    """Lakeside's CRM export lost its last 150 leads: a new version, prepared on its own machine."""
    raw = collab.raw / LAKE / "leads.csv"
    with raw.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    write_csv(raw, rows[0], rows[1:-150])
    return collab.reprepare(LAKE, "v2")["leads"]


@pytest.fixture(scope="module")
def story(collab: Collab, gateway: LiveGateway, leads_v2: UploadPair) -> dict[str, Any]:
    """v1 query -> upload v2 -> v2 query -> compliance rolls back to v1 over HTTP -> query again."""
    analyst = collab.mint(LAKE, "analyst")
    out: dict[str, Any] = {"v1": _query(gateway, analyst)}
    with Client(gateway.url, collab.mint(LAKE, "uploader")) as uploader:
        out["receipt"] = uploader.upload("leads", leads_v2.arrow, leads_v2.manifest)
    out["v2"] = _query(gateway, analyst)
    compliance = collab.mint(LAKE, "compliance")
    out["rollback"] = _rollback(gateway, compliance, LAKE, "leads", 1)
    out["after"] = _query(gateway, analyst)
    with Client(gateway.url, compliance) as officer:
        out["versions"] = officer.dataset_versions(LAKE, "leads")
    return out


def test_rollback_by_compliance_restores_version_one(story: dict[str, Any], collab: Collab, exact_v1: ExactResult) -> None:
    assert story["receipt"].version == 2 and not story["receipt"].replayed
    assert story["v2"]["rows"] != story["v1"]["rows"] and story["v2"]["cached"] is False
    response = story["rollback"]
    assert response.status_code == 200, response.text
    assert response.json() == {"partner": LAKE, "dataset": "leads", "from_version": 2, "to_version": 1, "changed": True,
                               "rows": story["versions"].versions[0].rows, "sha256": Manifest.read(collab.uploads(LAKE)["leads"].manifest).sha256}
    after = story["after"]
    assert after["rows"] == story["v1"]["rows"] and after["cached"] is True and after["epsilon_charged"] == 0, \
        "version 1's data again: its release, never version 2's numbers"
    assert [(v.version, v.active, v.retained) for v in story["versions"].versions] == [(1, True, True), (2, False, True)]
    assert _exact(collab) == exact_v1, "the engine's exact aggregates are version 1's again"
    [entry] = [e for e in _events(collab, "dataset.rollback") if e.details.get("via") == "api"]
    assert entry.actor.startswith(f"{LAKE}/kid_")
    assert {k: entry.details[k] for k in ("partner", "dataset", "from_version", "to_version")} == \
        {"partner": LAKE, "dataset": "leads", "from_version": 2, "to_version": 1}


@pytest.mark.parametrize("role", ["analyst", "uploader", "report"])
def test_only_compliance_keys_may_roll_back(role: str, collab: Collab, gateway: LiveGateway, story: dict[str, Any]) -> None:
    response = _rollback(gateway, collab.mint(LAKE, role), LAKE, "leads", 2)
    check_problem(response, "auth.forbidden")
    versions = httpx.get(f"{gateway.url}/v1/datasets/{LAKE}/leads/versions", headers=bearer(collab.mint(LAKE, role)), timeout=30)
    check_problem(versions, "auth.forbidden")


def test_a_compliance_key_manages_only_its_own_partner(collab: Collab, gateway: LiveGateway, story: dict[str, Any]) -> None:
    other = collab.mint(NORTH, "compliance")
    for response in (_rollback(gateway, other, LAKE, "leads", 2), _rollback(gateway, other, LAKE, "nosuch", 7),
                     httpx.get(f"{gateway.url}/v1/datasets/{LAKE}/leads/versions", headers=bearer(other), timeout=30)):
        body = check_problem(response, "auth.forbidden")
        assert "version" not in str(body["detail"]) and "rows" not in response.text
    assert httpx.get(f"{gateway.url}/v1/datasets/{LAKE}/leads/versions", headers=bearer(collab.mint(LAKE, "analyst")), timeout=30).status_code == 403


def test_rolling_back_to_an_unknown_version_is_not_found(collab: Collab, gateway: LiveGateway, story: dict[str, Any]) -> None:
    check_problem(_rollback(gateway, collab.mint(LAKE, "compliance"), LAKE, "leads", 9), "store.not_found")
    response = _rollback(gateway, collab.mint(LAKE, "compliance"), LAKE, "leads", 1)
    assert response.status_code == 200 and response.json()["changed"] is False, "the active version: nothing to do"


def test_reuploading_an_older_manifest_rolls_back_to_it(collab: Collab, gateway: LiveGateway, story: dict[str, Any], leads_v2: UploadPair) -> None:
    """Version 1 is active after the story; lakeside re-sends version 2's own signed upload: version 2 is active again."""
    response = _post(gateway, collab.mint(LAKE, "uploader"), "leads", leads_v2.arrow, leads_v2.manifest)
    assert response.status_code == 201, response.text
    assert {k: response.json()[k] for k in ("version", "replayed", "rolled_back_from")} == {"version": 2, "replayed": True, "rolled_back_from": 1}
    again = _query(gateway, collab.mint(LAKE, "analyst"))
    assert again["rows"] == story["v2"]["rows"] and again["cached"] is True
    entry = [e for e in _events(collab, "dataset.rollback") if e.details.get("via") == "upload"][-1]
    assert {k: entry.details[k] for k in ("partner", "dataset", "from_version", "to_version")} == \
        {"partner": LAKE, "dataset": "leads", "from_version": 1, "to_version": 2}


# --- the CLI against the live server -----------------------------------------------------------------


def test_cli_upload_twice_is_idempotent_and_exits_0(collab: Collab, gateway: LiveGateway) -> None:
    key_file = _key_file(collab, "aurora-financial", "uploader")
    folder = collab.prepared / "aurora-financial"
    args = ["upload", str(folder), "--gateway", gateway.url, "--api-key-file", str(key_file), "--json"]
    for _ in range(2):
        code, out, err = _cli(*args)
        assert code == 0, (out, err)
        results = json.loads(out)
        assert {r["status"] for r in results} == {"already_active"} and len(results) == len(list(folder.glob("*.manifest.json")))
    code, out, err = _cli("upload", str(folder), "--api-key-file", str(key_file), env={"CLEANROOM_GATEWAY": gateway.url})
    assert code == 0 and "already active" in out, (out, err)


def test_cli_upload_of_a_new_version_then_a_refusal(collab: Collab, gateway: LiveGateway) -> None:
    key_file = _key_file(collab, "aurora-motors", "uploader")
    fresh = collab.reprepare("aurora-motors", "cli-same-bytes")  # same raw data: same bytes, new nonces
    pair = fresh["web_sessions"]
    code, out, err = _cli("upload", str(pair.manifest), "--gateway", gateway.url, "--api-key-file", str(key_file), "--json")
    assert code == 1, (out, err)
    [result] = json.loads(out)
    assert result["status"] == "refused" and result["error"]["code"] == "upload.replayed"
    code, _, err = _cli("upload", str(pair.manifest), "--gateway", gateway.url, "--api-key-file", str(key_file))
    assert code == 1 and "upload.replayed" in err and "aurora-motors.web_sessions version 1" in " ".join(err.split())


def test_cli_upload_exit_5_when_the_gateway_refuses_or_is_gone(collab: Collab, gateway: LiveGateway, tmp_path: Path) -> None:
    folder = collab.prepared / "aurora-financial"
    bad = tmp_path / "bad.apikey"
    bad.write_text("crk_" + "x" * 43)
    code, _, err = _cli("upload", str(folder), "--gateway", gateway.url, "--api-key-file", str(bad))
    assert code == 5 and "auth.invalid" in err
    code, out, _ = _cli("upload", str(folder), "--gateway", gateway.url, "--api-key-file", str(bad), "--json")
    assert code == 5 and [r["error"]["code"] for r in json.loads(out)] == ["auth.invalid"], "stops at the first: the key will not improve"
    analyst = _key_file(collab, "aurora-financial", "analyst")
    assert _cli("upload", str(folder), "--gateway", gateway.url, "--api-key-file", str(analyst))[0] == 5
    from collab import free_port

    code, _, err = _cli("upload", str(folder), "--gateway", f"http://127.0.0.1:{free_port()}", "--api-key-file", str(analyst), "--retries", "0")
    assert code == 5 and "cannot reach the gateway" in " ".join(err.split())


def test_cli_rollback_and_list_over_the_gateway(collab: Collab, gateway: LiveGateway, story: dict[str, Any]) -> None:
    key_file = _key_file(collab, LAKE, "compliance")
    common = ["--gateway", gateway.url, "--api-key-file", str(key_file)]
    code, out, err = _cli("datasets", "list", f"{LAKE}.leads", *common, "--json")
    assert code == 0, (out, err)
    active = json.loads(out)[f"{LAKE}.leads"]["active"]
    target = 1 if active == 2 else 2
    code, out, err = _cli("datasets", "rollback", f"{LAKE}.leads", "--to-version", str(target), *common, "--json")
    assert code == 0, (out, err)
    assert json.loads(out) | {} == {"partner": LAKE, "dataset": "leads", "from_version": active, "to_version": target, "changed": True,
                                    "rows": json.loads(out)["rows"], "sha256": json.loads(out)["sha256"]}
    code, _, err = _cli("datasets", "rollback", f"{LAKE}.leads", "--to-version", "42", *common)
    assert code == 1 and "store.not_found" in err
    uploader = _key_file(collab, LAKE, "uploader")
    code, _, err = _cli("datasets", "rollback", f"{LAKE}.leads", "--to-version", "1", "--gateway", gateway.url, "--api-key-file", str(uploader))
    assert code == 5 and "auth.forbidden" in err
