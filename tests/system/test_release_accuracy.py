"""Accuracy on the 1M-customer synthetic collaboration (slow): the reported 95% intervals are honest.

Built once (synth -> keys -> prepare -> ingest -> sign -> activate, about 1-2 minutes), served
by a real uvicorn server. The funnel by model is released K times at epsilon ~1 (epsilon
1 - k*1e-6: each a distinct question, so the release cache never repeats a noise draw) and every
shown stage count (a sum of partition cells) is compared with the synthetic ground truth;
likewise attribution's credited sales per campaign and its totals.

Why a binomial-type bound is sound here: OpenDP's vector Laplace adds independent noise to each
coordinate and every release draws fresh noise, so given the (fixed) data the "truth inside the
interval" indicators are independent across cells and releases, each with probability
p_i = the probability that the sum of the cell's noise draws falls inside its interval. (Cells of one release
share the data and the scale, not the noise.) The number covered is then a sum of independent
Bernoulli(p_i); Bernstein's inequality bounds its deviation from sum(p_i) with failure
probability below 1e-4. The same observations must REJECT intervals 0.7x and 1.4x as wide, so the
test can tell a wrong scale from the right one.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _live_helpers import LiveGateway, bearer
from collab import COLLABORATION, Collab, build_collab, records, serve, synth_raw

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]

CUSTOMERS = 1_000_000
FUNNEL_RELEASES = 60
ATTRIBUTION_RELEASES = 20
FAILURE = 1e-4
DESIGN_EFFECT = 5  # the most numbers of one release that share a noisy partition cell
BUDGETS = {"privacy": {"monthly_budget_per_partner": 1000, "collaboration_monthly_cap": 4000}}
BRAND = "aurora-motors"


@pytest.fixture(scope="module")
def collab(tmp_path_factory: pytest.TempPathFactory, repo: Path) -> Collab:
    root = tmp_path_factory.mktemp("million")
    raw = synth_raw(root / "raw", repo, customers=CUSTOMERS, seed=11)
    return build_collab(root / "collab", repo, raw_source=raw, policy_overrides=BUDGETS, prepare_workers=2)


@pytest.fixture(scope="module")
def gateway(collab: Collab) -> Iterator[LiveGateway]:
    with serve(collab.config()) as live:
        yield live


def _release(gateway: LiveGateway, key: str, template: str, params: dict[str, Any], k: int) -> dict[str, Any]:
    body = {"collaboration": COLLABORATION, "template": template, "params": params, "epsilon": round(1 - k * 1e-6, 6)}
    response = httpx.post(f"{gateway.url}/v1/queries", json=body, headers=bearer(key), timeout=300)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["cached"] is False
    return dict(result)


# --- the statistics --------------------------------------------------------------------------------


def covered_probability(terms: int, scale_units: float, low_gap: float, high_gap: float) -> float:
    """P(-high_gap <= noise <= low_gap) for the sum of ``terms`` discrete Laplace draws (value units).

    The shown interval is [v - low_gap, v + high_gap]; it holds the truth when the noise v - truth
    lies in [-high_gap, low_gap]. Far above the threshold (every cell here) the interval is the
    plain one, so this is exactly the probability the release promises.
    """
    from cleanroom.dp.accuracy import noise_sum

    noise = noise_sum("laplace", scale_units, terms)
    inside = (noise.values >= -high_gap - 1e-6) & (noise.values <= low_gap + 1e-6)
    return float(noise.pmf[inside].sum())


def bernstein_margin(ps: list[float], failure: float = FAILURE) -> float:
    """t with P(|sum(B_i) - sum(p_i)| >= t) <= failure for independent B_i ~ Bernoulli(p_i)."""
    variance = sum(p * (1 - p) for p in ps)
    log_term = math.log(2 / failure)
    b = 2 * log_term / 3
    return (b + math.sqrt(b * b + 8 * log_term * variance)) / 2


class Coverage:
    """Observations and the test on them: (value, interval, truth, cells summed, scale per cell, unit)."""

    def __init__(self) -> None:
        self.cells: list[tuple[float, float, float, float, int, float, int]] = []

    def add(self, value: float | None, interval: list[float], truth: float, terms: int, scale: float, unit: int = 1) -> None:
        assert value is not None, "nothing should be suppressed at 1M customers"
        self.cells.append((value, value - interval[0], interval[1] - value, truth, terms, scale, unit))

    def check(self, width_factor: float = 1.0) -> tuple[float, float, float]:
        """(observed fraction covered, expected fraction if the intervals are right, allowed deviation).

        Numbers of one release that sum overlapping partition cells are correlated (a stage count
        shares cells with up to four others of its group), so Bernstein's margin for independent
        indicators is widened by the square root of that overlap (DESIGN_EFFECT): conservative.
        """
        covered = sum(v - lo * width_factor - 1e-6 <= t <= v + hi * width_factor + 1e-6 for v, lo, hi, t, _, _, _ in self.cells)
        ps = [covered_probability(k, s * u, lo * u * width_factor, hi * u * width_factor) for _, lo, hi, _, k, s, u in self.cells]
        n = len(self.cells)
        return covered / n, sum(ps) / n, bernstein_margin(ps) * math.sqrt(DESIGN_EFFECT) / n


# --- funnel ------------------------------------------------------------------------------------------


def test_funnel_by_model_intervals_cover_the_truth_95_percent(collab: Collab, gateway: LiveGateway) -> None:
    """Stage k of a cohort cell sums the partition cells of stage k and every later one (financed after sale)."""
    assert collab.truth is not None
    truth = collab.truth["funnel"]["cohort"]["configurator"]["by"]["model"]["cells"]
    key = collab.mint(BRAND, "analyst")
    coverage = Coverage()
    for k in range(FUNNEL_RELEASES):
        result = _release(gateway, key, "funnel", {"dimensions": ["model"]}, k)
        scale = {n["part"]: n for n in result["noise"]}["reached"]["scale"]
        rows = records(result)
        stages = list(dict.fromkeys(r["stage"] for r in rows))
        for row in rows:
            stage = row["stage"]
            terms = 1 if stage == "financed" else len(stages) - stages.index(stage)
            coverage.add(row["persons"], row["persons_ci95"], truth[row["model"]]["persons"][stage], terms, scale)
    observed, expected, margin = coverage.check()
    print(f"\nfunnel by model, {FUNNEL_RELEASES} releases x 30 numbers at epsilon ~1 (scale {scale:g}): "
          f"coverage {observed:.4f}, expected {expected:.4f} ± {margin:.4f}")
    assert len(coverage.cells) == FUNNEL_RELEASES * 30
    assert 0.93 <= expected <= 0.97, "the shown interval must be a 95% interval of the shown scale"
    assert abs(observed - expected) <= margin
    narrow, _, _ = coverage.check(0.6)
    wide, _, _ = coverage.check(1.6)
    print(f"  the same draws against intervals 0.6x / 1.6x as wide: coverage {narrow:.4f} / {wide:.4f} (rejected)")
    assert abs(narrow - expected) > margin and abs(wide - expected) > margin


# --- attribution -------------------------------------------------------------------------------------


def test_attribution_credits_and_totals_match_the_truth_within_their_intervals(collab: Collab, gateway: LiveGateway) -> None:
    """Per campaign: credited sales (2 cells: financed and not) and financed credits (1 cell); the total row sums all 18."""
    assert collab.truth is not None
    credit = collab.truth["attribution"]["credit"]["campaign"]["last_touch"]
    key = collab.mint(BRAND, "analyst")
    coverage = Coverage()
    for k in range(ATTRIBUTION_RELEASES):
        result = _release(gateway, key, "attribution", {"model": "last_touch", "by": "campaign"}, k)
        scale = {n["part"]: n["scale"] for n in result["noise"]}["credit"]
        for row in records(result):
            if row["campaign"] == "total":
                cells = list(credit.values())
                truths, terms = (sum(c["not_financed"] + c["financed"] for c in cells), sum(c["financed"] for c in cells)), (2 * len(cells), len(cells))
            else:
                c = credit[row["campaign"]]
                truths, terms = (c["not_financed"] + c["financed"], c["financed"]), (2, 1)
            for column, value, n in zip(("credited_sales", "credited_financed_sales"), truths, terms, strict=True):
                coverage.add(row[column], row[f"{column}_ci95"], float(value), n, scale * 1000, 1000)
    observed, expected_fraction, margin = coverage.check()
    print(f"\nattribution (last touch, by campaign), {ATTRIBUTION_RELEASES} releases x {len(coverage.cells) // ATTRIBUTION_RELEASES} numbers: "
          f"coverage {observed:.4f}, expected {expected_fraction:.4f} ± {margin:.4f}")
    assert abs(observed - expected_fraction) <= margin
