"""Fixtures of the adversarial suite: two neighbouring collaborations and a real gateway over each.

The system harness (``tests/system/collab.py``: ``build_collab``, ``serve``, ``ExactOracle``) is
reused as is: its folder is put on ``sys.path`` here (test folders are not packages), exactly as
pytest does for ``tests/system`` itself.

The neighbouring pair is the heart of the suite. Both collaborations are built from the SAME
synthetic raw data (1,500 customers, seed 11); ``with`` additionally holds one extreme person,
Eve, at EVERY partner (60 rows in every dataset, every consent purpose, measures of 10^12), and
``without`` is the same data with Eve's rows removed from every partner's raw CSVs. Everything
else (keys, salts, peppers) is fresh per world, as it would be in two independent deployments.
Built once per session; tests that change data (uploads, consent, policies) build their own.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "system"))

from adversary import World, add_person, make_world, synth_base  # noqa: E402


@pytest.fixture(scope="session")
def base_raw(tmp_path_factory: pytest.TempPathFactory, repo: Path) -> Path:
    """Synthetic raw partner CSVs for 1,500 customers (seed 11), generated once."""
    return synth_base(tmp_path_factory.mktemp("adv-synth") / "raw", repo)


@pytest.fixture(scope="session")
def raw_with_eve(tmp_path_factory: pytest.TempPathFactory, base_raw: Path) -> Path:
    return add_person(base_raw, tmp_path_factory.mktemp("adv-raw-eve") / "raw")


@pytest.fixture(scope="session")
def worlds(tmp_path_factory: pytest.TempPathFactory, repo: Path, base_raw: Path, raw_with_eve: Path) -> Iterator[dict[bool, World]]:
    """``{True: world with Eve, False: world without}``, each a running gateway, an exact oracle and keys."""
    root = tmp_path_factory.mktemp("adv-worlds")
    with make_world(root / "with", repo, raw_with_eve) as with_eve, make_world(root / "without", repo, base_raw) as without:
        yield {True: with_eve, False: without}
