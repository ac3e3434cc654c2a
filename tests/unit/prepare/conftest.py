"""Fixtures of the prepare tests (the helpers live in prepare_fixtures.py so tests can import them)."""

from __future__ import annotations

from prepare_fixtures import workspace

__all__ = ["workspace"]
