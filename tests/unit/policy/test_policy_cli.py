"""The policy CLI end to end through typer's CliRunner: lint, schema, diff, sign, verify, activate."""

from __future__ import annotations

import json
from pathlib import Path

from _policy_env import PARTNER_IDS, SignedEnv, copy_policy, edit, line_of, shipped
from typer.testing import CliRunner

from cleanroom.cli.main import app
from cleanroom.crypto import new_signing_key, write_signing_key

runner = CliRunner()


def _run(*args: str | Path) -> tuple[int, str]:
    result = runner.invoke(app, ["policy", *map(str, args)])
    return result.exit_code, result.output


def _flat(text: str) -> str:
    """Errors go through rich, which wraps long lines; compare words, not line breaks."""
    return " ".join(text.split())


def test_help_on_every_command() -> None:
    for command in ("lint", "schema", "diff", "sign", "verify", "activate", "status"):
        code, out = _run(command, "--help")
        assert code == 0 and "Usage" in out


def test_lint_clean_and_effective(repo: Path) -> None:
    code, out = _run("lint", shipped(repo), "--partners", repo / "partners", "--effective")
    assert code == 0 and "valid, 0 warnings" in out
    brand = next(line for line in out.splitlines() if line.strip().startswith("aurora-motors datasets"))
    assert "min_threshold 25 (aurora-motors [restrictions])" in brand
    everything = next(line for line in out.splitlines() if "all datasets" in line)
    assert "min_threshold 25" in everything


def test_lint_prints_every_error_and_fails(repo: Path, tmp_path: Path) -> None:
    path = copy_policy(repo, tmp_path)
    edit(path, "consent: [measurement, attribution] ", "consent: [measurement, marketting] ")
    edit(path, "  overlap:      ", "  overlaps:     ")
    code, out = _run("lint", path, "--partners", repo / "partners")
    assert code == 1
    assert f'{path}:{line_of(path, "marketting")} templates.attribution.consent[1]: unknown purpose "marketting" (known: measurement, attribution, analytics)' in out
    assert f'{path}:{line_of(path, "overlaps:")} templates.overlaps: unknown template "overlaps"' in out
    assert "2 errors, 0 warnings" in out


def test_lint_warnings_pass_unless_strict(repo: Path, tmp_path: Path) -> None:
    path = copy_policy(repo, tmp_path)
    edit(path, "min_threshold: 20 ", "min_threshold: 10 ")
    code, out = _run("lint", path, "--partners", repo / "partners")
    assert code == 0 and "warning: min_threshold 10 is under 20" in out
    assert _run("lint", path, "--partners", repo / "partners", "--strict")[0] == 1
    code, out = _run("lint", path, "--partners", repo / "partners", "--json")
    data = json.loads(out)
    assert code == 0 and data["ok"] and data["warnings"] == 1 and data["issues"][0]["check"] == "threshold-low"


def test_schema_check(repo: Path, tmp_path: Path) -> None:
    assert _run("schema", "--out", repo / "policies" / "policy.schema.json", "--check")[0] == 0
    stale = tmp_path / "policy.schema.json"
    stale.write_text("{}")
    assert _run("schema", "--out", stale, "--check")[0] == 1
    assert _run("schema", "--out", stale)[0] == 0 and _run("schema", "--out", stale, "--check")[0] == 0


def test_diff_cli(repo: Path, tmp_path: Path) -> None:
    old, new = copy_policy(repo, tmp_path / "old"), copy_policy(repo, tmp_path / "new")
    edit(new, "min_threshold: 20 ", "min_threshold: 10 ")
    code, out = _run("diff", old, new, "--partners", repo / "partners")
    assert code == 0 and "1 change, 1 loosen privacy" in out and "lowered from 20 to 10  [LOOSENS PRIVACY]" in out
    assert _run("diff", old, new, "--partners", repo / "partners", "--fail-on-loosen")[0] == 1
    assert _run("diff", old, old, "--partners", repo / "partners", "--fail-on-loosen")[0] == 0


def test_sign_verify_activate_status(env: SignedEnv) -> None:
    common = ("--partners", env.partners_dir)
    code, out = _run("verify", env.policy, *common)
    assert code == 1 and "NOT fully signed (0 of 4)" in out
    for partner in PARTNER_IDS:
        code, out = _run("sign", env.policy, "--key", env.key_files[partner], "--partner", partner, "--store", env.store, *common)
        assert code == 0, out
    code, out = _run("verify", env.policy, "--json", *common)
    assert code == 0 and json.loads(out)["ok"] is True
    code, out = _run("activate", env.policy, "--store", env.store, "--actor", "officer", *common)
    assert code == 0 and "activated aurora-2026" in out
    code, out = _run("status", "aurora-2026", "--policies", env.policy.parent, "--store", env.store, *common)
    assert code == 0 and "is in force" in out
    edit(env.policy, "min_threshold: 20 ", "min_threshold: 30 ")
    code, out = _run("status", "aurora-2026", "--policies", env.policy.parent, "--store", env.store, *common)
    assert code == 2 and "changed since it was activated" in _flat(out)


def test_sign_refuses_wrong_key_and_activate_refuses_unsigned(env: SignedEnv) -> None:
    common = ("--partners", env.partners_dir)
    stranger = env.root / "keys" / "stranger.pem"
    write_signing_key(stranger, new_signing_key())
    code, out = _run("sign", env.policy, "--key", stranger, "--partner", "aurora-motors", *common)
    assert code == 2 and "compliance key" in _flat(out)
    code, out = _run("activate", env.policy, "--store", env.store, *common)
    assert code == 2 and "not signed by every participating partner" in _flat(out)
    code, out = _run("activate", env.policy, "--store", env.store, "--json", *common)
    assert code == 2 and json.loads(out)["error"]["code"] == "policy.unsigned"
