"""Benchmarks of cleanroom on a synthetic collaboration (default: 1M customers). Not part of ``make test``.

    python bench/run.py                      # what ``make bench`` runs (about 5 minutes on 2 cores)
    python bench/run.py --customers 50000 --runs 3 --no-standalone    # a quick smoke run

Measures: synth time; prepare throughput (identifiers/s, per core, per CPU-second); ingest
throughput (rows/s); and the privacy tax of every query template: the median time of the gateway's
release path (policy load -> release_query, in-process, new epsilon per run so the cache never
answers) divided by the median time of the same question in plain hand-written DuckDB SQL on the
same store (bench/_plain.py), with a breakdown of the release path, one pass over real HTTP, and
measurements of product changes that would lower the tax (bench/_whatif.py). Results go to
bench/out/results.json; see bench/README.md for what each number means.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

import _collab
import _plain
import _release
import _whatif
from cleanroom.audit import AuditLog
from cleanroom.budget import Ledger
from cleanroom.client import Client
from cleanroom.engine import view_name
from cleanroom.gateway import GatewayConfig
from cleanroom.gateway.release import ReleaseContext
from cleanroom.partners import load_partners
from cleanroom.policy import load_policy
from cleanroom.store import Store

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
console = Console(width=max(Console().width, 132))


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    started = time.perf_counter()
    results: dict[str, Any] = {"started_at": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(), "settings": vars(args) | {"work": str(args.work)}}
    collab = obtain_collaboration(args)
    results["build"] = collab.timings
    if args.standalone:
        results["standalone"] = standalone(args)
    results["privacy_tax"] = privacy_tax(collab, args)
    if args.whatif:
        results["whatif"] = whatif(collab, args)
    results["http"] = over_http(collab, args)
    results["wall_seconds"] = round(time.perf_counter() - started, 1)
    write_results(args.out, results)
    show(results)
    if not args.keep:
        shutil.rmtree(args.work, ignore_errors=True)
    return 0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000, help="synthetic customers (default 1,000,000)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--runs", type=int, default=9, help="timed runs per query and side (median reported; default 9)")
    parser.add_argument("--whatif-runs", type=int, default=5, help="timed runs per engine variant (default 5)")
    parser.add_argument("--http-runs", type=int, default=3, help="timed HTTP queries per template (default 3)")
    parser.add_argument("--workers", type=int, default=2, help="prepare worker processes (default 2)")
    parser.add_argument("--work", type=Path, default=Path(os.environ.get("TMPDIR") or tempfile.gettempdir()) / "cleanroom-bench",
                        help="scratch directory for data and store (default $TMPDIR/cleanroom-bench; deleted at the end)")
    parser.add_argument("--reuse", action="store_true", help="reuse a collaboration built by an earlier --keep run in --work")
    parser.add_argument("--keep", action="store_true", help="keep --work afterwards (for --reuse)")
    parser.add_argument("--no-standalone", dest="standalone", action="store_false", help="skip bench_prepare.py / bench_ingest.py")
    parser.add_argument("--no-whatif", dest="whatif", action="store_false", help="skip the product-change measurements")
    parser.add_argument("--out", type=Path, default=BENCH / "out" / "results.json")
    args = parser.parse_args(argv)
    if min(args.runs, args.whatif_runs, args.http_runs) < 1:
        parser.error("--runs, --whatif-runs and --http-runs must be at least 1")
    return args


def machine() -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), "?") \
        if Path("/proc/cpuinfo").exists() else platform.processor()
    versions = {pkg: importlib.metadata.version(pkg) for pkg in ("duckdb", "opendp", "pyarrow", "fastapi", "uvicorn")}
    return {"cpus": os.cpu_count(), "cpu_model": cpu, "memory_gb": _memory_gb(), "python": platform.python_version(),
            "platform": platform.platform(), "load_average_1m_at_start": round(os.getloadavg()[0], 2), **versions}


def _memory_gb() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        return None


@contextmanager
def step(title: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
    """A rich progress bar for one long step; yields ``advance(n)``."""
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(title, total=total)
        yield lambda n=1: bar.advance(task, n)
    console.print(f"[green]done[/] {title}", highlight=False)


# --- the collaboration -------------------------------------------------------------------------------


def obtain_collaboration(args: argparse.Namespace) -> _collab.Collab:
    marker = args.work / "build.json"
    if args.reuse and marker.exists():
        built = json.loads(marker.read_text())
        if built["customers"] == args.customers and built["seed"] == args.seed:
            console.print(f"reusing the collaboration in {args.work} ({args.customers:,} customers)")
            return _collab.Collab(work=args.work, customers=args.customers, seed=args.seed, timings=built["timings"])
    with step(f"build a {args.customers:,}-customer collaboration (synth, prepare, ingest, sign, activate)", total=4) as advance:
        collab = _collab.build(args.work, REPO, args.customers, args.seed, args.workers, lambda _: advance(1))
    marker.write_text(json.dumps({"customers": collab.customers, "seed": collab.seed, "timings": collab.timings}, indent=1))
    return collab


def standalone(args: argparse.Namespace) -> dict[str, Any]:
    """bench_prepare.py (1 vs 2 workers on a leads-shaped file) and bench_ingest.py (first upload and refresh)."""
    import bench_ingest
    import bench_prepare

    rows = min(args.customers, 1_000_000)
    with step(f"bench_prepare.py and bench_ingest.py on {rows:,} rows", total=2) as advance:
        prep = bench_prepare.run(rows, int(rows * 0.6), [1, 2], args.work / "bench_prepare", 0.04, 0.015)
        advance(1)
        ingest = bench_ingest.run(rows, int(rows * 0.6), 2, "2GB", _empty(args.work / "bench_ingest"))
        advance(1)
    shutil.rmtree(args.work / "bench_prepare", ignore_errors=True)
    shutil.rmtree(args.work / "bench_ingest", ignore_errors=True)
    return {"prepare": prep, "ingest": ingest}


def _empty(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


@contextmanager
def opened(collab: _collab.Collab) -> Iterator[tuple[ReleaseContext, _release.Releaser, dict[str, str], Any]]:
    """The store as the gateway opens it, a release context over it, and every policy dataset's view name."""
    partners = load_partners(collab.partners_dir)
    policy = load_policy(collab.policies_dir / f"{_collab.COLLABORATION}.yaml", partners)
    with Store.open(collab.store_dir, collab.secrets()) as store:
        ctx = ReleaseContext(store=store, ledger=Ledger(collab.store_dir / "budget.sqlite"), audit=AuditLog(collab.store_dir / "audit.jsonl"),
                             partners=partners)
        releaser = _release.Releaser(ctx, _collab.COLLABORATION, collab.policies_dir, collab.store_dir, partners)
        yield ctx, releaser, {view_name(q): q for q in policy.datasets}, policy


