"""Vectorized sampling helpers: every draw of the generator goes through numpy, never per row.

The generator must make a million customers in well under a minute, so nothing here loops over
persons or rows in Python. Randomness comes from one seeded ``numpy.random.Generator`` per
component (see :func:`streams`), which keeps the output byte-identical for a seed and lets one
component change without reshuffling the draws of the others.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DAY = 86_400
COMPONENTS = ("population", "journeys", "touches", "consent", "names", "identifiers", "profiles")


def streams(seed: int) -> dict[str, np.random.Generator]:
    """One independent generator per component, derived from the seed and the component's name."""
    children = np.random.SeedSequence(seed).spawn(len(COMPONENTS))
    return {name: np.random.Generator(np.random.PCG64(child)) for name, child in zip(COMPONENTS, children, strict=True)}


def choice(rng: np.random.Generator, weights: Sequence[float], size: int) -> np.ndarray:
    """Codes ``0..len(weights)-1`` drawn with the given (unnormalized) weights, as int16."""
    cum = np.cumsum(np.asarray(weights, dtype=np.float64))
    return np.searchsorted(cum / cum[-1], rng.random(size), side="right").astype(np.int16)


def choice_by_row(rng: np.random.Generator, table: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """For each i, a code drawn with weights ``table[rows[i]]``: one conditional distribution per key."""
    cum = np.cumsum(table, axis=1)
    cum = cum / cum[:, -1:]
    u = rng.random(len(rows))
    return (u[:, None] >= cum[rows]).sum(axis=1).astype(np.int16)


def explode(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Turn per-owner counts into (owner index, position within owner) for every produced row."""
    owners = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    starts = np.cumsum(counts) - counts
    return owners, np.arange(len(owners), dtype=np.int64) - np.repeat(starts, counts)


def geometric_count(rng: np.random.Generator, p: float, cap: int, size: int) -> np.ndarray:
    """1 + a geometric number of extra events, capped: few persons do a lot, most do little."""
    return np.minimum(rng.geometric(p, size), cap).astype(np.int64)


def seconds_between(rng: np.random.Generator, low: np.ndarray | int, high: np.ndarray | int, size: int) -> np.ndarray:
    """Uniform whole seconds in ``[low, high)``, element-wise."""
    low_a = np.asarray(low, dtype=np.int64)
    span = np.maximum(np.asarray(high, dtype=np.int64) - low_a, 1)
    return low_a + (rng.random(size) * span).astype(np.int64)


def pick_other(rng: np.random.Generator, first: np.ndarray, weights: Sequence[float]) -> np.ndarray:
    """A second code different from ``first`` (weighted), for persons who hesitate between two."""
    k = len(weights)
    table = np.tile(np.asarray(weights, dtype=np.float64), (k, 1))
    np.fill_diagonal(table, 0.0)
    return choice_by_row(rng, table, first.astype(np.int64))
