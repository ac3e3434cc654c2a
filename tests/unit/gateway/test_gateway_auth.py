"""API keys: minted once, stored hashed, bound to partner and role, failures audited without the key."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from cleanroom.audit import AuditLog
from cleanroom.crypto import sha256_hex
from cleanroom.errors import AuthError, ConfigError
from cleanroom.gateway.auth import KEY_PATTERN, ApiKeys
from cleanroom.partners import load_partners


@pytest.fixture()
def keys(tmp_path: Path, partners_dir: Path) -> ApiKeys:
    return ApiKeys(tmp_path / "store", load_partners(partners_dir))


def _events(keys: ApiKeys) -> list[tuple[str, dict[str, object]]]:
    return [(e.event, e.details) for e in keys.audit.entries()]


def test_created_key_authenticates_as_its_partner_and_role(keys: ApiKeys) -> None:
    key_id, plaintext = keys.create_key("northside-dealers", "analyst", "bi", actor="cli:ops")
    assert KEY_PATTERN.match(plaintext)
    principal = keys.authenticate(plaintext)
    assert principal.model_dump() == {"key_id": key_id, "partner": "northside-dealers", "partner_role": "dealer", "role": "analyst"}
    assert principal.actor == f"northside-dealers/{key_id}"


def test_only_a_hash_is_stored_and_the_file_is_private(keys: ApiKeys) -> None:
    _, plaintext = keys.create_key("aurora-motors", "uploader", actor="t")
    stored = b"".join(p.read_bytes() for p in keys.path.parent.glob("gateway.sqlite*"))
    assert plaintext.encode() not in stored
    assert plaintext[4:20].encode() not in stored
    assert sha256_hex(plaintext.encode()).encode() in stored
    assert stat.S_IMODE(keys.path.stat().st_mode) == 0o600


def test_every_key_is_different(keys: ApiKeys) -> None:
    made = [keys.create_key("aurora-financial", "report", actor="t") for _ in range(20)]
    assert len({k for k, _ in made}) == len({p for _, p in made}) == 20


def test_unknown_and_malformed_keys_are_refused_and_audited(keys: ApiKeys) -> None:
    _, real = keys.create_key("lakeside-autos", "analyst", actor="t")
    forged = real[:-1] + ("A" if real[-1] != "A" else "B")
    for bad in (forged, "crk_short", "Bearer " + real, ""):
        with pytest.raises(AuthError) as exc:
            keys.authenticate(bad, where="GET /v1/budget")
        assert exc.value.code == "auth.invalid"
    failures = [d for e, d in _events(keys) if e == "auth.failure"]
    assert [(d["reason"], d["failures_in_window"]) for d in failures] == [("invalid", 1)], "aggregated: the 1st, 10th, 100th... of a window"
    assert failures[0]["where"] == "GET /v1/budget"
    log = keys.audit.path.read_text()
    assert forged not in log and real not in log and forged[4:20] not in log


def test_revoked_key_fails_and_the_failure_names_the_key_id(keys: ApiKeys) -> None:
    key_id, plaintext = keys.create_key("aurora-motors", "compliance", actor="cli:ops")
    info = keys.revoke_key(key_id, actor="cli:ops")
    assert info.revoked_at is not None
    with pytest.raises(AuthError) as exc:
        keys.authenticate(plaintext)
    assert exc.value.code == "auth.invalid" and key_id in exc.value.message
    events = _events(keys)
    assert [e for e, _ in events] == ["apikey.create", "apikey.revoke", "auth.failure"]
    assert events[2][1] == {"reason": "revoked", "where": "", "key_id": key_id, "partner": "aurora-motors"}
    assert plaintext not in keys.audit.path.read_text()
    assert keys.audit.verify().ok


def test_revoking_twice_or_an_unknown_id_is_an_error(keys: ApiKeys) -> None:
    key_id, _ = keys.create_key("aurora-motors", "analyst", actor="t")
    keys.revoke_key(key_id, actor="t")
    for target in (key_id, "kid_000000000000"):
        with pytest.raises(AuthError) as exc:
            keys.revoke_key(target, actor="t")
        assert exc.value.code == "auth.invalid"


def test_list_shows_metadata_never_secrets(keys: ApiKeys) -> None:
    a, pa = keys.create_key("aurora-motors", "analyst", "dashboards", actor="t")
    b, pb = keys.create_key("lakeside-autos", "uploader", actor="t")
    keys.revoke_key(b, actor="t")
    listed = keys.list_keys()
    assert [(k.key_id, k.partner, k.role, k.label, k.revoked_at is None) for k in listed] == [
        (a, "aurora-motors", "analyst", "dashboards", True),
        (b, "lakeside-autos", "uploader", "", False),
    ]
    dumped = str([k.model_dump() for k in listed])
    assert pa not in dumped and pb not in dumped and sha256_hex(pa.encode()) not in dumped


def test_keys_need_a_known_partner_and_role(keys: ApiKeys) -> None:
    with pytest.raises(ConfigError) as exc:
        keys.create_key("acme", "analyst", actor="t")
    assert exc.value.code == "partner.unknown" and "aurora-motors" in exc.value.message
    with pytest.raises(ConfigError) as exc:
        keys.create_key("aurora-motors", "admin", actor="t")
    assert exc.value.code == "config.invalid" and "analyst" in exc.value.message
    assert keys.list_keys() == []


def test_a_key_whose_partner_was_removed_stops_working(tmp_path: Path, partners_dir: Path) -> None:
    keys = ApiKeys(tmp_path / "store", load_partners(partners_dir))
    _, plaintext = keys.create_key("lakeside-autos", "analyst", actor="t")
    (partners_dir / "lakeside-autos.toml").unlink()
    reloaded = ApiKeys(tmp_path / "store", load_partners(partners_dir), AuditLog(tmp_path / "store" / "audit.jsonl"))
    with pytest.raises(AuthError) as exc:
        reloaded.authenticate(plaintext)
    assert exc.value.code == "auth.invalid" and "no longer exists" in exc.value.message


def test_anonymous_failures_are_aggregated_and_then_throttled(keys: ApiKeys) -> None:
    """Each bogus key used to add one audit entry: free log growth for anyone. Now log-scale entries, then 429."""
    _, real = keys.create_key("lakeside-autos", "analyst", actor="t")
    codes = []
    for _ in range(40):
        with pytest.raises(AuthError) as exc:
            keys.authenticate("crk_" + "x" * 43, where="GET /v1/budget", client="10.0.0.7")
        codes.append(exc.value.code)
    assert codes[:30] == ["auth.invalid"] * 30 and set(codes[30:]) == {"auth.rate_limited"}
    assert exc.value.details["retry_after_s"] > 0
    counts = [d["failures_in_window"] for e, d in _events(keys) if e == "auth.failure"]
    assert counts == [1, 10], "40 failures, two entries"
    assert keys.authenticate(real, client="10.0.0.7").partner == "lakeside-autos", "a valid key still works"
    with pytest.raises(AuthError) as other:
        keys.authenticate("crk_" + "y" * 43, client="10.0.0.8")
    assert other.value.code == "auth.invalid", "another client is not throttled"
