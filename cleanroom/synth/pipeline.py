"""``generate``: the whole synthetic collaboration in one call, raw partner files plus ground truth.

Order matters only for clarity, not for randomness: each component draws from its own seeded
stream, so the output is byte-identical for a seed. The steps are population -> journeys ->
datasets -> consent -> identifiers -> files -> truth; files are written next to their final name
and renamed, so an interrupted run never leaves a half-written CSV or truth file behind.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from cleanroom.errors import ConfigError
from cleanroom.partners import Partner, load_partners
from cleanroom.settings import Paths
from cleanroom.synth import datasets as ds
from cleanroom.synth.calendar import Period
from cleanroom.synth.consent import consent_rows, first_seen
from cleanroom.synth.domains import DEALER_GROUPS, DEFAULT_END_DATE, DEFAULT_PHONE_REGION, months, period_start
from cleanroom.synth.expected import identity_summary, prepare_summary
from cleanroom.synth.frame import Rows
from cleanroom.synth.identifiers import build_emails, build_phones
from cleanroom.synth.journeys import build_journeys
from cleanroom.synth.names import build_pools
from cleanroom.synth.people import build_population
from cleanroom.synth.profiles import build_profile
from cleanroom.synth.sampling import DAY, streams
from cleanroom.synth.touches import campaign_touches
from cleanroom.synth.truth import Truth
from cleanroom.synth.writer import Output, build_output, csv_table, write_csv

GENERATOR_VERSION = "1"
MAX_CUSTOMERS = 10_000_000
EARLIEST_END = date(2023, 12, 31)
LATEST_END = date(2099, 12, 31)
GROUND_TRUTH = "ground_truth.json"
ROLE_DATASETS = {
    "brand": ("web_sessions", "campaign_touches", "consent"),
    "dealer": ("leads", "test_drives", "sales", "consent"),
    "finance": ("applications", "contracts", "consent"),
}
STEPS = ("population", "journeys", "identifiers", "files", "truth")

Progress = Callable[[str, int, int], None]
"""Called as ``progress(step, done, total)`` after each step (``STEPS``)."""


class SynthSummary(BaseModel):
    """What a run produced: where, how many rows per file, how many persons, how long it took."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    customers: int
    seed: int
    end_date: date
    out: str
    ground_truth: str
    generator_version: str
    files: dict[str, int]
    rows: int
    persons: int
    seconds: float


def generate(
    customers: int,
    seed: int,
    out: Path,
    end_date: date = DEFAULT_END_DATE,
    partners_dir: Path | None = None,
    progress: Progress | None = None,
) -> SynthSummary:
    """Write ``out/<partner>/<dataset>.csv`` for every declared dataset and ``out/ground_truth.json``."""
    started = time.perf_counter()
    _check_arguments(customers, seed, end_date)
    partners = load_partners(partners_dir or Paths.resolve().partners)
    roles = _check_partners(partners)
    report = progress or (lambda step, done, total: None)
    outputs, truth = _run(customers, seed, end_date, partners, roles, out, report)
    truth_path = out / GROUND_TRUTH
    _write_json(truth, truth_path)
    report("truth", len(STEPS), len(STEPS))
    files = {f"{o.partner}/{o.dataset}.csv": len(o.rows) for o in outputs}
    return SynthSummary(
        customers=customers, seed=seed, end_date=end_date, out=str(out), ground_truth=str(truth_path),
        generator_version=GENERATOR_VERSION, files=files, rows=sum(files.values()),
        persons=truth["identities"]["persons"], seconds=round(time.perf_counter() - started, 3),
    )


def _check_arguments(customers: int, seed: int, end_date: date) -> None:
    if not EARLIEST_END <= end_date <= LATEST_END:
        raise ConfigError(
            "config.invalid",
            f"--end-date must lie between {EARLIEST_END} and {LATEST_END} (older contracts start in 2022), got {end_date}",
            key="end_date",
        )
    if not 1 <= customers <= MAX_CUSTOMERS:
        raise ConfigError("config.invalid", f"--customers must be between 1 and {MAX_CUSTOMERS:,}, got {customers:,}", key="customers")
    if seed < 0:
        raise ConfigError("config.invalid", f"--seed must be a non-negative integer, got {seed}", key="seed")


def _check_partners(partners: dict[str, Partner]) -> dict[str, str]:
    """The generator writes the demo's shape: one brand, one finance partner, known dealer groups."""
    for pid, partner in partners.items():
        wanted = set(ROLE_DATASETS[partner.role])
        declared = set(partner.datasets)
        if declared != wanted:
            raise ConfigError(
                "partner.invalid",
                f"partner {pid!r} ({partner.role}) declares datasets {sorted(declared)}; cleanroom synth writes "
                f"exactly {sorted(wanted)} for a {partner.role}",
                partner=pid,
            )
        if partner.role == "dealer" and pid not in DEALER_GROUPS:
            raise ConfigError("partner.invalid", f"dealer partner {pid!r} is not one of the synthetic dealer groups {list(DEALER_GROUPS)}", partner=pid)
    for role, allowed in (("brand", (1,)), ("finance", (1,)), ("dealer", (1, 2))):
        count = sum(p.role == role for p in partners.values())
        if count not in allowed:
            wanted = "exactly one" if allowed == (1,) else "one or two"
            raise ConfigError("partner.invalid", f"cleanroom synth needs {wanted} {role} partner(s), found {count}", key="role")
    return {pid: p.role for pid, p in partners.items()}


