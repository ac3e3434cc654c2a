"""`cleanroom keys ...` through typer's CliRunner: 0600 files, no overwrite, partner file updated."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from cleanroom import crypto
from cleanroom.cli import keys as keys_cli
from cleanroom.partners import get_partner
from cleanroom.prepare import salt_fingerprint
from cleanroom.settings import GatewaySecrets


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    """Only the keys command group, so a half-written sibling command cannot break these tests."""
    root = typer.Typer()

    @root.callback()
    def _root() -> None:
        """cleanroom (test root)."""

    keys_cli.register(root)
    return root


def _invoke(app: typer.Typer, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["keys", *args])
    return result.exit_code, result.output


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_salt_is_32_random_bytes_in_a_0600_file(app: typer.Typer, tmp_path: Path) -> None:
    a, b = tmp_path / "a" / "salt.hex", tmp_path / "b.hex"
    code, out = _invoke(app, "salt", "--out", str(a), "--json")
    assert code == 0, out
    assert _invoke(app, "salt", "--out", str(b))[0] == 0
    salt = crypto.read_secret(a)
    assert len(salt) == 32 and salt != crypto.read_secret(b)
    assert _mode(a) == 0o600
    assert json.loads(out)["fingerprint"] == salt_fingerprint(salt)
    assert salt.hex() not in out


def test_existing_key_file_is_never_overwritten(app: typer.Typer, tmp_path: Path, partners_dir: Path) -> None:
    path = tmp_path / "key"
    path.write_text("precious\n")
    before = (partners_dir / "aurora-motors.toml").read_text()
    for args in (["salt"], ["gateway"], ["signing", "--partner", "aurora-motors", "--role", "uploader", "--partners", str(partners_dir)]):
        code, out = _invoke(app, *args, "--out", str(path), "--json")
        assert code == 2 and json.loads(out)["error"]["code"] == "keys.exists", args
    assert path.read_text() == "precious\n"
    assert (partners_dir / "aurora-motors.toml").read_text() == before, "a refused command must not re-key the partner"


def test_signing_registers_the_public_key(app: typer.Typer, tmp_path: Path, partners_dir: Path) -> None:
    out_file = tmp_path / "compliance.pem"
    before = get_partner(partners_dir, "lakeside-autos")
    code, out = _invoke(app, "signing", "--partner", "lakeside-autos", "--role", "compliance", "--out", str(out_file), "--partners", str(partners_dir))
    assert code == 0, out
    key = crypto.read_signing_key(out_file)
    after = get_partner(partners_dir, "lakeside-autos")
    assert _mode(out_file) == 0o600
    assert after.keys.compliance == crypto.public_key_text(key) != before.keys.compliance
    assert after.keys.uploader == before.keys.uploader
    assert crypto.public_key_text(key) in out
    assert crypto.verify(after.public_key("compliance"), b"policy bytes", crypto.sign(key, b"policy bytes"))


def test_signing_for_unknown_partner_or_role_writes_nothing(app: typer.Typer, tmp_path: Path, partners_dir: Path) -> None:
    out_file = tmp_path / "k.pem"
    code, out = _invoke(app, "signing", "--partner", "nobody", "--role", "uploader", "--out", str(out_file), "--partners", str(partners_dir), "--json")
    assert code == 2 and json.loads(out)["error"]["code"] == "partner.unknown"
    code, _ = _invoke(app, "signing", "--partner", "aurora-motors", "--role", "analyst", "--out", str(out_file), "--partners", str(partners_dir))
    assert code != 0
    assert not out_file.exists()


def test_gateway_key_file_loads_as_gateway_secrets(app: typer.Typer, tmp_path: Path) -> None:
    path = tmp_path / "gateway.keys"
    code, out = _invoke(app, "gateway", "--out", str(path))
    assert code == 0, out
    secrets = GatewaySecrets.load(path)
    assert _mode(path) == 0o600
    assert len(secrets.pepper) == len(secrets.db_key) == 32 and secrets.pepper != secrets.db_key
    assert secrets.pepper.hex() not in out and secrets.db_key.hex() not in out


def test_every_keys_command_has_help(app: typer.Typer) -> None:
    for cmd in ("salt", "signing", "gateway"):
        code, out = _invoke(app, cmd, "--help")
        assert code == 0 and "--out" in out
