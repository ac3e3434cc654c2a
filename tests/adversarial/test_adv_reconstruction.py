"""Reconstruction (Dinur and Nissim 2003, "Revealing information while preserving privacy"): with
enough subset-count queries answered too accurately, least squares recovers every person's secret bit.

The population: 180 Northside customers, each alone in one (dealer, model, region) cell; the
secret bit is whether the person took a test drive. The brand analyst asks 200 random subset
counts (random IN lists on each of the three dimensions), each at epsilon 0.005, under a policy
whose monthly budget is 1 and whose threshold is 1 (so only DP stands in the way). The same
attack on the EXACT answers (the oracle) reconstructs every bit; on the released answers it does
no better than the trivial baseline (guess the majority bit), and the 201st query is refused
with ``budget.exhausted``.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

import numpy as np
import pytest
from _live_helpers import check_problem
from adversary import BRAND, NORTH, make_world, person_rows, value
from collab import write_csv

DEALERS = [f"NS-0{i}" for i in range(1, 7)]
MODELS = ["aster", "borealis", "cirrus", "dune", "ember", "fjord"]
REGIONS = ["north", "south", "east", "west", "central"]
QUERIES, EPS = 200, 0.005
POLICY = {"privacy": {"monthly_budget_per_partner": 1, "collaboration_monthly_cap": 30, "min_threshold": 1}}


def _population(raw: Path, bits: list[int]) -> None:
    """Replace Northside's test drives by one row per person whose bit is 1; give all 180 Northside consent."""
    drives, consent = raw / NORTH / "test_drives.csv", raw / NORTH / "consent.csv"
    with drives.open(newline="", encoding="utf-8") as fh:
        header = next(csv.reader(fh))
    rows = []
    for k, (d, m, r) in enumerate((d, m, r) for d in DEALERS for m in MODELS for r in REGIONS):
        if bits[k]:
            row = person_rows(NORTH, "test_drives", header, email=f"recon{k}@example.org", crm=f"7{k:07d}", rows=1)[0]
            row[header.index("dealer_id")], row[header.index("model")], row[header.index("region")] = d, m, r
            rows.append(row)
    write_csv(drives, header, rows)
    with consent.open(newline="", encoding="utf-8") as fh:
        c_header = next(csv.reader(fh))
    with consent.open("a", newline="", encoding="utf-8") as fh:
        for k in range(len(bits)):
            csv.writer(fh).writerows(person_rows(NORTH, "consent", c_header, email=f"recon{k}@example.org", crm=f"7{k:07d}"))


def _subset(rng: random.Random, domain: list[str]) -> list[str]:
    picked = [v for v in domain if rng.random() < 0.5]
    return picked or [rng.choice(domain)]


def _reconstruct(design: np.ndarray, answers: np.ndarray) -> np.ndarray:
    x, *_ = np.linalg.lstsq(design, answers, rcond=None)
    return (x > 0.5).astype(int)


def test_random_subset_reconstruction_is_stopped_by_the_budget(tmp_path: Path, repo: Path, base_raw: Path) -> None:
    rng = random.Random(5)
    bits = [int(rng.random() < 0.5) for _ in range(len(DEALERS) * len(MODELS) * len(REGIONS))]
    raw = tmp_path / "raw"
    import shutil

    shutil.copytree(base_raw, raw)
    _population(raw, bits)
    with make_world(tmp_path / "c", repo, raw, policy_overrides=POLICY) as world:
        design, noisy, exact = [], [], []
        cells = [(d, m, r) for d in DEALERS for m in MODELS for r in REGIONS]
        for i in range(QUERIES):
            ds, ms, rs = _subset(rng, DEALERS), _subset(rng, MODELS), _subset(rng, REGIONS)
            sql = ("SELECT COUNT(DISTINCT pid) AS n FROM northside_dealers__test_drives WHERE dealer_id IN ({}) AND model IN ({}) "
                   "AND region IN ({})").format(*(", ".join(f"'{v}'" for v in s) for s in (ds, ms, rs)))
            response = world.query(BRAND, {"sql": sql, "epsilon": EPS})
            if response.status_code == 429:
                break
            assert response.status_code == 200, response.text
            design.append([int(d in ds and m in ms and r in rs) for d, m, r in cells])
            noisy.append(value(response.json(), "n") or 0)
            exact.append(sum(world.oracle.exact(BRAND, "sql", {"sql": sql}).part("n").values))
        assert len(design) == QUERIES, "the budget admits exactly 1 / 0.005 = 200 queries"
        check_problem(world.query(BRAND, {"sql": "SELECT COUNT(DISTINCT pid) AS n FROM northside_dealers__test_drives", "epsilon": EPS}),
                      "budget.exhausted")
        a = np.array(design, dtype=float)
        truth = np.array(bits)
        baseline = max(truth.mean(), 1 - truth.mean())
        from_exact = (_reconstruct(a, np.array(exact, dtype=float)) == truth).mean()
        from_released = (_reconstruct(a, np.array(noisy, dtype=float)) == truth).mean()
        assert from_exact >= 0.95, f"the attack itself must work on exact answers ({from_exact:.2f})"
        # 0.2 above the baseline is more than 5 standard deviations of a coin-flip guess over 180 bits.
        assert from_released < baseline + 0.2, f"reconstructed {from_released:.2f} of the bits (baseline {baseline:.2f})"
