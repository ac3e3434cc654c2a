"""Activation: the step that makes a fully signed policy the one the gateway enforces.

``activate`` refuses an invalid policy (``policy.invalid``) or one that not every participating
partner signed (``policy.unsigned``, ``policy.signature_invalid``), then records, under
``<store>/policies/``:

- ``<collaboration>.active.json``: the active version (content hash, signers, when, by whom);
- ``<collaboration>.history.jsonl``: every activation, appended, never rewritten;
- ``versions/<content hash>.json``: the exact canonical bytes that were activated,

and appends ``policy.activate`` to the audit log. ``active_policy`` is what the gateway calls on
every use: it re-reads the file and refuses it unless it is still the activated version, every
signature still verifies, and today lies in the validity period.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from datetime import UTC, date, datetime
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from cleanroom.audit import AuditLog
from cleanroom.errors import PolicyError
from cleanroom.partners import Partner
from cleanroom.policy.canonical import canonical_bytes, content_hash
from cleanroom.policy.load import load_policy
from cleanroom.policy.model import Policy
from cleanroom.policy.signatures import SignatureReport, signature_dir, signature_summary, verify_signatures, write_atomic


class Activation(BaseModel):
    """One activation record (also one line of the history)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    collaboration: str
    content_hash: str
    activated_at: datetime
    actor: str
    signers: list[str]
    policy_file: str
    valid_from: date
    valid_until: date


def policies_store(store_dir: Path) -> Path:
    return store_dir / "policies"


def active_record_path(store_dir: Path, collaboration: str) -> Path:
    return policies_store(store_dir) / f"{collaboration}.active.json"


def history_path(store_dir: Path, collaboration: str) -> Path:
    return policies_store(store_dir) / f"{collaboration}.history.jsonl"


def activate(path: Path, store_dir: Path, partners: dict[str, Partner], actor: str, now: datetime | None = None) -> Activation:
    """Make the policy at ``path`` the active version of its collaboration, audited."""
    policy = load_policy(path, partners)
    if path.stem != policy.collaboration:
        raise PolicyError("policy.invalid", f"{path}: the file must be named {policy.collaboration}.yaml to be activated", path=str(path))
    report = verify_signatures(path, policy, partners)
    _require_signed(path, report)
    when = now or datetime.now(UTC)
    if when.date() > policy.valid_until:  # activating ahead of valid_from is fine: use waits for it
        raise PolicyError("policy.expired", f"{path}: the policy expired on {policy.valid_until}", path=str(path))
    record = Activation(
        collaboration=policy.collaboration,
        content_hash=report.content_hash,
        activated_at=when,
        actor=actor,
        signers=report.signed,
        policy_file=str(path),
        valid_from=policy.valid_from,
        valid_until=policy.valid_until,
    )
    _record(store_dir, policy, record)
    return record


def _require_signed(path: Path, report: SignatureReport) -> None:
    if report.ok:
        return
    code = "policy.signature_invalid" if any(e.status == "invalid" for e in report.entries) else "policy.unsigned"
    raise PolicyError(code, f"{path}: not signed by every participating partner: {signature_summary(report)}", path=str(path))


def _record(store_dir: Path, policy: Policy, record: Activation) -> None:
    """Keep the exact bytes, switch the active pointer, then audit and append history.

    The pointer is switched before the audit entry so that the log never records an activation
    that did not take effect (a crash in between left 6 of 20 killed activations audited but not
    active). A crash after the switch leaves an activation the log does not mention yet: the
    gateway's start check writes it then (:func:`audit_unaudited_activations`).
    """
    versions = policies_store(store_dir) / "versions"
    write_atomic(versions / f"{record.content_hash}.json", canonical_bytes(policy))
    write_atomic(active_record_path(store_dir, record.collaboration), record.model_dump_json(indent=2).encode() + b"\n")
    AuditLog(store_dir / "audit.jsonl").append("policy.activate", record.actor, _audit_details(record))
    _append_line(history_path(store_dir, record.collaboration), record.model_dump_json().encode() + b"\n")


def _audit_details(record: Activation) -> dict[str, Any]:
    return {"collaboration": record.collaboration, "content_hash": record.content_hash, "signers": record.signers,
            "policy_file": record.policy_file, "activated_at": record.activated_at.isoformat()}


