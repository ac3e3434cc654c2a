"""Audit entries keep large parameters as a digest: a free refusal cannot grow the log by megabytes."""

from __future__ import annotations

from cleanroom.crypto import canonical_json, sha256_hex
from cleanroom.gateway.release import AUDIT_PARAMS_MAX_BYTES, bounded_params


def test_small_parameters_are_kept_verbatim() -> None:
    params = {"dimensions": ["model"], "filters": {"region": ["north"]}}
    assert bounded_params(params) == params


def test_large_parameters_become_a_bounded_digest() -> None:
    params = {"filters": {"model": ["x" * 1000] * 1000}, "dimensions": ["month"]}
    kept = bounded_params(params)
    assert kept == {"sha256": sha256_hex(canonical_json(params)), "bytes": len(canonical_json(params)), "keys": ["dimensions", "filters"]}
    assert len(canonical_json(kept)) < AUDIT_PARAMS_MAX_BYTES