# --- the privacy tax ---------------------------------------------------------------------------------


def privacy_tax(collab: _collab.Collab, args: argparse.Namespace) -> list[dict[str, Any]]:
    cases = _plain.cases()
    out = []
    with opened(collab) as (ctx, releaser, views, _), step(f"privacy tax: {len(cases)} queries x {args.runs} runs, plain vs release path",
                                                              total=len(cases)) as advance:
        with ctx.store.reader(views, timeout_s=_whatif.TIMEOUT_S) as con:
            for case in cases:
                out.append(measure_case(case, lambda sql=case.plain_sql: con.execute(sql).fetchall(), releaser, args.runs))
                advance(1)
    return out


def measure_case(case: _plain.Case, plain: Callable[[], Any], releaser: _release.Releaser, runs: int) -> dict[str, Any]:
    """Plain and release runs alternate (and swap order each round), so a slow spell of a shared machine hits both."""
    plain()
    releaser.once(case.template, case.params)
    plain_s, release_s, breakdowns = [], [], []
    for i in range(runs):
        for side in (("plain", "release") if i % 2 == 0 else ("release", "plain")):
            if side == "plain":
                t0 = time.perf_counter()
                plain()
                plain_s.append(time.perf_counter() - t0)
            else:
                breakdowns.append(releaser.once(case.template, case.params))
                release_s.append(breakdowns[-1]["total"])
    return summarize_case(case, plain_s, release_s, breakdowns)


