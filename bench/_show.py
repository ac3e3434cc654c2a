"""The readable tables ``run.py`` prints from its results (the same numbers as results.json)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

import _release

VARIANTS = (
    ("as_compiled", "as compiled"),
    ("without_consent", "no consent"),
    ("consent_sets_materialized", "consent sets pre-built"),
    ("consent_and_row_bound_sets_materialized", "+ row-bound sets"),
    ("consented_rows_materialized", "consented rows pre-built"),
    ("consented_rows_materialized_no_bound", "+ no-op bound skipped"),
    ("plain", "plain SQL"),
)


def everything(console: Console, r: dict[str, Any]) -> None:
    m = r["machine"]
    console.print(f"\n[bold]cleanroom benchmarks[/] {r['started_at']}: {m['cpus']} x {m['cpu_model']}, {m['memory_gb']} GiB, "
                  f"Python {m['python']}, duckdb {m['duckdb']}, opendp {m['opendp']}", highlight=False)
    console.print(build_table(r))
    if "standalone" in r:
        console.print(standalone_table(r["standalone"]))
    console.print(tax_table(r))
    console.print(breakdown_table(r["privacy_tax"]))
    if "whatif" in r:
        console.print(engine_table(r["whatif"]["engine_ms"]))
        w = r["whatif"]
        console.print(f"ledger charge: {w['ledger_ms']['charge_new_connection_full']:.2f} ms as built (new connection, synchronous=FULL), "
                      f"{w['ledger_ms']['charge_persistent_connection_full']:.2f} ms on a long-lived connection (FULL), "
                      f"{w['ledger_ms']['charge_persistent_connection_normal']:.3f} ms (NORMAL)", highlight=False)
        console.print(f"audit append: {w['audit_ms']['append']:.2f} ms, of which write+fsync {w['audit_ms']['write_and_fsync']:.2f} ms", highlight=False)
    console.print(f"total wall time {r['wall_seconds']} s", highlight=False)


def _table(title: str, columns: list[str]) -> Table:
    t = Table(title=title, title_justify="left")
    for i, c in enumerate(columns):
        t.add_column(c, justify="left" if i == 0 else "right")
    return t


def build_table(r: dict[str, Any]) -> Table:
    b = r["build"]
    s, p, i = b["synth"], b["prepare"], b["ingest"]
    t = _table(f"building the collaboration ({r['settings']['customers']:,} customers)", ["step", "rows", "seconds", "throughput"])
    t.add_row("synth (raw CSV with PII + ground truth)", f"{s['rows']:,}", f"{s['seconds']:.1f}", f"{s['rows_per_s']:,} rows/s")
    t.add_row(f"prepare ({p['workers']} workers)", f"{p['identifiers']:,}", f"{p['seconds']:.1f}",
              f"{p['identifiers_per_s']:,} ids/s; {p['identifiers_per_s_per_core']:,}/core; {p['identifiers_per_cpu_s']:,}/CPU-s")
    t.add_row("ingest (checks, pepper, encrypted store)", f"{i['rows']:,}", f"{i['seconds']:.1f}", f"{i['rows_per_s']:,} rows/s")
    return t


def standalone_table(s: dict[str, Any]) -> Table:
    p, i = s["prepare"], s["ingest"]
    t = _table("bench_prepare.py / bench_ingest.py", ["measurement", "rows", "seconds", "throughput"])
    for key in ("workers_1", "workers_2"):
        if key in p:
            w = p[key]
            t.add_row(f"prepare leads-shaped CSV, {key.replace('_', ' = ')}", f"{p['rows']:,}", f"{w['seconds']:.2f}",
                      f"{w['identifiers_per_second']:,} ids/s; {w['identifiers_per_cpu_second']:,}/CPU-s")
    t.add_row("ingest first upload (all persons new)", f"{i['rows']:,}", f"{i['first_upload_s']:.2f}", f"{i['first_rows_per_s']:,} rows/s")
    t.add_row("ingest refresh (same persons)", f"{i['rows']:,}", f"{i['refresh_upload_s']:.2f}", f"{i['refresh_rows_per_s']:,} rows/s")
    return t


def tax_table(r: dict[str, Any]) -> Table:
    http = {h["case"]: h["http_overhead_ms"] for h in r.get("http", [])}
    t = _table("the privacy tax (median ms of N interleaved runs; tax = release / plain)",
               ["query", "plain DuckDB", "release path", "tax", "tax (paired)", "tax (best/best)", "+ HTTP"])
    for c in r["privacy_tax"]:
        t.add_row(c["case"], f"{c['plain_ms']['median']:.0f}", f"{c['release_ms']['median']:.0f}", f"{c['privacy_tax']:.2f}x",
                  f"{c['privacy_tax_paired_median']:.2f}x", f"{c['privacy_tax_best']:.2f}x", f"{http.get(c['case'], float('nan')):+.0f}")
    return t


def breakdown_table(cases: list[dict[str, Any]]) -> Table:
    labels = [*_release.LABELS, "other"]
    t = _table("where the release path's time goes (median ms per step)", ["step", *[c["case"] for c in cases]])
    for label in labels:
        t.add_row(label, *[f"{c['breakdown_median_ms'][label]:.1f}" for c in cases])
    t.add_row("[bold]total (median)", *[f"[bold]{c['release_ms']['median']:.0f}" for c in cases])
    return t


def engine_table(engine: dict[str, dict[str, float]]) -> Table:
    t = _table("engine statement variants (median ms of execute, same reader, interleaved)", ["query", *[v[1] for v in VARIANTS], "pre-build once"])
    for case, v in engine.items():
        t.add_row(case, *[f"{v[k]:.0f}" if k in v else "-" for k, _ in VARIANTS], f"{v['build_consented_rows_once']:.0f}")
    return t


__all__ = ["everything"]