def audit_unaudited_activations(store_dir: Path, audit: AuditLog, last: Mapping[str, str]) -> int:
    """Audit (and add to the history) each active policy whose activation the log does not record.

    Called at gateway start, before serving: an activation killed between its pointer switch
    and its audit entry took effect, so the log must say so (``recovered: true``). ``last`` maps
    each collaboration to the content hash its LAST ``policy.activate`` entry names (the start
    check's walk of the log collects it); it must be the active one. Returns how many entries
    were written.
    """
    written = 0
    for path in sorted(policies_store(store_dir).glob("*.active.json")):
        record = active_record(store_dir, path.name.removesuffix(".active.json"))
        if record is None or last.get(record.collaboration) == record.content_hash:
            continue
        audit.append("policy.activate", record.actor, {**_audit_details(record), "recovered": True})
        _append_line(history_path(store_dir, record.collaboration), record.model_dump_json().encode() + b"\n")
        written += 1
    return written


def _append_line(path: Path, line: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "ab") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())


def active_record(store_dir: Path, collaboration: str) -> Activation | None:
    """The current activation record, or None when nothing was activated."""
    path = active_record_path(store_dir, collaboration)
    if not path.exists():
        return None
    try:
        return Activation.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        raise PolicyError("policy.not_active", f"{path} is not an activation record: {exc.errors()[0]['msg']}") from None


def history(store_dir: Path, collaboration: str) -> list[Activation]:
    path = history_path(store_dir, collaboration)
    if not path.exists():
        return []
    return [Activation.model_validate_json(line) for line in path.read_bytes().splitlines() if line.strip()]


def active_policy(
    collaboration: str,
    policies_dir: Path,
    store_dir: Path,
    partners: dict[str, Partner],
    now: datetime | None = None,
) -> Policy:
    """The enforceable policy of ``collaboration``, re-checked against its activation.

    Refuses (``policy.not_active``) when nothing was activated, when the file's content hash
    differs from the activated one, or when a signature no longer verifies; ``policy.expired``
    outside the validity period.
    """
    record = active_record(store_dir, collaboration)
    if record is None:
        raise PolicyError("policy.not_active", f"no policy was activated for {collaboration} in {store_dir}; run: cleanroom policy activate")
    path = policies_dir / f"{collaboration}.yaml"
    if not path.exists():
        raise PolicyError("policy.not_found", f"{path}: no such policy file (activated version {record.content_hash[:12]})", path=str(path))
    fingerprint = _fingerprint(path, collaboration, record)
    known = _VERIFIED.get((collaboration, path, store_dir))
    if known is not None and known[0] == fingerprint and known[1] is partners:
        policy = known[2]
    else:
        policy = _verified(path, partners, record)
        _VERIFIED[(collaboration, path, store_dir)] = (fingerprint, partners, policy)
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    if not policy.valid_on(today):
        raise PolicyError("policy.expired", f"policy {collaboration} is valid {policy.valid_from} to {policy.valid_until}, not on {today}")
    return policy


# (collaboration, policy file, store) -> (fingerprint, partners, verified policy). Parsing, linting and
# verifying the signatures took 9 of the 20 ms of a cached query; the bytes they depend on are
# compared instead, so any edit, re-signature or re-activation is still checked on the next use.
_VERIFIED: dict[tuple[str, Path, Path], tuple[str, dict[str, Partner], Policy]] = {}


def _fingerprint(path: Path, collaboration: str, record: Activation) -> str:
    """A digest of every byte the verification reads: the policy file, the activation and the signature files."""
    digest = hashlib.sha256(path.read_bytes())
    digest.update(record.model_dump_json().encode())
    folder = signature_dir(path, collaboration)
    for sig in sorted(folder.iterdir()) if folder.is_dir() else ():
        digest.update(b"\0" + sig.name.encode() + b"\0" + (sig.read_bytes() if sig.is_file() else b""))
    return digest.hexdigest()


def _verified(path: Path, partners: dict[str, Partner], record: Activation) -> Policy:
    """Load, lint, compare with the activation and verify every signature (``policy.not_active`` otherwise)."""
    policy = load_policy(path, partners)
    _require_activated(path, policy, record)
    report = verify_signatures(path, policy, partners)
    if not report.ok:
        raise PolicyError("policy.not_active", f"{path}: signatures no longer verify ({signature_summary(report)}); re-sign and activate again")
    return policy


def _require_activated(path: Path, policy: Policy, record: Activation) -> None:
    digest = content_hash(policy)
    if digest != record.content_hash:
        raise PolicyError(
            "policy.not_active",
            f"{path} changed since it was activated (now {digest[:12]}, active {record.content_hash[:12]}): "
            "lint, diff, re-sign and activate the new version",
            path=str(path),
        )


__all__ = ["Activation", "activate", "audit_unaudited_activations", "active_policy", "active_record", "history"]
