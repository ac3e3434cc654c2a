"""Fixtures of the engine tests; the helpers themselves live in engine_kit.py."""

from __future__ import annotations

import pytest
from engine_kit import Tables, make_scope

from cleanroom.engine import Scope


@pytest.fixture()
def tables() -> Tables:
    return Tables()


@pytest.fixture()
def scope() -> Scope:
    return make_scope()
