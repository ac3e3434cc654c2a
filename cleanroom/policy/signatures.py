"""Detached multi-party signatures: each compliance officer signs the policy's canonical bytes.

``policies/<collaboration>.sig/<partner>.sig`` holds one partner's signature as JSON (partner,
content hash, base64 Ed25519 signature, signed_at). The signature covers the canonical bytes
(:mod:`cleanroom.policy.canonical`) exactly, so anyone can check it with the partner's public
compliance key and any Ed25519 tool; the content hash in the file only says *which* version was
signed, so that a signature of an older version is reported as stale rather than as forged.
"""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError, computed_field

from cleanroom import crypto
from cleanroom.audit import AuditLog
from cleanroom.errors import ConfigError, PolicyError
from cleanroom.partners import Partner
from cleanroom.policy.canonical import canonical_bytes, content_hash
from cleanroom.policy.load import load_policy
from cleanroom.policy.model import Policy

SIG_SUFFIX = ".sig"
HEX64 = r"^[0-9a-f]{64}$"


class PolicySignature(BaseModel):
    """The content of one ``<partner>.sig`` file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal[1] = 1
    collaboration: str
    partner: str
    content_hash: str = Field(pattern=HEX64)
    public_key: str
    signature: str
    signed_at: datetime


Status = Literal["valid", "missing", "stale", "invalid", "unexpected"]


class SignatureStatus(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    partner: str
    status: Status
    detail: str = ""
    signed_at: datetime | None = None


class SignatureReport(BaseModel):
    """Who signed the current canonical bytes, who is missing, and which signatures are bad."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    collaboration: str
    content_hash: str
    required: list[str]
    entries: list[SignatureStatus]

    def _with(self, status: Status) -> list[str]:
        return [e.partner for e in self.entries if e.status == status]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def signed(self) -> list[str]:
        return self._with("valid")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def missing(self) -> list[str]:
        return self._with("missing")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        """True only when every participating partner validly signed these exact bytes."""
        return sorted(self.signed) == sorted(self.required)

    def problems(self) -> list[SignatureStatus]:
        return [e for e in self.entries if e.status in ("missing", "stale", "invalid")]


def signature_dir(policy_path: Path, collaboration: str) -> Path:
    return policy_path.parent / f"{collaboration}.sig"


def signature_path(policy_path: Path, collaboration: str, partner: str) -> Path:
    return signature_dir(policy_path, collaboration) / f"{partner}{SIG_SUFFIX}"


# --- signing -------------------------------------------------------------------------------------


def sign_policy(
    path: Path,
    key: Ed25519PrivateKey,
    partner_id: str,
    partners: dict[str, Partner],
    *,
    store_dir: Path | None = None,
    actor: str | None = None,
    now: datetime | None = None,
) -> tuple[PolicySignature, Path]:
    """Sign the validated policy at ``path`` for ``partner_id`` with its compliance key.

    Refuses an invalid policy, a partner that does not participate, and a key whose public half
    is not the partner's registered compliance key. Appends ``policy.sign`` to the audit log of
    ``store_dir`` when given.
    """
    policy = load_policy(path, partners)
    partner = _participant(policy, partners, partner_id)
    _require_compliance_key(partner, key)
    sig = PolicySignature(
        collaboration=policy.collaboration,
        partner=partner_id,
        content_hash=content_hash(policy),
        public_key=crypto.public_key_text(key),
        signature=crypto.sign(key, canonical_bytes(policy)),
        signed_at=now or datetime.now(UTC),
    )
    out = signature_path(path, policy.collaboration, partner_id)
    write_atomic(out, sig.model_dump_json(indent=2).encode() + b"\n")
    if store_dir is not None:
        details = {"collaboration": policy.collaboration, "partner": partner_id, "content_hash": sig.content_hash}
        AuditLog(store_dir / "audit.jsonl").append("policy.sign", actor or f"compliance:{partner_id}", details)
    return sig, out


