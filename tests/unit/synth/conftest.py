"""A small synthetic run shared by the synth tests, and its independent pure-Python reading."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _synth_recompute import Recomputed, read_run

from cleanroom.synth import generate

CUSTOMERS = 3000
SEED = 11


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory: pytest.TempPathFactory, repo: Path) -> Path:
    out = tmp_path_factory.mktemp("synth") / "run"
    generate(CUSTOMERS, SEED, out, partners_dir=repo / "partners")
    return out


@pytest.fixture(scope="session")
def truth(synth_dir: Path) -> dict[str, Any]:
    return json.loads((synth_dir / "ground_truth.json").read_text())


@pytest.fixture(scope="session")
def recomputed(synth_dir: Path) -> Recomputed:
    return read_run(synth_dir)