def _business_rows(seed: int, customers: int, period: Period, roles: dict[str, str], report: Progress) -> dict[tuple[str, str], Rows]:
    rng = streams(seed)
    pop = build_population(rng["population"], customers, period)
    report("population", 1, len(STEPS))
    jr = build_journeys(rng["journeys"], pop, period)
    brand = next(p for p, r in roles.items() if r == "brand")
    finance = next(p for p, r in roles.items() if r == "finance")
    rows = {
        (brand, "web_sessions"): ds.web_sessions(rng["journeys"], pop, jr, period),
        (brand, "campaign_touches"): campaign_touches(rng["touches"], pop, jr, period),
        (finance, "applications"): ds.applications(rng["journeys"], pop, jr, period),
        (finance, "contracts"): ds.contracts(pop, jr),
    }
    for dataset, build in (("leads", ds.leads), ("test_drives", ds.test_drives), ("sales", ds.sales)):
        for group, group_rows in build(rng["journeys"], pop, jr, period).items():
            if group in roles:
                rows[(group, dataset)] = group_rows
    report("journeys", 2, len(STEPS))
    return rows


def _with_consent(seed: int, customers: int, rows: dict[tuple[str, str], Rows], roles: dict[str, str], period: Period) -> dict[tuple[str, str], Rows]:
    rng = streams(seed)["consent"]
    out = dict(rows)
    for partner in sorted(roles):
        parts = [(r.pid, _first_time(r)) for (p, _), r in rows.items() if p == partner]
        out[(partner, "consent")] = consent_rows(rng, roles[partner], first_seen(customers, parts), period)
    return out


def _first_time(rows: Rows) -> np.ndarray:
    """The first time column of a dataset, in seconds (dates become midnight)."""
    for name in ("session_at", "touched_at", "lead_at", "drive_at", "sold_at", "applied_at"):
        if name in rows.columns:
            return rows.columns[name]
    return rows.columns["start_date"].astype("int64") * DAY  # type: ignore[union-attr]


def _known(rows: dict[tuple[str, str], Rows], partner: str, customers: int) -> np.ndarray:
    """Every person with at least one row (consent included) at the partner, in id order."""
    seen = np.zeros(customers, dtype=bool)
    for (p, _), r in rows.items():
        if p == partner:
            seen[r.pid] = True
    return np.flatnonzero(seen)


def _run(
    customers: int, seed: int, end_date: date, partners: dict[str, Partner], roles: dict[str, str], out: Path, report: Progress
) -> tuple[list[Output], dict[str, Any]]:
    period = Period.of(end_date)
    rows = _with_consent(seed, customers, _business_rows(seed, customers, period, roles, report), roles, period)
    rng = streams(seed)
    emails = build_emails(rng["identifiers"], build_pools(seed), customers)
    phones = build_phones(rng["identifiers"], customers)
    profiles = {
        partner: build_profile(rng["profiles"], partner, roles[partner], _known(rows, partner, customers), emails, phones, customers)
        for partner in sorted(roles)
    }
    report("identifiers", 3, len(STEPS))
    outputs = [
        build_output(p, d, partners[p].datasets[d], rows[(p, d)], profiles[p])
        for p in sorted(partners) for d in partners[p].datasets
    ]
    # A stale truth must never sit next to new files: drop it before the first file is replaced.
    (out / GROUND_TRUTH).unlink(missing_ok=True)
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda o: write_csv(csv_table(o, profiles[o.partner], emails), out / o.partner / f"{o.dataset}.csv"), outputs))
    report("files", 4, len(STEPS))
    return outputs, _truth(outputs, roles, period, customers, seed, end_date)


def _truth(outputs: list[Output], roles: dict[str, str], period: Period, customers: int, seed: int, end_date: date) -> dict[str, Any]:
    truth = Truth(outputs, roles, period)
    try:
        return _truth_document(truth, outputs, customers, seed, end_date)
    finally:
        truth.close()


def _truth_document(truth: Truth, outputs: list[Output], customers: int, seed: int, end_date: date) -> dict[str, Any]:
    return {
        "generator": {"name": "cleanroom synth", "version": GENERATOR_VERSION},
        "seed": seed,
        "customers": customers,
        "end_date": end_date.isoformat(),
        "period": {"start": period_start(end_date).isoformat(), "end": end_date.isoformat()},
        "months": list(months(end_date)),
        "phone_region": DEFAULT_PHONE_REGION,
        "files": {f"{o.partner}/{o.dataset}.csv": len(o.rows) for o in outputs},
        "identities": identity_summary(outputs, customers),
        "funnel": truth.funnel(),
        "attribution": truth.attribution(),
        "overlap": truth.overlap(),
        "lifecycle": truth.lifecycle(),
        "prepare": prepare_summary(outputs),
    }


def _write_json(data: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)
