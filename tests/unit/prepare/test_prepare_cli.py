"""`cleanroom prepare` through typer's CliRunner: real key files, human and JSON output, error codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from prepare_fixtures import Workspace
from typer.testing import CliRunner

from cleanroom.cli import prepare as prepare_cli
from cleanroom.crypto import write_secret
from cleanroom.manifest import Manifest
from cleanroom.partners import get_partner


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    """Only the prepare command, so a half-written sibling command cannot break these tests."""
    root = typer.Typer()

    @root.callback()
    def _root() -> None:
        """cleanroom (test root)."""

    prepare_cli.register(root)
    return root


def _args(ws: Workspace, salt_file: Path, out: Path, *extra: str) -> list[str]:
    return [
        "prepare", "--partner", "northside-dealers", "--salt-file", str(salt_file), "--key", str(ws.keys["northside-dealers"]),
        "--in", str(ws.raw), "--out", str(out), "--partners", str(ws.partners_dir), *extra,
    ]  # fmt: skip


def test_prepare_json_output(app: typer.Typer, workspace: Workspace, tmp_path: Path) -> None:
    salt_file = tmp_path / "salt.hex"
    write_secret(salt_file, workspace.salt)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, _args(workspace, salt_file, out, "--json"))
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    partner = get_partner(workspace.partners_dir, "northside-dealers")
    assert set(summary["datasets"]) == set(partner.datasets)
    assert summary == json.loads((out / "summary.json").read_text())
    assert Manifest.read(out / "sales.manifest.json").verify(partner.public_key("uploader"))


def test_prepare_human_output_and_errors(app: typer.Typer, workspace: Workspace, tmp_path: Path) -> None:
    salt_file = tmp_path / "salt.hex"
    write_secret(salt_file, workspace.salt)
    result = CliRunner().invoke(app, _args(workspace, salt_file, tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert "consent" in result.output and "identifiers/s" in result.output
    salt_file.chmod(0o644)
    result = CliRunner().invoke(app, _args(workspace, salt_file, tmp_path / "out2", "--json"))
    assert result.exit_code == 2 and json.loads(result.output)["error"]["code"] == "keys.permissions"
    salt_file.chmod(0o600)
    result = CliRunner().invoke(app, _args(workspace, salt_file, tmp_path / "out3", "--json", "--region", "ZZ"))
    assert result.exit_code == 2 and json.loads(result.output)["error"]["code"] == "config.invalid"
    assert not (tmp_path / "out2").exists() and not (tmp_path / "out3").exists()
