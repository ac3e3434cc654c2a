"""The signed upload manifest: what a partner vouches for when it hands over a prepared file.

Written by ``prepare`` on the partner's machine and checked by ``ingest`` on the gateway. The
signature covers the canonical JSON of every field but ``signature`` itself, so the file's
SHA-256, its row count, its schema and a single-use nonce are all bound to the uploader's key:
a swapped file, an edited count or a replayed manifest each fail verification.

Two fields were added later, each optional so that manifests signed before them still verify:
``salt_fingerprint`` (the public fingerprint of the salt the file was keyed with, so the gateway
can refuse a file keyed with another salt; never the salt itself) and ``allow_shrink`` (the
partner vouches that a much smaller new version is intended). When absent (``None``/``False``)
they are left out of the signed bytes, exactly as a manifest written before them was signed; when
present they are signed like every other field, so nobody but the uploader can set them.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cleanroom import crypto
from cleanroom.errors import UploadError

MANIFEST_SUFFIX = ".manifest.json"
HEX64 = r"^[0-9a-f]{64}$"
FINGERPRINT = r"^[0-9a-f]{16}$"
# Fields added after format_version 1 was first signed, with the value meaning "absent": left out
# of the signed bytes at that value, so older signatures keep verifying.
_LATER_FIELDS: dict[str, object] = {"salt_fingerprint": None, "allow_shrink": False}


class Manifest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    format_version: int = 1
    partner: str
    dataset: str
    file: str = Field(description="File name of the Arrow IPC file, relative to the manifest.")
    schema_hash: str = Field(pattern=HEX64)
    row_count: int = Field(ge=0)
    sha256: str = Field(pattern=HEX64)
    created_at: datetime
    nonce: str = Field(pattern=r"^[0-9a-f]{32}$")
    salt_fingerprint: str | None = Field(
        default=None, pattern=FINGERPRINT, description="Public fingerprint of the collaboration salt the hids were keyed with."
    )
    allow_shrink: bool = Field(default=False, description="The uploader intends this version to be much smaller than the active one.")
    signature: str = ""

    def signed_bytes(self) -> bytes:
        """The canonical bytes the uploader signs: every field except the signature (and absent later fields)."""
        return crypto.canonical_json(self.to_json_dict(signed=True))

    def to_json_dict(self, *, signed: bool = False) -> dict[str, object]:
        """The manifest as JSON data, later fields omitted while absent; without the signature when ``signed``."""
        data = self.model_dump(mode="json", exclude={"signature"} if signed else None)
        for name, absent in _LATER_FIELDS.items():
            if data[name] == absent:
                del data[name]
        return data

    def signed_by(self, key: Ed25519PrivateKey) -> Manifest:
        return self.model_copy(update={"signature": crypto.sign(key, self.signed_bytes())})

    def verify(self, public: Ed25519PublicKey) -> bool:
        return bool(self.signature) and crypto.verify(public, self.signed_bytes(), self.signature)

    @classmethod
    def new(
        cls, partner: str, dataset: str, file: Path, schema_hash: str, row_count: int, *, salt_fingerprint: str | None = None,
        allow_shrink: bool = False,
    ) -> Manifest:
        return cls(
            partner=partner,
            dataset=dataset,
            file=file.name,
            schema_hash=schema_hash,
            row_count=row_count,
            sha256=crypto.sha256_file(file),
            created_at=datetime.now(UTC),
            nonce=secrets.token_hex(16),
            salt_fingerprint=salt_fingerprint,
            allow_shrink=allow_shrink,
        )

    def write(self, path: Path) -> None:
        path.write_text(self.to_text())

    def to_text(self) -> str:
        """The manifest file's text: indented JSON, later fields omitted while absent."""
        return json.dumps(self.to_json_dict(), indent=2) + "\n"

    @classmethod
    def read(cls, path: Path) -> Manifest:
        try:
            return cls.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            raise UploadError("upload.manifest_invalid", f"{path}: manifest not found", path=str(path)) from None
        except ValidationError as exc:
            err = exc.errors()[0]
            key = ".".join(str(p) for p in err["loc"])
            raise UploadError("upload.manifest_invalid", f"{path}: {key}: {err['msg']}", path=str(path), key=key) from None


def manifest_path(arrow_file: Path) -> Path:
    """``leads.arrow`` -> ``leads.manifest.json`` beside it."""
    return arrow_file.with_name(arrow_file.stem + MANIFEST_SUFFIX)


__all__ = ["MANIFEST_SUFFIX", "Manifest", "manifest_path"]
