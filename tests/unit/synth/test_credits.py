"""Credit models on hand-made sales: every sale's touches share exactly 1000 milli-credits."""

from __future__ import annotations

import numpy as np
import pytest

from cleanroom.synth.credits import milli_credits
from cleanroom.synth.domains import ATTRIBUTION_MODELS

# Three sales: one touch; two touches; four touches (7, 3, 1, 0 days before the sale).
GROUP = np.array([0, 1, 1, 2, 2, 2, 2])
DAYS = np.array([2.0, 10.0, 0.5, 7.0, 3.0, 1.0, 0.0])


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("first_touch", [1000, 1000, 0, 1000, 0, 0, 0]),
        ("last_touch", [1000, 0, 1000, 0, 0, 0, 1000]),
        ("linear", [1000, 500, 500, 250, 250, 250, 250]),
        ("position_based", [1000, 500, 500, 400, 100, 100, 400]),
    ],
)
def test_exact_models(model: str, expected: list[int]) -> None:
    assert milli_credits(model, GROUP, DAYS).tolist() == expected


def test_linear_residue_goes_to_the_last_touch() -> None:
    assert milli_credits("linear", np.array([0, 0, 0]), np.zeros(3)).tolist() == [333, 333, 334]
    assert milli_credits("position_based", np.array([0] * 5), np.zeros(5)).tolist() == [400, 66, 66, 66, 402]


def test_time_decay_halves_per_half_life() -> None:
    credits = milli_credits("time_decay", np.array([0, 0]), np.array([7.0, 0.0]))
    assert credits.tolist() == [333, 667]  # weights 1/2 and 1, normalized to 1/3 and 2/3


@pytest.mark.parametrize("model", ATTRIBUTION_MODELS)
def test_every_sale_sums_to_1000(model: str) -> None:
    rng = np.random.default_rng(0)
    group = np.sort(rng.integers(0, 200, 1500))
    days = rng.random(1500) * 30
    total = np.bincount(group, weights=milli_credits(model, group, days))
    assert set(total[np.unique(group)].tolist()) == {1000.0}


def test_unknown_model_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown credit model"):
        milli_credits("u_shaped", GROUP, DAYS)
