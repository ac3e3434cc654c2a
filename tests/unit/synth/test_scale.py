"""1,000,000 customers in under a minute on two cores (``make test-slow``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cleanroom.synth import generate


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_one_million_customers_under_a_minute(tmp_path: Path, repo: Path) -> None:
    summary = generate(1_000_000, 2026, tmp_path / "big", partners_dir=repo / "partners")
    assert summary.seconds < 60, f"took {summary.seconds:.1f} s"
    truth = json.loads((tmp_path / "big" / "ground_truth.json").read_text())
    assert truth["identities"]["persons"] > 900_000
    assert truth["funnel"]["stage_activity"]["overall"]["sale"] > 10_000


def test_twenty_thousand_customers_in_seconds(tmp_path: Path, repo: Path) -> None:
    summary = generate(20_000, 1, tmp_path / "small", partners_dir=repo / "partners")
    assert summary.seconds < 15, f"took {summary.seconds:.1f} s"
