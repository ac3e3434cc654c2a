"""Shared fixtures: repository paths, the shared data folder, and fresh temp workspaces."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# No hypothesis test may fail because the machine is busy: no deadlines, anywhere (CI shares 2 cores).
settings.register_profile("cleanroom", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("cleanroom")

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture()
def partners_dir(tmp_path: Path) -> Path:
    """A private copy of partners/ that a test may re-key or edit freely."""
    dest = tmp_path / "partners"
    shutil.copytree(REPO / "partners", dest)
    return dest
