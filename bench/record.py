"""The project's performance record: ``make bench`` (full) and ``make bench-quick``.

    python bench/record.py            # 100k and 1M customers, all peers (creates bench/.venvs on first use)
    python bench/record.py --quick    # 100k only, fewer repetitions, only peers already installed
    python bench/record.py --10m      # also 10M customers (data cached in bench/.data/, built once)

In ONE run, on the same data, per scale: the privacy tax of each question (plain DuckDB on the
consented rows, the engine's exact aggregates, the release path in-process, over HTTP on a real
``cleanroom serve`` on loopback), whether every side gave the same answer, latency p50/p95 and
throughput of 16 concurrent HTTP clients (cached and uncached), prepare and ingest throughput,
peak memory of the whole process tree, and the peers (``_peers.py``). Results go to
``bench/results/<date>.json`` (``<date>-quick.json`` in quick mode) and, for a full run, the
tables of ``docs/performance.md``. See bench/README.md.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

import _baseline
import _collab
import _export
import _memory
import _peers
import _release
from cleanroom.audit import AuditLog
from cleanroom.budget import Ledger
from cleanroom.client import Client
from cleanroom.gateway.auth import ApiKeys
from cleanroom.gateway.release import ReleaseContext
from cleanroom.partners import load_partners
from cleanroom.policy import load_policy
from cleanroom.store import Store

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
DATA = BENCH / ".data"
DATA_FORMAT = 2  # bump when the cached collaboration must be rebuilt
SEED = 7
CLIENTS = 16
EPSILON_PEERS = 1.0


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    started = time.perf_counter()
    results: dict[str, Any] = {"started_at": datetime.now(UTC).isoformat(timespec="seconds"), "mode": "quick" if args.quick else "full",
                               "machine": machine(), "settings": {k: v for k, v in vars(args).items() if k != "out"}, "scales": []}
    DATA.mkdir(parents=True, exist_ok=True)
    with _memory.PeakMemory() as mem:
        for customers in args.scales:
            results["scales"].append(one_scale(customers, args, mem))
        results["peak_memory_mib"] = mem.report()
    results["wall_seconds"] = round(time.perf_counter() - started, 1)
    path = write(results, args)
    log(f"results written to {path} ({results['wall_seconds']} s)")
    if not args.quick and not args.no_doc:
        import _doc

        _doc.write(results, path, REPO / "docs" / "performance.md")
        log("docs/performance.md rewritten from this run")
    return 0


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--quick", action="store_true", help="100k only, fewer repetitions, only peers whose venv exists")
    p.add_argument("--10m", dest="ten_million", action="store_true", help="also 10,000,000 customers (first build takes long)")
    p.add_argument("--all-peers", action="store_true", help="also the optional peers (Tumult Analytics, PipelineDP)")
    p.add_argument("--scales", type=lambda s: [int(x) for x in s.split(",")], help="customer counts, comma-separated (overrides the mode)")
    p.add_argument("--runs", type=int, help="timed runs per question and side (default 7; quick 3)")
    p.add_argument("--http-runs", type=int, help="sequential HTTP queries per question (default 5; quick 3)")
    p.add_argument("--peer-reps", type=int, help="timed repetitions per peer (default 5; quick 3)")
    p.add_argument("--no-doc", action="store_true", help="do not rewrite docs/performance.md")
    p.add_argument("--out", type=Path, default=BENCH / "results")
    a = p.parse_args(argv)
    a.scales = a.scales or ([100_000] if a.quick else [100_000, 1_000_000] + ([10_000_000] if a.ten_million else []))
    a.runs = a.runs or (3 if a.quick else 7)
    a.http_runs = a.http_runs or (3 if a.quick else 5)
    a.peer_reps = a.peer_reps or (3 if a.quick else 5)
    return a


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")), platform.processor())
    mem = next((int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")), 0)
    versions = {pkg: importlib.metadata.version(pkg) for pkg in ("duckdb", "opendp", "pyarrow", "fastapi", "uvicorn", "httpx")}
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "--", "cleanroom"], cwd=REPO, capture_output=True, text=True).stdout.strip())
    return {"cpu_model": cpu, "cpus": os.cpu_count(), "memory_gib": round(mem / 2**20, 1), "python": platform.python_version(),
            "platform": platform.platform(), "load_average_1m_at_start": round(os.getloadavg()[0], 2), "commit": commit,
            "cleanroom_has_uncommitted_changes": dirty, **versions}


# --- data ----------------------------------------------------------------------------------------------


def raise_budget(path: Path) -> None:
    """The bench's own policy copy gets a budget it cannot exhaust (hundreds of queries per run, re-runs a month)."""
    text = path.read_text()
    text = re.sub(r"monthly_budget_per_partner: [0-9.]+", "monthly_budget_per_partner: 100000.0", text)
    text = re.sub(r"collaboration_monthly_cap: [0-9.]+", "collaboration_monthly_cap: 300000.0", text)
    path.write_text(text)


