"""`make demo` must keep telling the whole story: run it small, through the real CLI and server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_demo_runs_end_to_end(tmp_path: Path, repo: Path) -> None:
    workdir = tmp_path / "demo"
    partner_files = {p.name: p.read_bytes() for p in (repo / "partners").glob("*.toml")}
    cmd = [sys.executable, "-m", "cleanroom.cli.main", "demo", "--workdir", str(workdir), "--customers", "2000", "--repo", str(repo)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env={"COLUMNS": "160", "PATH": "/usr/bin:/bin"})
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    for expected in (
        "upload.replayed",  # a replayed manifest is refused
        "signed by: aurora-financial, aurora-motors, lakeside-autos, northside-dealers",
        "policy.template_not_allowed",  # the dealer may not run attribution
        "policy.join_not_approved",  # nor join sales with contracts
        "cached=True, epsilon charged 0.0",  # a repeated query is free and identical
        "chain intact: True",
        "11 sections released once for the whole collaboration: epsilon 2 charged to the report reservation",
        "11 of 11 sections served from the store, epsilon charged 0",
        "demo complete",
    ):
        assert expected in out, f"{expected!r} missing from the demo output:\n{out[-3000:]}"
    assert "Traceback" not in out and "internal.invariant" not in out
    month = workdir / "reports" / "aurora-2026" / "2026-10"
    for recipient in ("aurora-motors", "northside-dealers", "lakeside-autos", "aurora-financial"):
        assert {p.name for p in (month / recipient).iterdir()} == {"report.html", "report.pdf", "results.csv", "results.parquet", "manifest.json"}
    assert (workdir / "raw" / "ground_truth.json").exists()
    assert {p.name: p.read_bytes() for p in (repo / "partners").glob("*.toml")} == partner_files  # keys registered in the copy only
    assert "crk_" not in out  # API keys are never printed by the demo
