"""``cleanroom demo``: the whole story on an embedded store, in a throw-away work directory.

It plays every role with real keys, files and a real HTTP server on loopback: the partners
(synthetic raw data -> prepare -> upload), the compliance officers (lint, sign, verify, activate),
and the analysts (queries through the typed client), then shows the noisy answers next to the
synthetic ground truth, the budget left and the audit chain. Nothing is written outside
``--workdir``; the repository's partners/ and policies/ are copied, never edited.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from cleanroom.cli import demo_steps as steps
from cleanroom.cli._common import console, handle_errors
from cleanroom.errors import CleanroomError, ConfigError

MARKER = ".cleanroom-demo"


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


@handle_errors
def demo(
    workdir: Annotated[Path, typer.Option("--workdir", help="Throw-away directory for keys, data, store (recreated).")] = Path(".demo"),
    customers: Annotated[int, typer.Option("--customers", help="Synthetic customers.")] = 20_000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the synthetic data.")] = 7,
    repo: Annotated[Path, typer.Option("--repo", help="Where partners/ and policies/ are copied from.")] = Path("."),
) -> None:
    """Run the whole clean-room story end to end and print what each party sees."""
    started = time.perf_counter()
    w = _fresh_workdir(workdir, repo)
    truth = steps.partner_side(w, customers, seed, _step)
    steps.upload_all(w, _step)
    steps.sign_and_activate(w, _step)
    keys = steps.api_keys(w, _step)
    with _gateway(w) as url:
        steps.analyst_queries(url, keys, truth, _step)
        steps.closing(url, keys, w, _step)
        report = steps.monthly_report(url, keys, w, truth, _step)
    console.print(f"\n[bold green]demo complete[/] in {time.perf_counter() - started:.1f} s; everything is in {w}/", highlight=False)
    console.print(f"the monthly report: open {report / 'aurora-motors' / 'report.html'} (or report.pdf)", highlight=False)


def _step(title: str) -> None:
    console.rule(f"[bold]{title}")


def _fresh_workdir(workdir: Path, repo: Path) -> Path:
    """Recreate ``workdir`` (only if empty or made by an earlier demo) with copies of partners/ and policies/."""
    if workdir.exists() and any(workdir.iterdir()) and not (workdir / MARKER).exists():
        raise ConfigError("config.invalid", f"{workdir} exists and was not made by `cleanroom demo`; choose another --workdir")
    for source in ("partners", "policies"):
        if not (repo / source).is_dir():
            raise ConfigError("config.invalid", f"{repo / source} not found: run the demo from the repository root or pass --repo")
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    (workdir / MARKER).write_text("made by cleanroom demo; safe to delete\n")
    for source in ("partners", "policies"):
        shutil.copytree(repo / source, workdir / source, ignore=shutil.ignore_patterns("*.sig"))
    return workdir.resolve()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _gateway(w: Path) -> Iterator[str]:
    """Start the real gateway (`cleanroom serve`) on a free loopback port; stop it afterwards."""
    import httpx

    port = _free_port()
    cmd = [sys.executable, "-m", "cleanroom.cli.main", "serve", "--port", str(port), "--store", str(w / "store"),
           "--partners", str(w / "partners"), "--policies", str(w / "policies"), "--keys-file", str(w / "keys" / "gateway.keys")]
    log = (w / "gateway.log").open("w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _step(f"Gateway: `cleanroom serve` on {url} (log: {w / 'gateway.log'})")
        _wait_healthy(url, proc, httpx.get)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        console.print("gateway stopped", style="dim")


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], get: Callable[..., Any]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise CleanroomError("config.invalid", f"the gateway exited with code {proc.returncode}; see gateway.log")
        try:
            if get(url + "/healthz", timeout=1).status_code == 200:
                return
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.2)
    raise CleanroomError("config.invalid", "the gateway did not become healthy within 30 s; see gateway.log")