def obtain(customers: int) -> tuple[_collab.Collab, dict[str, Any]]:
    """The cached collaboration of this size, built (and its raw/prepared files deleted) if missing."""
    work = DATA / f"c{customers}"
    marker = work / "build.json"
    if marker.exists():
        built = json.loads(marker.read_text())
        if built.get("format") == DATA_FORMAT and built.get("seed") == SEED:
            log(f"{customers:,}: reusing the collaboration built {built['built_at']} in {work.relative_to(REPO)}")
            return _collab.Collab(work=work, customers=customers, seed=SEED, timings=built["timings"]), built | {"cached": True}
    log(f"{customers:,}: building the collaboration (synth, prepare, ingest, sign, activate) in {work.relative_to(REPO)}")
    collab = _collab.build(work, REPO, customers, SEED, 2, lambda step: log(f"  {step}"), policy_edit=raise_budget)
    for scratch in ("raw", "prepared"):
        shutil.rmtree(work / scratch, ignore_errors=True)
    built = {"format": DATA_FORMAT, "seed": SEED, "customers": customers, "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
             "timings": collab.timings}
    marker.write_text(json.dumps(built, indent=1, default=str))
    return collab, built | {"cached": False}


def standalone(customers: int) -> dict[str, Any]:
    """bench_prepare.py (1 and 2 workers) and bench_ingest.py at min(customers, 1M) rows, measured in this run."""
    import bench_ingest
    import bench_prepare

    rows = min(customers, 1_000_000)
    scratch = DATA / "scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    (scratch / "ingest").mkdir(parents=True)
    prep = bench_prepare.run(rows, int(rows * 0.6), [1, 2], scratch / "prepare", 0.04, 0.015)
    ingest = bench_ingest.run(rows, int(rows * 0.6), 2, "2GB", scratch / "ingest")
    shutil.rmtree(scratch, ignore_errors=True)
    return {"rows": rows, "prepare": prep, "ingest": ingest}


# --- one scale -----------------------------------------------------------------------------------------


def one_scale(customers: int, args: argparse.Namespace, mem: _memory.PeakMemory) -> dict[str, Any]:
    t0 = time.perf_counter()
    mem.phase(f"{customers}: build")
    collab, built = obtain(customers)
    out: dict[str, Any] = {"customers": customers, "build": built}
    mem.phase(f"{customers}: prepare+ingest")
    log(f"{customers:,}: prepare and ingest throughput (bench_prepare.py, bench_ingest.py)")
    out["throughput"] = standalone(customers)
    mem.phase(f"{customers}: in-process")
    out["export"], out["cases"] = in_process(collab, args)
    mem.phase(f"{customers}: http")
    out["http"], out["concurrency"] = over_http(collab, args, customers)
    for case in out["cases"]:
        case["http_ms"] = out["http"].get(case["case"])
    mem.phase(f"{customers}: peers")
    out["peers"] = peers(collab, args, out["cases"])
    out["peak_memory_mib"] = {k.split(": ", 1)[1]: v for k, v in mem.report().items() if k.startswith(f"{customers}: ")}
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def _stats(seconds: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(seconds) * 1000, 1), "best": round(min(seconds) * 1000, 1), "worst": round(max(seconds) * 1000, 1)}


