"""Utility of the released numbers: error and interval coverage of every shown number. Not part of ``make test``.

    python bench/utility.py                               # demo size (20,000 customers), 200 releases per setting
    python bench/utility.py --customers 1000000 --releases 100
    python bench/utility.py --cases overlap lifecycle --releases 50 --no-docs   # a quick look

For every template the benchmark asks (funnel ungrouped, by model and by month; attribution last
touch by campaign; overlap of two datasets; lifecycle by product) the EXACT result is computed
once with the engine (the brand analyst's scope, consented rows, as ``release_query`` runs it).
Then, at each epsilon, ``--releases`` fresh releases go through the library's own
``cleanroom.dp.release`` and ``cleanroom.engine.present.present`` (no budget, no cache, no audit:
the same two functions the gateway calls), and every number an analyst would see is compared
with its exact value:

- counts (persons, credited sales, contracts ending, ...): mean absolute error of the noisy sum
  over ALL releases, before suppression, against the mechanism's ideal MAE for a sum of that
  many cells (``cleanroom.dp.accuracy.expected_abs_error``); the share of releases where the
  number is suppressed; how often the 95 % interval present() shows holds the exact value, over
  all shown values and by the exact value's size (<20, 20-99, >=100);
- rates (conversions, financed share, match and seen-again rates): how often they are shown, their
  mean absolute error when shown, interval coverage, and the share of intervals outside [0, 1].

Which cells each shown number sums is written out below per template (``numbers``), mirroring
``engine/present.py``; every shown count is checked against that sum, so a presenter that changes
shape stops the run instead of giving wrong statistics. Results: printed as markdown, written to
bench/out/utility-<customers>.json, and (unless ``--no-docs``) into docs/accuracy.md between markers.
See docs/accuracy.md for what each column means.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

import _collab
import _plain
from cleanroom.aggregate import ExactResult, NoisyResult
from cleanroom.dp import release
from cleanroom.dp.accuracy import expected_abs_error
from cleanroom.engine import compile_query, execute
from cleanroom.engine.present import present
from cleanroom.gateway.release import build_scope
from cleanroom.partners import load_partners
from cleanroom.policy import effective_rules, load_policy
from cleanroom.store import Store

try:  # the gateway's own choice of views (consented rows); without it the engine filters consent itself: same exact result
    from cleanroom.gateway.release import _consented_views as CONSENTED
except ImportError:  # pragma: no cover - only if the gateway renames its helper
    CONSENTED = None

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
DOCS = REPO / "docs" / "accuracy.md"
CASES = ("funnel", "funnel/model", "funnel/month", "attribution", "overlap", "lifecycle")  # names in _plain.cases()
EPSILONS = ("0.1", "0.5", "1")
BANDS = ((0, 20, "<20"), (20, 100, "20-99"), (100, math.inf, ">=100"))
TOLERANCE = 1e-9  # shown bounds are rounded to 4 decimals; exact values are multiples of 0.001

# Ideal MAE at epsilon 1 before the rewrite of the release (one part per statistic) and the goal
# after it: (case, category, before, goal). The "now" side is the worst shown number of that category.
BEFORE = (
    ("funnel", "persons", 10.0, 6.0, "funnel persons, ungrouped"),
    ("funnel/model", "persons", 40.0, 10.0, "funnel persons by model"),
    ("attribution", "credited_financed_sales", 3.96, 1.0, "attribution credited financed sales (per campaign)"),
    ("attribution", "credited_sales (total row)", 7.98, 4.6, "attribution total sales (total row)"),
    ("overlap", "shared", 1.92, 0.9, "overlap shared persons"),
    ("lifecycle", "seen_again", 5.97, 3.0, "lifecycle seen again"),
)


# --- which cells each shown number sums (mirrors engine/present.py) -------------------------------


@dataclass(frozen=True)
class Number:
    """One number present() shows: its row (by key columns), column, and the partition cells behind it.

    A count is the sum of ``cells``; a rate is ``sum(cells) / (sum(cells) + sum(rest))``.
    ``category`` pools numbers of one kind in the tables (e.g. every stage's ``persons``).
    """

    key: tuple[Any, ...]
    column: str
    category: str
    kind: str  # "count" or "rate"
    cells: tuple[int, ...]
    rest: tuple[int, ...] = ()


def numbers(exact: ExactResult) -> tuple[str, list[str], list[Number]]:
    """The partition part, the key columns of a row, and every number shown, for one template."""
    if exact.template == "funnel":
        return "reached", [*exact.dimensions, "stage"], _funnel(exact)
    if exact.template == "attribution":
        return "credit", [exact.dimensions[0] if exact.dimensions else "key"], _attribution(exact)
    if exact.template == "overlap":
        return "venn", ["dataset_a", "dataset_b"], _overlap(exact)
    if exact.template == "lifecycle":
        return "ending", [exact.dimensions[0]], _lifecycle(exact)
    raise SystemExit(f"no number map for template {exact.template!r}")


def _funnel(exact: ExactResult) -> list[Number]:
    part = exact.part("reached")
    names: list[str] = list(exact.meta["stages"])
    index = {cell: i for i, cell in enumerate(part.cells)}
    financed = names[-1] == "financed"
    steps = names[:-1] if financed else names
    out = []
    for group in dict.fromkeys(cell[1:] for cell in part.cells):
        of = [index[(s, *group)] for s in names]
        for k, stage in enumerate(steps):
            key = (*group, stage)
            out.append(Number(key, "persons", "persons", "count", tuple(of[k:])))
            if k:
                out.append(Number(key, "conversion", "conversion", "rate", tuple(of[k:]), tuple(of[k - 1 : k])))
                out.append(Number(key, "cumulative_conversion", "cumulative_conversion", "rate", tuple(of[k:]), tuple(of[:k])))
        if financed:
            key = (*group, "financed")
            out.append(Number(key, "persons", "persons", "count", (of[-1],)))
            out.append(Number(key, "conversion", "conversion", "rate", (of[-1],), (of[-2],)))
            out.append(Number(key, "cumulative_conversion", "cumulative_conversion", "rate", (of[-1],), tuple(of[:-1])))
    return out


def _attribution(exact: ExactResult) -> list[Number]:
    part = exact.part("credit")
    financed = len(part.cells[0]) == 2
    values = list(dict.fromkeys(cell[0] for cell in part.cells))
    out = []
    for label in [*values, "total"]:
        cells = [i for i, c in enumerate(part.cells) if label == "total" or c[0] == label]
        suffix = " (total row)" if label == "total" else ""
        out.append(Number((label,), "credited_sales", "credited_sales" + suffix, "count", tuple(cells)))
        if financed:
            fin = tuple(i for i in cells if part.cells[i][1] == "financed")
            rest = tuple(i for i in cells if part.cells[i][1] != "financed")
            out.append(Number((label,), "credited_financed_sales", "credited_financed_sales" + suffix, "count", fin))
            out.append(Number((label,), "financed_share", "financed_share" + suffix, "rate", fin, rest))
    return out


def _overlap(exact: ExactResult) -> list[Number]:
    part = exact.part("venn")
    out = []
    for j in range(len(part.cells) // 3):
        a, b, _ = part.cells[3 * j]
        a_only, b_only, both = 3 * j, 3 * j + 1, 3 * j + 2
        key = (a, b)
        out += [
            Number(key, "persons_a", "persons_a", "count", (a_only, both)),
            Number(key, "persons_b", "persons_b", "count", (b_only, both)),
            Number(key, "shared", "shared", "count", (both,)),
            Number(key, "match_rate_a", "match_rate_a", "rate", (both,), (a_only,)),
            Number(key, "match_rate_b", "match_rate_b", "rate", (both,), (b_only,)),
        ]
    return out


def _lifecycle(exact: ExactResult) -> list[Number]:
    part = exact.part("ending")
    index = {cell: i for i, cell in enumerate(part.cells)}
    seen_known = "seen_again" not in (exact.meta.get("omitted") or {})
    out = []
    for segment in dict.fromkeys(cell[0] for cell in part.cells):
        not_seen, seen = index[(segment, "not_seen")], index[(segment, "seen_again")]
        out.append(Number((segment,), "contracts_ending", "contracts_ending", "count", (not_seen, seen)))
        if seen_known:
            out.append(Number((segment,), "seen_again", "seen_again", "count", (seen,)))
            out.append(Number((segment,), "seen_again_rate", "seen_again_rate", "rate", (seen,), (not_seen,)))
    return out


# --- the exact results, once ----------------------------------------------------------------------


@dataclass
class Question:
    name: str
    exact: ExactResult
    threshold: int
    mechanism: str
    delta: Fraction | None
    execute_s: float


def exact_results(collab: _collab.Collab, names: Sequence[str]) -> list[Question]:
    """Each case compiled for the brand analyst and executed once over consented rows, as release_query does."""
    partners = load_partners(collab.partners_dir)
    policy = load_policy(collab.policies_dir / f"{_collab.COLLABORATION}.yaml", partners)
    cases = {c.name: c for c in _plain.cases()}
    out = []
    with Store.open(collab.store_dir, collab.secrets()) as store:
        for name in names:
            case = cases[name]
            rule = policy.template_rule(case.template)
            scope = build_scope(policy, partners, "brand", rule, datetime.now(UTC), consent_applied=CONSENTED is not None,
                                stored=store.active_versions())
            compiled = compile_query(case.template, case.params, scope)
            threshold = effective_rules(policy, partners, compiled.datasets).min_threshold
            views = CONSENTED(scope, compiled) if CONSENTED else {scope.datasets[d].view: d for d in compiled.datasets}
            started = time.perf_counter()
            with store.reader(views, timeout_s=3600, consent_at=scope.now) as con:
                exact = execute(compiled, con)
            out.append(Question(name, exact, threshold, policy.privacy.mechanism, policy.privacy.delta, time.perf_counter() - started))
    return out


# --- measuring ------------------------------------------------------------------------------------


@dataclass
class Tally:
    """What the releases showed for one number (or one category of numbers) at one epsilon."""

    instances: int = 0
    abs_err_raw: float = 0.0  # counts: |noisy sum - exact| over all releases, before suppression
    ideal: float = 0.0  # counts: sum of the ideal MAE over the same instances
    suppressed: int = 0  # counts: suppressed; rates: not shown (suppressed or not computable)
    shown: int = 0
    covered: int = 0
    band_shown: dict[str, int] = field(default_factory=lambda: {b: 0 for _, _, b in BANDS})
    band_covered: dict[str, int] = field(default_factory=lambda: {b: 0 for _, _, b in BANDS})
    abs_err_shown: float = 0.0  # rates: |shown - exact| over shown values
    outside: int = 0  # rates: intervals with low < 0 or high > 1
    per_release: list[float] = field(default_factory=list)  # counts: mean |error| per release (for the standard error)
    ideal_values: set[float] = field(default_factory=set)
    terms: set[int] = field(default_factory=set)
    exact_values: list[float] = field(default_factory=list)


def band(x: float) -> str:
    return next(name for lo, hi, name in BANDS if lo <= x < hi)


def measure(q: Question, epsilon: Fraction, releases: int) -> tuple[dict[str, Tally], dict[str, Tally]]:
    """``releases`` fresh releases of ``q.exact`` at ``epsilon``: tallies per category and per number."""
    part_name, key_cols, nums = numbers(q.exact)
    part = q.exact.part(part_name)
    unit = part.unit
    exact_cells = np.array(part.values, dtype=np.int64)
    exact_of = {n: _exact_value(n, exact_cells, unit) for n in nums}
    by_cat: dict[str, Tally] = defaultdict(Tally)
    by_num: dict[str, Tally] = defaultdict(Tally)
    for n in nums:
        if n.kind == "count":
            by_cat[n.category].exact_values.append(exact_of[n])
            by_num[_label(n)].exact_values.append(exact_of[n])
    ideal_cache: dict[tuple[float, int], float] = {}
    for _ in range(releases):
        noisy = release(q.exact, epsilon, threshold=q.threshold, mechanism=q.mechanism, delta=q.delta)
        npart = noisy.part(part_name)
        if any(v is None for v in npart.values):
            raise SystemExit(f"{q.name}: part {part_name} came back with suppressed cells; this benchmark expects a derived partition")
        noisy_cells = np.array(npart.values, dtype=np.int64)
        rows = _rows_by_key(present(noisy).rows, key_cols)
        release_err: dict[str, list[float]] = defaultdict(list)
        for n in nums:
            row = rows[n.key]
            shown, interval = row[n.column], row.get(f"{n.column}_ci95")
            for t in (by_cat[n.category], by_num[_label(n)]):
                t.instances += 1
            if n.kind == "count":
                ck = (npart.scale, len(n.cells))
                if ck not in ideal_cache:
                    ideal_cache[ck] = expected_abs_error(_mech(npart.mechanism), npart.scale, len(n.cells)) / unit
                ideal, exact = ideal_cache[ck], exact_of[n]
                raw = int(noisy_cells[list(n.cells)].sum()) / unit
                err = abs(raw - exact)
                release_err[n.category].append(err)
                if shown is not None and abs(shown - (round(raw) if unit == 1 else round(raw, 4))) > TOLERANCE:
                    raise SystemExit(f"{q.name} {n.key} {n.column}: present() shows {shown}, the cells {n.cells} sum to {raw}: "
                                     "the number map in bench/utility.py no longer mirrors engine/present.py")
                for t in (by_cat[n.category], by_num[_label(n)]):
                    t.abs_err_raw += err
                    t.ideal += ideal
                    t.ideal_values.add(round(ideal, 6))
                    t.terms.add(len(n.cells))
                    if shown is None:
                        t.suppressed += int(n.column in row.get("suppressed_values", []))
                        continue
                    ok = interval is not None and interval[0] - TOLERANCE <= exact <= interval[1] + TOLERANCE
                    t.shown += 1
                    t.covered += ok
                    t.band_shown[band(exact)] += 1
                    t.band_covered[band(exact)] += ok
            else:
                exact = exact_of[n]
                for t in (by_cat[n.category], by_num[_label(n)]):
                    if shown is None or exact is None:
                        t.suppressed += 1
                        continue
                    t.shown += 1
                    t.covered += interval is not None and interval[0] - TOLERANCE <= exact <= interval[1] + TOLERANCE
                    t.outside += interval is not None and (interval[0] < 0 or interval[1] > 1)
                    t.abs_err_shown += abs(shown - exact)
        for cat, errs in release_err.items():
            by_cat[cat].per_release.append(sum(errs) / len(errs))
        for n in nums:
            if n.kind == "count":
                by_num[_label(n)].per_release.append(abs(int(noisy_cells[list(n.cells)].sum()) / unit - exact_of[n]))
    return dict(by_cat), dict(by_num)


def _exact_value(n: Number, cells: np.ndarray, unit: int) -> float | None:
    num = int(cells[list(n.cells)].sum())
    if n.kind == "count":
        return num / unit
    total = num + int(cells[list(n.rest)].sum())
    return None if total <= 0 else num / total


def _label(n: Number) -> str:
    return f"{' / '.join(map(str, n.key))} :: {n.column}"


def _mech(mechanism: str) -> Any:
    return "gaussian" if "gauss" in mechanism else "laplace"


def _rows_by_key(rows: list[dict[str, Any]], key_cols: list[str]) -> dict[tuple[Any, ...], dict[str, Any]]:
    out = {tuple(r[c] for c in key_cols): r for r in rows}
    if len(out) != len(rows):
        raise SystemExit(f"present() rows are not unique by {key_cols}")
    return out


# --- summaries ------------------------------------------------------------------------------------


def summary(t: Tally, kind: str) -> dict[str, Any]:
    out: dict[str, Any] = {"instances": t.instances, "shown": t.shown,
                           "suppressed_share": t.suppressed / t.instances if t.instances else None,
                           "coverage": t.covered / t.shown if t.shown else None}
    if kind == "count":
        mae, ideal = t.abs_err_raw / t.instances, t.ideal / t.instances
        se = float(np.std(t.per_release, ddof=1) / math.sqrt(len(t.per_release))) if len(t.per_release) > 1 else None
        out |= {
            "mae_raw": mae, "ideal_mae": ideal, "ratio": mae / ideal if ideal else None,
            "ratio_se": se / ideal if se is not None and ideal else None,
            "ideal_min": min(t.ideal_values), "ideal_max": max(t.ideal_values),
            "terms": sorted(t.terms), "exact_min": min(t.exact_values), "exact_max": max(t.exact_values),
            "bands": {b: {"shown": t.band_shown[b], "coverage": t.band_covered[b] / t.band_shown[b] if t.band_shown[b] else None}
                      for _, _, b in BANDS},
        }
    else:
        out |= {"mae_shown": t.abs_err_shown / t.shown if t.shown else None,
                "outside_01_share": t.outside / t.shown if t.shown else None}
    return out


def kind_of(category: str) -> str:
    rates = ("conversion", "cumulative_conversion", "financed_share", "match_rate_a", "match_rate_b", "seen_again_rate")
    return "rate" if category.split(" ")[0] in rates else "count"


def run(args: argparse.Namespace) -> dict[str, Any]:
    collab = obtain(args)
    started = time.perf_counter()
    questions = exact_results(collab, args.cases)
    results: list[dict[str, Any]] = []
    for q in questions:
        for eps_text in args.epsilons:
            t0 = time.perf_counter()
            cats, nums = measure(q, Fraction(eps_text), args.releases)
            part = q.exact.part(numbers(q.exact)[0])
            results.append({
                "case": q.name, "epsilon": eps_text, "threshold": q.threshold, "mechanism": q.mechanism,
                "cells": len(part.cells), "execute_s": round(q.execute_s, 3), "seconds": round(time.perf_counter() - t0, 1),
                "categories": {c: summary(t, kind_of(c)) for c, t in cats.items()},
                "numbers": {c: summary(t, kind_of(c.rsplit(' :: ', 1)[1])) for c, t in nums.items()},
            })
            print(f"  {q.name:<13} eps {eps_text:<4} {args.releases} releases in {results[-1]['seconds']} s", file=sys.stderr, flush=True)
    return {"started_at": datetime.now(UTC).isoformat(timespec="seconds"), "command": command(args), "machine": machine(),
            "git": git_version(), "customers": args.customers, "seed": args.seed, "releases": args.releases,
            "wall_seconds": round(time.perf_counter() - started, 1), "results": results}


def obtain(args: argparse.Namespace) -> _collab.Collab:
    """Build the collaboration with the library (or reuse one built by an earlier --keep run)."""
    marker = args.work / "utility-build.json"
    if args.reuse and marker.exists():
        built = json.loads(marker.read_text())
        if built["customers"] == args.customers and built["seed"] == args.seed:
            print(f"reusing the {args.customers:,}-customer collaboration in {args.work}", file=sys.stderr)
            return _collab.Collab(work=args.work, customers=args.customers, seed=args.seed)
    print(f"building a {args.customers:,}-customer collaboration in {args.work} ...", file=sys.stderr, flush=True)
    collab = _collab.build(args.work, REPO, args.customers, args.seed, args.workers, lambda s: print(f"  {s}", file=sys.stderr, flush=True))
    marker.write_text(json.dumps({"customers": args.customers, "seed": args.seed}))
    return collab


def command(args: argparse.Namespace) -> str:
    parts = ["python bench/utility.py"]
    if args.customers != 20_000:
        parts.append(f"--customers {args.customers}")
    if args.releases != 200:
        parts.append(f"--releases {args.releases}")
    if list(args.cases) != list(CASES):
        parts.append("--cases " + " ".join(args.cases))
    if list(args.epsilons) != list(EPSILONS):
        parts.append("--epsilons " + " ".join(args.epsilons))
    return " ".join(parts)


def machine() -> str:
    cpu = "?"
    if Path("/proc/cpuinfo").exists():
        cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("model name")), "?")
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, {platform.system()} {platform.release()}"


def git_version() -> str:
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


# --- markdown -------------------------------------------------------------------------------------


def pct(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None else f"{100 * x:.{digits}f}"


def num(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:,.{digits}f}"


def small(x: float | None) -> str:
    """A rate's error: 4 decimals, or 2 significant digits below 0.001 (at 1M customers rates are that precise)."""
    return "n/a" if x is None else f"{x:.4f}" if x >= 0.001 or x == 0 else f"{x:.1e}"


def cov(b: dict[str, Any]) -> str:
    return "n/a" if not b["shown"] else f"{pct(b['coverage'])} ({b['shown']:,})"


def size(lo: float, hi: float) -> str:
    return f"{lo:,.0f}" if lo == hi else f"{lo:,.0f}–{hi:,.0f}"


def markdown(res: dict[str, Any]) -> str:
    rows = res["results"]
    out = [
        f"Measured {res['started_at'][:16].replace('T', ' ')} UTC on {res['machine']}; code `{res['git']}`; "
        f"{res['customers']:,} customers (seed {res['seed']}), {res['releases']} releases per query and epsilon; "
        f"{res['wall_seconds']:.0f} s in all. Command: `{res['command']}`.",
        "",
        "**Counts** (MAE on every release before suppression; coverage on shown values, with their number in parentheses)",
        "",
        "| query | number | ε | true size | cells summed | ideal MAE | MAE | MAE / ideal (± 2 SE) | suppressed % | coverage % | <20 | 20–99 | ≥100 |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        for cat, s in r["categories"].items():
            if kind_of(cat) != "count":
                continue
            terms = s["terms"]
            t = str(terms[0]) if len(terms) == 1 else f"{terms[0]}–{terms[-1]}"
            ideal = num(s["ideal_mae"]) if s["ideal_min"] == s["ideal_max"] else f"{num(s['ideal_mae'])} ({num(s['ideal_min'])}–{num(s['ideal_max'])})"
            ratio = f"{s['ratio']:.3f} ± {2 * s['ratio_se']:.3f}" if s["ratio_se"] is not None else f"{s['ratio']:.3f}"
            b = s["bands"]
            out.append(f"| {r['case']} | {cat} | {r['epsilon']} | {size(s['exact_min'], s['exact_max'])} | {t} | {ideal} | {num(s['mae_raw'])} | "
                       f"{ratio} | {pct(s['suppressed_share'])} | {pct(s['coverage'])} | {cov(b['<20'])} | {cov(b['20-99'])} | {cov(b['>=100'])} |")
    out += [
        "",
        "**Rates** (shares of two counts; shown only when their numerator count is shown)",
        "",
        "| query | rate | ε | not shown % | MAE when shown | coverage % (shown) | intervals outside [0, 1] % |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        for cat, s in r["categories"].items():
            if kind_of(cat) != "rate":
                continue
            out.append(f"| {r['case']} | {cat} | {r['epsilon']} | {pct(s['suppressed_share'])} | {small(s['mae_shown'])} | "
                       f"{pct(s['coverage'])} ({s['shown']:,}) | {pct(s['outside_01_share'], 2)} |")
    out += [
        "",
        "**Before the rewrite → goal** (ideal MAE at ε = 1; \"now\" is the worst shown number of the kind, and the MAE measured on it)",
        "",
        "| number | before | goal | ideal MAE now (worst) | measured MAE (worst number) | goal met |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for case, cat, before, goal, label in BEFORE:
        r = next((r for r in rows if r["case"] == case and Fraction(r["epsilon"]) == 1), None)
        if r is None or cat not in r["categories"]:
            out.append(f"| {label} | {before} | ≤{goal} | n/a | n/a | n/a |")
            continue
        col = cat.split(" ")[0]
        total_row = "(total row)" in cat
        worst = max(((n, s) for n, s in r["numbers"].items() if n.endswith(f":: {col}") and (n.startswith("total ::") == total_row)),
                    key=lambda item: item[1]["ideal_mae"])
        s = worst[1]
        out.append(f"| {label} | {before} | ≤{goal} | {num(s['ideal_mae'])} | {num(s['mae_raw'])} ({worst[0].split(' :: ')[0]}) | "
                   f"{'yes' if s['ideal_mae'] <= goal else 'NO'} |")
    return "\n".join(out) + "\n"


def write_docs(path: Path, res: dict[str, Any], text: str) -> None:
    """Replace (or append) this customer size's section of docs/accuracy.md, between markers."""
    begin = f"<!-- bench/utility.py results: {res['customers']} customers -->"
    end = f"<!-- end of bench/utility.py results: {res['customers']} customers -->"
    block = f"{begin}\n### {res['customers']:,} customers\n\n{text}{end}"
    current = path.read_text() if path.exists() else "# Accuracy of released numbers\n\n## Results\n"
    if begin in current and end in current:
        head, rest = current.split(begin, 1)
        new = head + block + rest.split(end, 1)[1]
    else:
        new = current.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(new)
    print(f"results written into {path}", file=sys.stderr)


# --- main -----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000, help="synthetic customers (default 20,000: the demo's size)")
    parser.add_argument("--releases", type=int, default=200, help="releases per query and epsilon (default 200)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the synthetic data (default 7, as the demo)")
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES, help="queries to measure (default all)")
    parser.add_argument("--epsilons", nargs="+", default=list(EPSILONS), help="epsilons (default 0.1 0.5 1)")
    parser.add_argument("--workers", type=int, default=2, help="prepare worker processes (default 2)")
    parser.add_argument("--work", type=Path, default=None, help="scratch directory (default $TMPDIR/cleanroom-utility-<customers>; deleted at the end)")
    parser.add_argument("--keep", action="store_true", help="keep --work afterwards (for --reuse)")
    parser.add_argument("--reuse", action="store_true", help="reuse a collaboration built by an earlier --keep run in --work")
    parser.add_argument("--out", type=Path, default=None, help="results JSON (default bench/out/utility-<customers>.json)")
    parser.add_argument("--docs", type=Path, default=DOCS, help="markdown file whose results section is replaced (default docs/accuracy.md)")
    parser.add_argument("--no-docs", dest="write_docs", action="store_false", help="do not touch docs/accuracy.md")
    args = parser.parse_args(argv)
    if args.releases < 2:
        parser.error("--releases must be at least 2")
    args.work = args.work or Path(os.environ.get("TMPDIR") or tempfile.gettempdir()) / f"cleanroom-utility-{args.customers}"
    args.out = args.out or BENCH / "out" / f"utility-{args.customers}.json"
    res = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=1) + "\n")
    text = markdown(res)
    print(text)
    if args.write_docs:
        write_docs(args.docs, res, text)
    if not args.keep:
        shutil.rmtree(args.work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
