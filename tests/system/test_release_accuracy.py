"""Accuracy on the 1M-customer synthetic collaboration (slow): the reported 95% intervals are honest.

Built once (synth -> keys -> prepare -> ingest -> sign -> activate, about 1-2 minutes), served
by a real uvicorn server. The funnel by model is released K times at epsilon ~1 (epsilon
1 - k*1e-6: each a distinct question, so the release cache never repeats a noise draw) and every
released stage count is compared with the synthetic ground truth; likewise attribution's
credited sales per campaign and its totals.

Why a binomial-type bound is sound here: OpenDP's vector Laplace adds independent noise to each
coordinate and every release draws fresh noise, so given the (fixed) data the "truth inside the
interval" indicators are independent across cells and releases, each with probability
p_i = P(|X| <= floor(ci_i)) for a discrete Laplace X of the reported scale. (Cells of one release
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


def covered_probability(scale: float, half_width: float) -> float:
    """P(|X| <= floor(half_width)) for a discrete Laplace X with P(X=k) proportional to exp(-|k|/scale)."""
    q = math.exp(-1 / scale)
    return 1 - 2 * q ** (math.floor(half_width + 1e-9) + 1) / (1 + q)


def bernstein_margin(ps: list[float], failure: float = FAILURE) -> float:
    """t with P(|sum(B_i) - sum(p_i)| >= t) <= failure for independent B_i ~ Bernoulli(p_i)."""
    variance = sum(p * (1 - p) for p in ps)
    log_term = math.log(2 / failure)
    b = 2 * log_term / 3
    return (b + math.sqrt(b * b + 8 * log_term * variance)) / 2


class Coverage:
    """Observations and the test on them: each cell is (value, interval half-width, noise scale, truth,
    unit), values in display units; ``unit`` display units = 1 noise step (1000 for milli-credits)."""

    def __init__(self) -> None:
        self.cells: list[tuple[float, float, float, float, int]] = []

    def add(self, value: float | None, half_width: float, scale: float, truth: float, unit: int = 1) -> None:
        assert value is not None, "nothing should be suppressed at 1M customers"
        self.cells.append((value, half_width, scale, truth, unit))

    def check(self, width_factor: float = 1.0) -> tuple[float, float, float]:
        """(observed fraction covered, expected fraction if the intervals are right, allowed deviation)."""
        covered = sum(abs(v - t) <= h * width_factor + 1e-6 for v, h, _, t, _ in self.cells)
        ps = [covered_probability(s * u, h * u) for _, h, s, _, u in self.cells]
        n = len(self.cells)
        return covered / n, sum(ps) / n, bernstein_margin(ps) / n


def _half(row: dict[str, Any], column: str) -> float:
    low, high = row[f"{column}_ci95"]
    return float(high - low) / 2


# --- funnel ------------------------------------------------------------------------------------------


def test_funnel_by_model_intervals_cover_the_truth_95_percent(collab: Collab, gateway: LiveGateway) -> None:
    assert collab.truth is not None
    truth = collab.truth["funnel"]["by"]["model"]["cells"]
    key = collab.mint(BRAND, "analyst")
    coverage = Coverage()
    for k in range(FUNNEL_RELEASES):
        result = _release(gateway, key, "funnel", {"dimensions": ["model"], "include_medians": False}, k)
        noise = {n["part"]: n for n in result["noise"]}["persons"]
        for row in records(result):
            coverage.add(row["persons"], _half(row, "persons"), noise["scale"], truth[row["stage"]][row["model"]])
    observed, expected, margin = coverage.check()
    print(f"\nfunnel by model, {FUNNEL_RELEASES} releases x 36 cells at epsilon ~1 (scale {noise['scale']:g}, ci95 ±{noise['ci95']:.1f}): "
          f"coverage {observed:.4f}, expected {expected:.4f} ± {margin:.4f}")
    assert len(coverage.cells) == FUNNEL_RELEASES * 36
    assert 0.95 <= expected < 0.96, "the reported interval must be a 95% interval of the reported scale"
    assert abs(observed - expected) <= margin
    narrow, _, _ = coverage.check(0.7)
    wide, _, _ = coverage.check(1.4)
    print(f"  the same draws against intervals 0.7x / 1.4x as wide: coverage {narrow:.4f} / {wide:.4f} (rejected)")
    assert abs(narrow - expected) > margin and abs(wide - expected) > margin


# --- attribution -------------------------------------------------------------------------------------


def test_attribution_credits_and_totals_match_the_truth_within_their_intervals(collab: Collab, gateway: LiveGateway) -> None:
    assert collab.truth is not None
    truth = collab.truth["attribution"]
    by_campaign = truth["by"]["campaign"]["last_touch"]
    key = collab.mint(BRAND, "analyst")
    coverage = Coverage()
    for k in range(ATTRIBUTION_RELEASES):
        result = _release(gateway, key, "attribution", {"model": "last_touch", "by": "campaign"}, k)
        scales = {n["part"]: n["scale"] for n in result["noise"]}
        for row in records(result):
            expected = _attribution_truth(truth, by_campaign, row["campaign"])
            total = row["campaign"] == "total"  # the `sales` count part (unit 1); every other row a credit part (milli-credits)
            for column, part, value in (("credited_sales", "credit", expected[0]), ("credited_financed_sales", "credit_financed", expected[1])):
                scale, unit = (scales["sales"], 1) if total else (scales[part], 1000)
                coverage.add(row[column], _half(row, column), scale, value, unit)
    observed, expected_fraction, margin = coverage.check()
    print(f"\nattribution (last touch, by campaign), {ATTRIBUTION_RELEASES} releases x {len(coverage.cells) // ATTRIBUTION_RELEASES} cells: "
          f"coverage {observed:.4f}, expected {expected_fraction:.4f} ± {margin:.4f}")
    assert abs(observed - expected_fraction) <= margin


def _attribution_truth(truth: dict[str, Any], by_campaign: dict[str, Any], campaign: str) -> tuple[float, float]:
    if campaign == "total":
        return float(truth["sales"]), float(truth["financed_sales"])
    if campaign == "unattributed":
        return float(truth["unattributed"]), _unattributed_financed(truth, by_campaign)
    cell = by_campaign[campaign]
    return float(cell["credited_sales"]), float(cell["credited_financed_sales"])


def _unattributed_financed(truth: dict[str, Any], by_campaign: dict[str, Any]) -> float:
    """Financed sales without a touch: all financed sales minus those credited to a campaign."""
    return float(truth["financed_sales"]) - sum(float(c["credited_financed_sales"]) for c in by_campaign.values())