def in_process(collab: _collab.Collab, args: argparse.Namespace) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Export the consented rows, then per question: baseline, engine exact, release path, interleaved."""
    partners = load_partners(collab.partners_dir)
    policy = load_policy(collab.policies_dir / f"{_collab.COLLABORATION}.yaml", partners)
    parquet = collab.work / "parquet"
    shutil.rmtree(parquet, ignore_errors=True)
    results = []
    with Store.open(collab.store_dir, collab.secrets()) as store:
        log(f"{collab.customers:,}: exporting the consented rows to Parquet (the baseline's and the peers' input)")
        exported = _export.export(store, policy, partners, parquet)
        con = _baseline.connect(parquet)
        ctx = ReleaseContext(store=store, ledger=Ledger(collab.store_dir / "budget.sqlite"), audit=AuditLog(collab.store_dir / "audit.jsonl"),
                             partners=partners, query_timeout_s=3600)
        releaser = _release.Releaser(ctx, _collab.COLLABORATION, collab.policies_dir, collab.store_dir, partners)
        for case in _baseline.cases():
            log(f"{collab.customers:,}: {case.name}: plain DuckDB vs engine vs release path, {args.runs} runs each")
            plain = _baseline.runner(con, case)
            sides = {
                "plain": plain,
                "engine": lambda c=case: _export.engine_exact(store, policy, partners, c.template, c.params),
                "release": lambda c=case: releaser.once(c.template, c.params),
            }
            same = _baseline.compare(case, plain(), sides["engine"]())
            sides["release"]()
            times: dict[str, list[float]] = {k: [] for k in sides}
            order = list(sides)
            for i in range(args.runs):
                for name in order[i % 3:] + order[: i % 3]:  # rotate who goes first: a slow spell hits every side
                    s = time.perf_counter()
                    sides[name]()
                    times[name].append(time.perf_counter() - s)
            med = {k: statistics.median(v) for k, v in times.items()}
            results.append({
                "case": case.name, "template": case.template, "params": case.params, "runs": args.runs,
                "plain_ms": _stats(times["plain"]), "engine_ms": _stats(times["engine"]), "release_ms": _stats(times["release"]),
                "engine_x": round(med["engine"] / med["plain"], 2), "release_x": round(med["release"] / med["plain"], 2),
                "same_answer": same,
            })
        con.close()
    return exported, results


# --- over HTTP -----------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``cleanroom serve`` in a child process on loopback (the real CLI, uvicorn, the real app)."""

    def __init__(self, collab: _collab.Collab) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        exe = Path(sys.executable).parent / "cleanroom"
        cmd = [str(exe), "serve", "--port", str(self.port), "--store", str(collab.store_dir), "--partners", str(collab.partners_dir),
               "--policies", str(collab.policies_dir), "--keys-file", str(collab.keys_file)]
        self.log = (collab.work / "serve.log").open("w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, cwd=REPO)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"cleanroom serve exited with {self.proc.returncode}; see {collab.work / 'serve.log'}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("cleanroom serve did not become healthy within 120 s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


class Epsilons:
    """A fresh epsilon per uncached query: 0.01 plus a micro-epsilon per charge ever made on this store."""

    def __init__(self, collab: _collab.Collab) -> None:
        self._n = len(Ledger(collab.store_dir / "budget.sqlite").charges(_collab.COLLABORATION)) + 1000
        self._lock = threading.Lock()

    def next(self) -> float:
        with self._lock:
            self._n += 1
            return round(0.01 + self._n * 1e-6, 6)


def over_http(collab: _collab.Collab, args: argparse.Namespace, customers: int) -> tuple[dict[str, Any], dict[str, Any]]:
    server = Server(collab)
    try:
        key = ApiKeys(collab.store_dir, load_partners(collab.partners_dir)).create_key(_release.BRAND, "analyst", "bench", actor="bench")[1]
        eps = Epsilons(collab)
        sequential: dict[str, Any] = {}
        with Client(server.url, key, timeout=3600) as client:
            for case in _baseline.cases():
                log(f"{customers:,}: {case.name}: {args.http_runs} uncached queries over HTTP")
                client.query(_collab.COLLABORATION, case.template, case.params, eps.next())  # warm-up
                times = []
                for _ in range(args.http_runs):
                    s = time.perf_counter()
                    r = client.query(_collab.COLLABORATION, case.template, case.params, eps.next())
                    times.append(time.perf_counter() - s)
                    if r.cached:
                        raise RuntimeError(f"HTTP query of {case.name} was served from the cache")
                sequential[case.name] = _stats(times)
        head = next(c for c in _baseline.cases() if c.name == _baseline.HEADLINE)
        uncached_total = CLIENTS * (2 if customers >= 1_000_000 or args.quick else 3)
        cached_total = CLIENTS * (10 if args.quick else 25)
        log(f"{customers:,}: {CLIENTS} concurrent clients, {_baseline.HEADLINE}: {cached_total} cached, {uncached_total} uncached")
        fixed = eps.next()
        with Client(server.url, key, timeout=3600) as client:
            client.query(_collab.COLLABORATION, head.template, head.params, fixed)  # the answer the cached requests share
        concurrency = {
            "clients": CLIENTS, "question": head.name,
            "cached": load(server.url, key, head, [fixed] * cached_total, expect_cached=True),
            "uncached": load(server.url, key, head, [eps.next() for _ in range(uncached_total)], expect_cached=False),
        }
        return sequential, concurrency
    finally:
        server.stop()


def load(url: str, key: str, case: _baseline.Case, epsilons: list[float], expect_cached: bool) -> dict[str, Any]:
    """``CLIENTS`` threads, each with its own client, take requests from a shared list until it is empty."""
    lock = threading.Lock()
    todo = list(epsilons)
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    cached = Counter[bool]()

    def worker() -> None:
        with Client(url, key, timeout=3600) as client:
            while True:
                with lock:
                    if not todo:
                        return
                    eps = todo.pop()
                s = time.perf_counter()
                try:
                    r = client.query(_collab.COLLABORATION, case.template, case.params, eps)
                except Exception as exc:  # counted, not fatal: admission control may refuse (gateway.busy)
                    with lock:
                        errors[getattr(exc, "code", type(exc).__name__)] += 1
                    continue
                with lock:
                    latencies.append(time.perf_counter() - s)
                    cached[bool(r.cached)] += 1

    threads = [threading.Thread(target=worker) for _ in range(CLIENTS)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    lat = sorted(latencies)
    pct = (lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000, 1)) if lat else (lambda q: None)
    return {"requests": len(epsilons), "ok": len(lat), "errors": dict(errors), "served_from_cache": cached[True],
            "expected_cached": expect_cached, "p50_ms": pct(0.50), "p95_ms": pct(0.95), "max_ms": pct(1.0),
            "wall_seconds": round(wall, 2), "throughput_per_s": round(len(lat) / wall, 2)}


# --- peers ---------------------------------------------------------------------------------------------


def peers(collab: _collab.Collab, args: argparse.Namespace, cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    head = next(c for c in cases if c["case"] == _baseline.HEADLINE)
    data = collab.work / "parquet" / "measurement"
    plain_ms = head["plain_ms"]["median"]
    con = _baseline.connect(collab.work / "parquet")
    case = next(c for c in _baseline.cases() if c.name == _baseline.HEADLINE)
    truth = {f"{stage}|{model}": n for stage, model, n in _baseline.runner(con, case)()}
    con.close()
    rows = []
    logfile = DATA / "peers.log"
    timeout = 600 if collab.customers <= 1_000_000 else 3600
    for peer in _peers.PEER_LIST:
        if peer.optional and not args.all_peers:
            rows.append({"peer": peer.name, "status": "n/a", "reason": "optional: run with --all-peers", "bounds": peer.bounds})
            continue
        log(f"{collab.customers:,}: peer {peer.name}")
        row = _peers.run_peer(peer, data, args.peer_reps, EPSILON_PEERS, timeout, logfile, allow_install=not args.quick)
        if row["status"] == "ok":
            exact = row.pop("exact")
            row["same_cohort_as_baseline"] = {k: v for k, v in exact.items() if v} == {k: v for k, v in truth.items() if v}
            row["x_plain"] = round(row["ms"]["median"] / plain_ms, 2)
            row.pop("noisy", None)
        rows.append(row)
    return rows


def write(results: dict[str, Any], args: argparse.Namespace) -> Path:
    args.out.mkdir(parents=True, exist_ok=True)
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    path = args.out / f"{day}{'-quick' if args.quick else ''}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=1, default=str) + "\n")
    tmp.replace(path)
    return path


if __name__ == "__main__":
    sys.exit(main())
