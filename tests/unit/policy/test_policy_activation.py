"""Activation refuses unsigned policies, records the hash, audits; active_policy re-checks."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from _policy_env import SignedEnv, edit

from cleanroom.audit import AuditLog
from cleanroom.crypto import new_signing_key, public_key_text
from cleanroom.errors import CleanroomError
from cleanroom.partners import set_public_key
from cleanroom.policy import activate, active_policy, content_hash, history, load_policy

IN_PERIOD = datetime(2026, 3, 1, tzinfo=UTC)


def test_activation_refuses_unsigned(env: SignedEnv) -> None:
    env.sign("aurora-motors", "northside-dealers", "lakeside-autos")
    with pytest.raises(CleanroomError) as exc:
        activate(env.policy, env.store, env.partners, "test", now=IN_PERIOD)
    assert exc.value.code == "policy.unsigned"
    assert "aurora-financial" in exc.value.message
    assert not (env.store / "policies" / "aurora-2026.active.json").exists()
    assert [e.event for e in AuditLog(env.store / "audit.jsonl").entries()] == ["policy.sign"] * 3


def test_activation_refuses_invalid(env: SignedEnv) -> None:
    env.sign()
    edit(env.policy, "consent: [measurement, attribution] ", "consent: [measurement, marketting] ")
    with pytest.raises(CleanroomError) as exc:
        activate(env.policy, env.store, env.partners, "test", now=IN_PERIOD)
    assert exc.value.code == "policy.invalid"


def test_activation_records_hash_and_audits(env: SignedEnv) -> None:
    env.sign()
    record = activate(env.policy, env.store, env.partners, "compliance-desk", now=IN_PERIOD)
    policy = load_policy(env.policy, env.partners)
    assert record.content_hash == content_hash(policy)
    active = json.loads((env.store / "policies" / "aurora-2026.active.json").read_text())
    assert active["content_hash"] == record.content_hash and sorted(active["signers"]) == sorted(record.signers)
    assert (env.store / "policies" / "versions" / f"{record.content_hash}.json").read_bytes() != b""
    last = list(AuditLog(env.store / "audit.jsonl").entries())[-1]
    assert (last.event, last.actor, last.details["content_hash"]) == ("policy.activate", "compliance-desk", record.content_hash)
    assert AuditLog(env.store / "audit.jsonl").verify().ok
    activate(env.policy, env.store, env.partners, "compliance-desk", now=IN_PERIOD)
    assert len(history(env.store, "aurora-2026")) == 2  # append-only history


def test_active_policy_in_force(env: SignedEnv) -> None:
    env.sign()
    activate(env.policy, env.store, env.partners, "test", now=IN_PERIOD)
    policy = active_policy("aurora-2026", env.policy.parent, env.store, env.partners, now=IN_PERIOD)
    assert policy.collaboration == "aurora-2026"


def test_active_policy_refuses_after_edit(env: SignedEnv) -> None:
    env.sign()
    activate(env.policy, env.store, env.partners, "test", now=IN_PERIOD)
    edit(env.policy, "min_threshold: 20 ", "min_threshold: 21 ")
    with pytest.raises(CleanroomError) as exc:
        active_policy("aurora-2026", env.policy.parent, env.store, env.partners, now=IN_PERIOD)
    assert exc.value.code == "policy.not_active" and "changed since it was activated" in exc.value.message
    env.sign()  # re-signed, but not re-activated: still refused
    with pytest.raises(CleanroomError) as exc:
        active_policy("aurora-2026", env.policy.parent, env.store, env.partners, now=IN_PERIOD)
    assert exc.value.code == "policy.not_active"


def test_active_policy_refuses_when_a_signature_no_longer_verifies(env: SignedEnv) -> None:
    env.sign()
    activate(env.policy, env.store, env.partners, "test", now=IN_PERIOD)
    set_public_key(env.partners_dir, "northside-dealers", "compliance", public_key_text(new_signing_key()))
    with pytest.raises(CleanroomError) as exc:
        active_policy("aurora-2026", env.policy.parent, env.store, env.partners, now=IN_PERIOD)
    assert exc.value.code == "policy.not_active" and "northside-dealers" in exc.value.message


def test_nothing_activated(env: SignedEnv) -> None:
    with pytest.raises(CleanroomError) as exc:
        active_policy("aurora-2026", env.policy.parent, env.store, env.partners)
    assert exc.value.code == "policy.not_active"


def test_expired_outside_validity(env: SignedEnv) -> None:
    env.sign()
    activate(env.policy, env.store, env.partners, "test", now=IN_PERIOD)
    for when in (datetime(2025, 10, 31, 23, 0, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=UTC)):
        with pytest.raises(CleanroomError) as exc:
            active_policy("aurora-2026", env.policy.parent, env.store, env.partners, now=when)
        assert exc.value.code == "policy.expired"
    assert active_policy("aurora-2026", env.policy.parent, env.store, env.partners, now=datetime(2027, 12, 31, 23, 59, tzinfo=UTC))
    with pytest.raises(CleanroomError) as exc:
        activate(env.policy, env.store, env.partners, "test", now=datetime(2028, 1, 1, tzinfo=UTC))
    assert exc.value.code == "policy.expired"


def test_a_verified_policy_is_rechecked_when_any_byte_it_depends_on_changes(env: SignedEnv) -> None:
    """The gateway keeps the verified policy between queries; an edit or a removed signature still bites at once."""
    env.sign()
    activate(env.policy, env.store, env.partners, "test", now=IN_PERIOD)
    partners = env.partners
    first = active_policy("aurora-2026", env.policy.parent, env.store, partners, now=IN_PERIOD)
    assert active_policy("aurora-2026", env.policy.parent, env.store, partners, now=IN_PERIOD) is first  # not re-verified
    edit(env.policy, "min_threshold: 20 ", "min_threshold: 21 ")
    with pytest.raises(CleanroomError) as exc:
        active_policy("aurora-2026", env.policy.parent, env.store, partners, now=IN_PERIOD)
    assert exc.value.code == "policy.not_active"
    edit(env.policy, "min_threshold: 21 ", "min_threshold: 20 ")
    assert active_policy("aurora-2026", env.policy.parent, env.store, partners, now=IN_PERIOD).collaboration == "aurora-2026"
    next(iter(sorted((env.policy.parent / "aurora-2026.sig").iterdir()))).unlink()
    with pytest.raises(CleanroomError) as exc:
        active_policy("aurora-2026", env.policy.parent, env.store, partners, now=IN_PERIOD)
    assert exc.value.code == "policy.not_active"
