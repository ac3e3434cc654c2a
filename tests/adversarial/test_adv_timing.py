"""Timing side channel (Debenedetti et al. 2023, "Privacy side channels in machine learning systems";
Andrysco et al. 2015 on timing in DP systems): another partner adds 10,000 rows for one person to
its data; can an analyst tell from how long an uncached release takes?

Defence claimed by the product: ``Limits.release_time_quantum_s`` (default 50 ms) pads every
uncached release to a whole multiple of the quantum (``release.pad_to_quantum``).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from _live_helpers import bearer
from adversary import BRAND, NORTH, World, add_person, fresh_epsilon, make_world
from collab import COLLABORATION

from cleanroom.gateway import Limits

QUANTUM_S = 1.0


def test_the_configured_time_quantum_pads_uncached_releases(tmp_path: Path, repo: Path, base_raw: Path) -> None:
    with make_world(tmp_path / "c", repo, base_raw, limits=Limits(release_time_quantum_s=QUANTUM_S)) as world:
        started = time.perf_counter()
        response = world.query(BRAND, {"template": "funnel", "params": {}, "epsilon": 0.5})
        elapsed = time.perf_counter() - started
        assert response.status_code == 200
        assert elapsed >= QUANTUM_S * 0.99, f"an uncached release answered after {elapsed * 1000:.0f} ms"


@pytest.fixture(scope="module")
def timing_worlds(tmp_path_factory: pytest.TempPathFactory, repo: Path, base_raw: Path) -> Iterator[dict[bool, World]]:
    """With and without one person holding 10,000 brand web sessions, both at the DEFAULT limits (50 ms quantum)."""
    root = tmp_path_factory.mktemp("adv-timing")
    heavy = add_person(base_raw, root / "raw-heavy", only=f"{BRAND}/web_sessions", rows=10_000)
    with make_world(root / "heavy", repo, heavy, limits=Limits()) as w1, make_world(root / "plain", repo, base_raw, limits=Limits()) as w0:
        yield {True: w1, False: w0}


@pytest.mark.slow
def test_response_time_does_not_reveal_one_persons_rows(timing_worlds: dict[bool, World]) -> None:
    times: dict[bool, list[float]] = {True: [], False: []}
    body = {"collaboration": COLLABORATION, "template": "funnel", "params": {}}
    for _ in range(100):
        for w in (True, False):
            world = timing_worlds[w]
            started = time.perf_counter()
            r = world.client.post("/v1/queries", json={**body, "epsilon": fresh_epsilon(0.9)}, headers=bearer(world.analysts[BRAND]))
            times[w].append(time.perf_counter() - started)
            assert r.status_code == 200 and r.json()["cached"] is False
    z = mann_whitney_z(times[True], times[False])
    # Generous: |z| < 4 is what two equal distributions give all but 6 times in 100,000 (normal approximation).
    assert abs(z) < 4, (f"timing tells the worlds apart: Mann-Whitney z = {z:.1f}, medians "
                        f"{statistics.median(times[True]) * 1000:.1f} vs {statistics.median(times[False]) * 1000:.1f} ms")


def mann_whitney_z(a: list[float], b: list[float]) -> float:
    """The normal approximation of the Mann-Whitney U statistic (robust: ranks only, no timing threshold)."""
    ranked = sorted([(v, 0) for v in a] + [(v, 1) for v in b])
    rank_a = sum(i + 1 for i, (_, side) in enumerate(ranked) if side == 0)
    n, m = len(a), len(b)
    u = rank_a - n * (n + 1) / 2
    return (u - n * m / 2) / (n * m * (n + m + 1) / 12) ** 0.5
