"""Fixtures for policy tests: the shipped partners, a private policy copy, a signing workspace."""

from __future__ import annotations

from pathlib import Path

import pytest
from _policy_env import SignedEnv, copy_policy, make_env

from cleanroom.partners import Partner, load_partners


@pytest.fixture(scope="session")
def partners(repo: Path) -> dict[str, Partner]:
    return load_partners(repo / "partners")


@pytest.fixture()
def policy_file(repo: Path, tmp_path: Path) -> Path:
    """A private copy of policies/aurora-2026.yaml that a test may edit."""
    return copy_policy(repo, tmp_path / "policies")


@pytest.fixture()
def env(repo: Path, tmp_path: Path, partners_dir: Path) -> SignedEnv:
    return make_env(repo, tmp_path, partners_dir)
