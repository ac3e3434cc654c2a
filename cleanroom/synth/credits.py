"""Attribution credit models in integer milli-credits, exactly as docs/explanation/metrics.md defines.

Each sale's touches (oldest first, at most ``max_touches``) share 1000 milli-credits. Every touch
but the last gets ``floor(1000 * weight)``; the last touch gets the residue, so a sale's credits
sum to exactly 1000. Linear and position-based weights use integer division so that exact
fractions never lose a milli-credit to floating point; time decay uses ``2^(-d / half_life)``
and adds 1e-9 before flooring.
"""

from __future__ import annotations

import numpy as np

from cleanroom.synth.domains import ATTRIBUTION_MODELS, HALF_LIFE_DAYS

# Added before flooring time-decay shares so a share that is mathematically an integer never loses
# a milli-credit to floating-point representation (the engine's SQL does the same).
TIME_DECAY_EPSILON = 1e-9


def group_positions(group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For touches sorted by sale: each touch's 0-based position and its sale's touch count."""
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    counts = np.diff(np.r_[starts, len(group)])
    return np.arange(len(group)) - np.repeat(starts, counts), np.repeat(counts, counts)


def milli_credits(model: str, group: np.ndarray, days: np.ndarray, half_life: float = HALF_LIFE_DAYS) -> np.ndarray:
    """Milli-credits per touch for one model; ``group`` is sorted and ``days`` is touch-to-sale time."""
    pos, n = group_positions(group)
    last = pos == n - 1
    share = _shares(model, pos, n, days, group, half_life)
    share = np.where(last, 0, share)
    residue = 1000 - np.bincount(group, weights=share, minlength=group.max() + 1 if len(group) else 0).astype(np.int64)
    return np.where(last, residue[group], share).astype(np.int64)


def _shares(model: str, pos: np.ndarray, n: np.ndarray, days: np.ndarray, group: np.ndarray, half_life: float) -> np.ndarray:
    """Milli-credits of every touch before the residue is settled on the last one."""
    if model == "first_touch":
        return np.where(pos == 0, 1000, 0)
    if model == "last_touch":
        return np.where(pos == n - 1, 1000, 0)
    if model == "linear":
        return 1000 // n
    if model == "position_based":
        middle = np.where(n >= 3, 200 // np.maximum(n - 2, 1), 0)
        ends = np.where(n == 1, 1000, np.where(n == 2, 500, 400))
        return np.where((pos == 0) | (pos == n - 1), ends, middle)
    if model == "time_decay":
        weight = np.power(2.0, -days / half_life)
        total = np.bincount(group, weights=weight)[group]
        return np.floor(1000.0 * weight / total + TIME_DECAY_EPSILON).astype(np.int64)
    raise ValueError(f"unknown credit model {model!r} (known: {', '.join(ATTRIBUTION_MODELS)})")
