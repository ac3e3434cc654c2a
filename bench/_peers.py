"""The peers: other DP systems asked the same question on the same rows, each in its own venv.

Each peer gets ``bench/.venvs/<venv>`` (git-ignored), created with ``python -m venv`` and ``pip``
on first use; a stamp file holds the requirement list, so a changed list reinstalls. A peer runs
as a subprocess of its venv's interpreter on the exported Parquet files and times only its query
(``peers/_harness.py``): interpreter start and imports are outside the timing. Anything that goes
wrong (install, import, a question the peer cannot express, a timeout) becomes ``n/a`` with the
reason; the bench never crashes because of a peer.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
VENVS = BENCH / ".venvs"
PEERS = BENCH / "peers"


@dataclass(frozen=True)
class Peer:
    name: str
    venv: str
    requirements: tuple[str, ...]
    script: str | None
    mode: str = ""
    bounds: str = ""  # what the row says about per-person bounds
    optional: bool = False  # only with --all-peers
    why_none: str = ""  # why there is no script
    extra_args: tuple[str, ...] = field(default_factory=tuple)


PEER_LIST: tuple[Peer, ...] = (
    Peer("SmartNoise SQL on DuckDB", "smartnoise", ("smartnoise-sql", "duckdb", "pandas", "pyarrow"), "smartnoise_sql.py", "duckdb",
         "enforces (reservoir sample of max_ids=1 row per person)"),
    Peer("SmartNoise SQL on pandas", "smartnoise", ("smartnoise-sql", "duckdb", "pandas", "pyarrow"), "smartnoise_sql.py", "pandas",
         "enforces (reservoir sample of max_ids=1 row per person)"),
    Peer("OpenDP Polars, truncation", "opendp", ("opendp[polars]", "pyarrow"), "opendp_polars.py", "enforced",
         "enforces (truncate_per_group(1) on the pid identifier)"),
    Peer("OpenDP Polars, Parquet scan", "opendp", ("opendp[polars]", "pyarrow"), "opendp_polars.py", "scan",
         "trusts the declared bound (unit_of(contributions=1), not checked)"),
    Peer("Qrlew on DuckDB", "qrlew", ("pyqrlew", "duckdb", "pandas", "pyarrow"), "qrlew_duckdb.py", "",
         "enforces (per-privacy-unit aggregation and clipping, max_multiplicity=1)"),
    Peer("Tumult Analytics", "tumult", ("tmlt.analytics",), None, optional=True,
         why_none="no adapter yet (needs PySpark and a JVM; the cohort would be Spark SQL before the Tumult session)"),
    Peer("PipelineDP", "pipelinedp", ("pipeline-dp", "pandas", "pyarrow"), None, optional=True,
         why_none="no adapter yet (the cohort would be pandas before a PipelineDP count with public partitions)"),
)


def _python(venv: str) -> Path:
    return VENVS / venv / "bin" / "python"


def ensure_venv(peer: Peer, log: Path, allow_install: bool) -> tuple[bool, str, float]:
    """(ready, reason if not, seconds spent installing)."""
    stamp = VENVS / peer.venv / ".bench-requirements"
    wanted = "\n".join(peer.requirements)
    if stamp.exists() and stamp.read_text() == wanted and _python(peer.venv).exists():
        return True, "", 0.0
    if not allow_install:
        return False, "venv not installed yet (quick mode installs no peer; run make bench once)", 0.0
    started = time.perf_counter()
    with log.open("a") as out:
        try:
            if not _python(peer.venv).exists():
                subprocess.run([sys.executable, "-m", "venv", str(VENVS / peer.venv)], check=True, stdout=out, stderr=out, timeout=300)
            subprocess.run([str(_python(peer.venv)), "-m", "pip", "install", "--quiet", *peer.requirements], check=True, stdout=out,
                           stderr=out, timeout=1200)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
            return False, f"install failed ({type(exc).__name__}; see {log.relative_to(BENCH.parent)})", time.perf_counter() - started
    stamp.write_text(wanted)
    return True, "", time.perf_counter() - started


def run_peer(peer: Peer, data: Path, reps: int, epsilon: float, timeout_s: float, log: Path, allow_install: bool) -> dict[str, Any]:
    row: dict[str, Any] = {"peer": peer.name, "bounds": peer.bounds, "venv": f"bench/.venvs/{peer.venv}"}
    if peer.script is None:
        return row | {"status": "n/a", "reason": peer.why_none}
    ready, why, install_s = ensure_venv(peer, log, allow_install)
    row["install_seconds"] = round(install_s, 1)
    if not ready:
        return row | {"status": "n/a", "reason": why}
    cmd = [str(_python(peer.venv)), str(PEERS / peer.script), "--data", str(data), "--reps", str(reps), "--epsilon", str(epsilon)]
    if peer.mode:
        cmd += ["--mode", peer.mode]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(POLARS_MAX_THREADS="2", OMP_NUM_THREADS="2")
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        return row | {"status": "n/a", "reason": f"timed out after {timeout_s:.0f} s"}
    with log.open("a") as out:
        out.write(f"$ {' '.join(cmd)}\n{done.stderr[-4000:]}\n")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        return row | {"status": "n/a", "reason": f"exited {done.returncode} without a result: {done.stderr.strip().splitlines()[-1:]}"}
    found = json.loads(lines[-1])
    row["versions"] = found.get("versions", {})
    if "error" in found:
        return row | {"status": "n/a", "reason": found["error"]}
    times = found["times_s"]
    return row | {"status": "ok", "enforces_bounds": found.get("enforces"), "reps": len(times),
                  "ms": {"median": round(statistics.median(times) * 1000, 1), "best": round(min(times) * 1000, 1),
                         "worst": round(max(times) * 1000, 1)},
                  "exact": found.get("exact", {}), "noisy": found.get("noisy", {})}


__all__ = ["PEER_LIST", "Peer", "ensure_venv", "run_peer"]
