"""Multi-party signatures over the canonical bytes: round trip, edits, reorders, wrong keys."""

from __future__ import annotations

import json

import pytest
import yaml
from _policy_env import PARTNER_IDS, SignedEnv, edit

from cleanroom.audit import AuditLog
from cleanroom.crypto import new_signing_key, public_key_text, sign, verify
from cleanroom.errors import CleanroomError
from cleanroom.partners import set_public_key
from cleanroom.policy import canonical_bytes, content_hash, load_policy, sign_policy, verify_signatures
from cleanroom.policy.signatures import PolicySignature, signature_path


def _report(env: SignedEnv):  # noqa: ANN202
    partners = env.partners
    return verify_signatures(env.policy, load_policy(env.policy, partners), partners)


def test_round_trip_all_four_partners(env: SignedEnv) -> None:
    env.sign()
    report = _report(env)
    assert report.ok and sorted(report.signed) == sorted(PARTNER_IDS) and report.missing == []
    policy = load_policy(env.policy, env.partners)
    for partner in PARTNER_IDS:
        sig = PolicySignature.model_validate_json(signature_path(env.policy, "aurora-2026", partner).read_bytes())
        assert sig.content_hash == content_hash(policy)
        # detached and standard: the signature verifies over the canonical bytes alone
        assert verify(env.keys[partner].public_key(), canonical_bytes(policy), sig.signature)
    entries = [e for e in AuditLog(env.store / "audit.jsonl").entries() if e.event == "policy.sign"]
    assert [e.details["partner"] for e in entries] == list(PARTNER_IDS)


def test_missing_signature_is_listed(env: SignedEnv) -> None:
    env.sign("aurora-motors", "northside-dealers", "aurora-financial")
    report = _report(env)
    assert not report.ok and report.missing == ["lakeside-autos"]


def test_one_character_edit_makes_every_signature_stale(env: SignedEnv) -> None:
    env.sign()
    edit(env.policy, "min_threshold: 20 ", "min_threshold: 21 ")
    report = _report(env)
    assert not report.ok and report.signed == []
    assert {e.status for e in report.entries} == {"stale"}


def test_comment_edit_and_reordered_file_keep_signatures(env: SignedEnv) -> None:
    env.sign()
    edit(env.policy, "# captive finance company", "# the captive finance company (edited comment)")
    assert _report(env).ok
    data = yaml.safe_load(env.policy.read_text())
    data["partners"].reverse()
    data["datasets"].reverse()
    reordered = dict(reversed(list(data.items())))
    env.policy.write_text(yaml.safe_dump(reordered, sort_keys=False))
    assert _report(env).ok


def test_key_that_is_not_the_compliance_key_is_refused(env: SignedEnv) -> None:
    stranger = new_signing_key()
    with pytest.raises(CleanroomError) as exc:
        sign_policy(env.policy, stranger, "aurora-motors", env.partners)
    assert exc.value.code == "policy.signature_invalid"
    assert not signature_path(env.policy, "aurora-2026", "aurora-motors").exists()
    uploader = new_signing_key()
    set_public_key(env.partners_dir, "aurora-motors", "uploader", public_key_text(uploader))
    with pytest.raises(CleanroomError, match="uploader key"):
        sign_policy(env.policy, uploader, "aurora-motors", env.partners)


def test_other_partners_key_is_refused(env: SignedEnv) -> None:
    with pytest.raises(CleanroomError) as exc:
        sign_policy(env.policy, env.keys["lakeside-autos"], "northside-dealers", env.partners)
    assert exc.value.code == "policy.signature_invalid"


def test_forged_signature_file_is_invalid(env: SignedEnv) -> None:
    """A hand-written .sig made with another key (bypassing sign_policy) must not verify."""
    env.sign()
    policy = load_policy(env.policy, env.partners)
    path = signature_path(env.policy, "aurora-2026", "lakeside-autos")
    forged = json.loads(path.read_text())
    forged["signature"] = sign(new_signing_key(), canonical_bytes(policy))
    path.write_text(json.dumps(forged))
    report = _report(env)
    assert not report.ok
    assert {e.partner: e.status for e in report.entries}["lakeside-autos"] == "invalid"


def test_rotated_compliance_key_invalidates_old_signature(env: SignedEnv) -> None:
    env.sign()
    set_public_key(env.partners_dir, "aurora-financial", "compliance", public_key_text(new_signing_key()))
    statuses = {e.partner: e.status for e in _report(env).entries}
    assert statuses["aurora-financial"] == "invalid" and statuses["aurora-motors"] == "valid"


def test_non_participant_cannot_sign(env: SignedEnv) -> None:
    """A partner with a file in partners/ but not listed under partners: has no say."""
    outsider = env.partners_dir / "eastside-autos.toml"
    outsider.write_text((env.partners_dir / "lakeside-autos.toml").read_text().replace('id = "lakeside-autos"', 'id = "eastside-autos"'))
    key = new_signing_key()
    set_public_key(env.partners_dir, "eastside-autos", "compliance", public_key_text(key))
    with pytest.raises(CleanroomError) as exc:
        sign_policy(env.policy, key, "eastside-autos", env.partners)
    assert exc.value.code == "partner.unknown" and "does not participate" in exc.value.message


def test_invalid_policy_is_never_signed(env: SignedEnv) -> None:
    edit(env.policy, "consent: [measurement, attribution] ", "consent: [measurement, marketting] ")
    with pytest.raises(CleanroomError) as exc:
        sign_policy(env.policy, env.keys["aurora-motors"], "aurora-motors", env.partners)
    assert exc.value.code == "policy.invalid"
