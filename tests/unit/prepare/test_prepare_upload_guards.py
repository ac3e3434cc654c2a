"""prepare's side of the upload guards: every manifest carries the salt's fingerprint (and, with
``--allow-shrink``, the signed permission to shrink), and a signing key that is not the partner's
registered uploader key is refused before anything is written. The last test runs real prepare
output through real ingest into a real encrypted store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from prepare_fixtures import PEOPLE, SHARED, Workspace, write_raw
from typer.testing import CliRunner

from cleanroom.cli import prepare as prepare_cli
from cleanroom.crypto import new_secret, public_key_text, read_signing_key, write_secret
from cleanroom.errors import CleanroomError, PrepareError
from cleanroom.manifest import Manifest
from cleanroom.partners import get_partner
from cleanroom.prepare import prepare_partner, salt_fingerprint
from cleanroom.prepare.uploader import key_fingerprint

NS, LS = "northside-dealers", "lakeside-autos"


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    root = typer.Typer()

    @root.callback()
    def _root() -> None:
        """cleanroom (test root)."""

    prepare_cli.register(root)
    return root


def _cli(app: typer.Typer, ws: Workspace, tmp_path: Path, out: Path, *extra: str, key: Path | None = None) -> tuple[int, str]:
    salt_file = tmp_path / "salt.hex"
    if not salt_file.exists():
        write_secret(salt_file, ws.salt)
    args = [
        "prepare", "--partner", NS, "--salt-file", str(salt_file), "--key", str(key or ws.keys[NS]),
        "--in", str(ws.raw), "--out", str(out), "--partners", str(ws.partners_dir), "--workers", "1", *extra,
    ]  # fmt: skip
    result = CliRunner().invoke(app, args)
    return result.exit_code, result.output


def test_every_manifest_carries_the_salt_fingerprint(workspace: Workspace, tmp_path: Path) -> None:
    partner = get_partner(workspace.partners_dir, NS)
    summary = prepare_partner(partner, workspace.salt, workspace.raw, tmp_path / "out", read_signing_key(workspace.keys[NS]), workers=1)
    assert summary.salt_fingerprint == salt_fingerprint(workspace.salt) and summary.allow_shrink is False
    for name, ds in summary.datasets.items():
        doc = json.loads((tmp_path / "out" / ds.manifest).read_text())
        assert doc["salt_fingerprint"] == summary.salt_fingerprint, name
        assert "allow_shrink" not in doc  # absent unless asked for
        assert Manifest.read(tmp_path / "out" / ds.manifest).verify(partner.public_key("uploader"))
    assert workspace.salt.hex() not in json.dumps(summary.model_dump(mode="json"))


def test_allow_shrink_flag_is_signed_into_every_manifest(app: typer.Typer, workspace: Workspace, tmp_path: Path) -> None:
    code, output = _cli(app, workspace, tmp_path, tmp_path / "out", "--allow-shrink")
    assert code == 0, output
    assert "--allow-shrink" in output
    partner = get_partner(workspace.partners_dir, NS)
    for name in partner.datasets:
        manifest = Manifest.read(tmp_path / "out" / f"{name}.manifest.json")
        assert manifest.allow_shrink is True and manifest.verify(partner.public_key("uploader"))
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["allow_shrink"] is True


def test_another_partners_key_is_refused_before_anything_is_written(workspace: Workspace, tmp_path: Path) -> None:
    partner = get_partner(workspace.partners_dir, NS)
    lakeside_key = read_signing_key(workspace.keys[LS])
    with pytest.raises(PrepareError) as exc:
        prepare_partner(partner, workspace.salt, workspace.raw, tmp_path / "out", lakeside_key, workers=1)
    err = exc.value
    assert err.code == "prepare.wrong_key" and err.status == 400
    assert NS in err.message
    assert key_fingerprint(public_key_text(lakeside_key)) in err.message
    assert key_fingerprint(partner.keys.uploader) in err.message
    assert public_key_text(lakeside_key) not in err.message  # a prefix, enough to tell the keys apart
    assert not (tmp_path / "out").exists()


def test_wrong_key_through_the_cli(app: typer.Typer, workspace: Workspace, tmp_path: Path) -> None:
    code, output = _cli(app, workspace, tmp_path, tmp_path / "out", "--json", key=workspace.keys[LS])
    assert code == 2 and json.loads(output)["error"]["code"] == "prepare.wrong_key"
    assert not (tmp_path / "out").exists()


def test_prepared_shrink_is_refused_at_ingest_unless_allowed(app: typer.Typer, workspace: Workspace, tmp_path: Path) -> None:
    """Real prepare output into a real store: v1, then a 90 % smaller export refused, then accepted with --allow-shrink;
    a file prepared with another salt is refused."""
    from cleanroom.ingest import find_uploads, ingest_upload
    from cleanroom.settings import GatewaySecrets
    from cleanroom.store import Store

    def upload_all(store: Store, folder: Path) -> list[int]:
        return [ingest_upload(store, workspace.partners_dir, NS, p.arrow, p.manifest, actor=NS).rows for p in find_uploads(folder)]

    partner = get_partner(workspace.partners_dir, NS)
    with Store.open(tmp_path / "store", GatewaySecrets(pepper=new_secret(), db_key=new_secret()), memory_limit="512MB") as store:
        assert _cli(app, workspace, tmp_path, tmp_path / "v1")[0] == 0
        first = upload_all(store, tmp_path / "v1")
        write_raw(workspace.raw / NS, partner, PEOPLE[:6] + SHARED)  # the export lost most of its rows
        assert _cli(app, workspace, tmp_path, tmp_path / "v2")[0] == 0
        with pytest.raises(CleanroomError) as exc:
            upload_all(store, tmp_path / "v2")
        assert exc.value.code == "upload.shrinks_dataset"
        assert _cli(app, workspace, tmp_path, tmp_path / "v3", "--allow-shrink")[0] == 0
        third = upload_all(store, tmp_path / "v3")
        assert all(t < f / 2 for t, f in zip(third, first, strict=True))
        summary = prepare_partner(partner, new_secret(), workspace.raw, tmp_path / "v4", read_signing_key(workspace.keys[NS]), workers=1)
        assert summary.salt_fingerprint != salt_fingerprint(workspace.salt)
        with pytest.raises(CleanroomError) as exc:
            upload_all(store, tmp_path / "v4")
        assert exc.value.code == "upload.salt_mismatch"