def _participant(policy: Policy, partners: dict[str, Partner], partner_id: str) -> Partner:
    if partner_id not in policy.partners:
        raise ConfigError(
            "partner.unknown",
            f"{partner_id!r} does not participate in {policy.collaboration} (partners: {', '.join(policy.partners)})",
            partner=partner_id,
        )
    return partners[partner_id]


def _require_compliance_key(partner: Partner, key: Ed25519PrivateKey) -> None:
    text = crypto.public_key_text(key)
    if text == partner.keys.compliance:
        return
    what = f"{partner.id}'s uploader key" if text == partner.keys.uploader else f"not a key registered for {partner.id}"
    raise PolicyError(
        "policy.signature_invalid",
        f"refusing to sign: this key is {what}; a policy is signed with the partner's compliance key "
        f"(partners/{partner.id}.toml keys.compliance), made by: cleanroom keys signing --partner {partner.id} --role compliance",
        partner=partner.id,
    )


def write_atomic(path: Path, data: bytes) -> None:
    """Write via a temp file and rename, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --- verifying -----------------------------------------------------------------------------------


def verify_signatures(path: Path, policy: Policy, partners: dict[str, Partner]) -> SignatureReport:
    """Check every participating partner's signature file next to ``path`` against ``policy``."""
    digest, message = content_hash(policy), canonical_bytes(policy)
    entries = [_check_one(path, policy, partners, p, digest, message) for p in policy.partners]
    entries += _unexpected(path, policy)
    return SignatureReport(collaboration=policy.collaboration, content_hash=digest, required=list(policy.partners), entries=entries)


def _check_one(path: Path, policy: Policy, partners: dict[str, Partner], partner_id: str, digest: str, message: bytes) -> SignatureStatus:
    file = signature_path(path, policy.collaboration, partner_id)
    if not file.exists():
        return SignatureStatus(partner=partner_id, status="missing", detail=f"no {file}")
    try:
        sig = PolicySignature.model_validate_json(file.read_bytes())
    except (ValidationError, ValueError):
        return SignatureStatus(partner=partner_id, status="invalid", detail=f"{file} is not a policy signature file")
    if (sig.partner, sig.collaboration) != (partner_id, policy.collaboration):
        return _status(sig, partner_id, "invalid", f"{file} names partner {sig.partner} of {sig.collaboration}")
    if sig.content_hash != digest:
        return _status(sig, partner_id, "stale", f"signed version {sig.content_hash[:12]}, but the policy is now {digest[:12]}: re-sign it")
    partner = partners.get(partner_id)
    if partner is None or not crypto.verify(partner.public_key("compliance"), message, sig.signature):
        return _status(sig, partner_id, "invalid", f"does not verify against {partner_id}'s registered compliance key")
    return _status(sig, partner_id, "valid", "")


def _status(sig: PolicySignature, partner_id: str, status: Status, detail: str) -> SignatureStatus:
    return SignatureStatus(partner=partner_id, status=status, detail=detail, signed_at=sig.signed_at)


def _unexpected(path: Path, policy: Policy) -> list[SignatureStatus]:
    directory = signature_dir(path, policy.collaboration)
    files = sorted(directory.glob(f"*{SIG_SUFFIX}")) if directory.is_dir() else []
    return [
        SignatureStatus(partner=f.stem, status="unexpected", detail=f"{f.stem} does not participate; its signature is ignored")
        for f in files
        if f.stem not in policy.partners
    ]


def signature_summary(report: SignatureReport) -> str:
    """One line for an error message: who is missing, stale or invalid."""
    parts = [f"{e.partner}: {e.status}" + (f" ({e.detail})" if e.status != "missing" else "") for e in report.problems()]
    return "; ".join(parts) or "all signed"


__all__ = [
    "PolicySignature",
    "SignatureReport",
    "SignatureStatus",
    "sign_policy",
    "signature_path",
    "signature_summary",
    "verify_signatures",
]
