"""Creating the collaboration's keys: who holds which secret is the security model.

* salt (32 bytes): held by the partners only, shared among them out of band. It keys ``hid``;
  the gateway never receives it, or it could key guessed emails and re-identify people.
* uploader / compliance Ed25519 pairs: one pair per role per partner. The private half stays
  with the partner; the public half goes into ``partners/<id>.toml`` for everyone to check.
* gateway pepper + database key: held by the gateway operator only. The pepper re-keys every
  hid on ingest, so a stolen store (or a partner holding it) cannot be dictionary-attacked with
  the salt alone; the database key encrypts the store at rest.

Every secret file is created with 0600 permissions and never overwritten: replacing a salt or a
database key silently would orphan every prepared file or the whole store.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from cleanroom import crypto
from cleanroom.errors import ConfigError
from cleanroom.partners import KeyRole, get_partner, set_public_key
from cleanroom.prepare.keying import salt_fingerprint
from cleanroom.settings import GatewaySecrets

KEY_ROLES: tuple[KeyRole, ...] = ("uploader", "compliance")


class CreatedKey(BaseModel):
    """What a key command made: where the secret went and what may be shown (never the secret)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str
    path: str
    public_key: str | None = None
    partner: str | None = None
    role: str | None = None
    partner_file: str | None = None
    fingerprint: str | None = None


def _refuse_existing(path: Path) -> None:
    """Check before doing any other work, so a refused command changes nothing anywhere."""
    if path.exists():
        raise ConfigError("keys.exists", f"{path} already exists; refusing to overwrite a key", path=str(path))


def create_salt(path: Path) -> CreatedKey:
    """A new 32-byte collaboration salt as hex in ``path`` (0600); returns its public fingerprint."""
    _refuse_existing(path)
    salt = crypto.new_secret()
    crypto.write_secret(path, salt)
    return CreatedKey(kind="salt", path=str(path), fingerprint=salt_fingerprint(salt))


def create_signing_key(partners_dir: Path, partner_id: str, role: str, path: Path) -> CreatedKey:
    """A new Ed25519 pair: private PEM to ``path`` (0600), public key registered in the partner file."""
    if role not in KEY_ROLES:
        raise ConfigError("keys.invalid", f"role must be one of {', '.join(KEY_ROLES)}, got {role!r}")
    get_partner(partners_dir, partner_id)  # an unknown partner fails before a key file exists
    _refuse_existing(path)
    key = crypto.new_signing_key()
    crypto.write_signing_key(path, key)
    public = crypto.public_key_text(key)
    partner_file = set_public_key(partners_dir, partner_id, role, public)  # type: ignore[arg-type]
    return CreatedKey(kind="signing", path=str(path), public_key=public, partner=partner_id, role=role, partner_file=str(partner_file))


def create_gateway_keys(path: Path) -> CreatedKey:
    """A new pepper and database key as a GatewaySecrets key file (0600)."""
    _refuse_existing(path)
    GatewaySecrets(pepper=crypto.new_secret(), db_key=crypto.new_secret()).write(path)
    return CreatedKey(kind="gateway", path=str(path))


def load_salt(path: Path) -> bytes:
    """Read a salt file (refusing one readable by others)."""
    return crypto.read_secret(path)


__all__ = ["KEY_ROLES", "CreatedKey", "create_gateway_keys", "create_salt", "create_signing_key", "load_salt"]