def summarize_case(case: _plain.Case, plain_s: list[float], release_s: list[float], breakdowns: list[dict[str, float]]) -> dict[str, Any]:
    med_a, med_b = statistics.median(plain_s), statistics.median(release_s)
    labels = [*_release.LABELS, "other"]
    return {
        "case": case.name, "template": case.template, "params": case.params, "runs": len(plain_s),
        "plain_ms": _ms_stats(plain_s), "release_ms": _ms_stats(release_s),
        "privacy_tax": round(med_b / med_a, 2),
        "privacy_tax_paired_median": round(statistics.median(b / a for a, b in zip(plain_s, release_s, strict=True)), 2),
        "privacy_tax_best": round(min(release_s) / min(plain_s), 2),
        "breakdown_median_ms": {label: round(statistics.median(b[label] for b in breakdowns) * 1000, 2) for label in labels},
    }


def _ms_stats(seconds: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(seconds) * 1000, 1), "best": round(min(seconds) * 1000, 1), "worst": round(max(seconds) * 1000, 1)}


# --- product changes ---------------------------------------------------------------------------------


def whatif(collab: _collab.Collab, args: argparse.Namespace) -> dict[str, Any]:
    cases = _plain.cases()
    engine = {}
    with opened(collab) as (ctx, _, views, policy), step(f"engine variants: {len(cases)} queries x {args.whatif_runs} runs", total=len(cases)) as advance:
        for case in cases:
            found = _whatif.engine_variants(ctx.store, views, policy, ctx.partners, case.template, case.params, case.plain_sql, args.whatif_runs)
            engine[case.name] = {k: round(v * 1000, 1) for k, v in found.items()}
            advance(1)
    scratch = _empty(args.work / "whatif")
    ledger = {k: round(v * 1000, 3) for k, v in _whatif.ledger_variants(scratch, 50).items()}
    audit = {k: round(v * 1000, 3) for k, v in _whatif.audit_variants(scratch, 50).items()}
    return {"engine_ms": engine, "ledger_ms": ledger, "audit_ms": audit}


# --- over HTTP ---------------------------------------------------------------------------------------


def over_http(collab: _collab.Collab, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Each template through the real app on uvicorn and the typed client, alternating with in-process releases."""
    config = GatewayConfig(store=collab.store_dir, partners=collab.partners_dir, policies=collab.policies_dir, keys_file=collab.keys_file)
    out = []
    with _release.serving(config) as (url, services), step(f"over HTTP: {len(_plain.cases())} queries x {args.http_runs} runs",
                                                             total=len(_plain.cases())) as advance:
        key = services.keys.create_key(_release.BRAND, "analyst", "benchmark analyst", actor="bench")[1]
        releaser = _release.Releaser(services.release_context, _collab.COLLABORATION, collab.policies_dir, collab.store_dir, services.partners)
        with Client(url, key, timeout=600) as client:
            for case in _plain.cases():
                out.append(http_case(case, client, releaser, args.http_runs))
                advance(1)
    return out


def http_case(case: _plain.Case, client: Client, releaser: _release.Releaser, runs: int) -> dict[str, Any]:
    def http() -> float:
        return _release.http_once(client, _collab.COLLABORATION, case.template, case.params, releaser.next_epsilon())

    http()
    http_s, inproc_s = [], []
    for _ in range(runs):
        http_s.append(http())
        inproc_s.append(releaser.once(case.template, case.params)["total"])
    return {"case": case.name, "runs": runs, "http_ms": _ms_stats(http_s), "in_process_ms": _ms_stats(inproc_s),
            "http_overhead_ms": round((statistics.median(http_s) - statistics.median(inproc_s)) * 1000, 1)}


# --- output ------------------------------------------------------------------------------------------


def write_results(path: Path, results: dict[str, Any]) -> None:
    """Write next to the final name, then rename: a crash never leaves half a results file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2, default=str) + "\n")
    tmp.replace(path)
    console.print(f"results written to {path}")


def show(results: dict[str, Any]) -> None:
    import _show

    _show.everything(console, results)


if __name__ == "__main__":
    sys.exit(main())
