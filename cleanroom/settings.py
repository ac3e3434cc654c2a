"""Validated runtime settings: the only place that reads environment variables.

Paths resolve as: explicit argument (a CLI flag) > environment variable > default. Secrets (the
gateway's pepper and the database encryption key) have *no* default: they come from a key file
(``CLEANROOM_KEYS_FILE``, written by ``cleanroom keys gateway``) or from the environment
(``CLEANROOM_PEPPER``, ``CLEANROOM_DB_KEY``, hex). A missing secret is an error, never a
silently generated or placeholder value, because data encrypted under a throw-away key is lost.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from cleanroom.crypto import SECRET_BYTES, read_secret_file, write_secret_file
from cleanroom.errors import ConfigError

ENV_STORE = "CLEANROOM_STORE"
ENV_PARTNERS = "CLEANROOM_PARTNERS"
ENV_POLICIES = "CLEANROOM_POLICIES"
ENV_KEYS_FILE = "CLEANROOM_KEYS_FILE"
ENV_PEPPER = "CLEANROOM_PEPPER"
ENV_DB_KEY = "CLEANROOM_DB_KEY"


class Paths(BaseModel):
    """Where cleanroom finds its files. Frozen: resolved once per command or server."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    store: Path
    partners: Path
    policies: Path

    @classmethod
    def resolve(cls, store: Path | None = None, partners: Path | None = None, policies: Path | None = None) -> Paths:
        return cls(
            store=_pick(store, ENV_STORE, Path(".cleanroom")),
            partners=_pick(partners, ENV_PARTNERS, Path("partners")),
            policies=_pick(policies, ENV_POLICIES, Path("policies")),
        )


class GatewaySecrets(BaseModel):
    """The gateway's own secrets. ``repr`` hides them so they never reach a log line."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pepper: bytes
    db_key: bytes

    def __repr__(self) -> str:
        return "GatewaySecrets(pepper=***, db_key=***)"

    __str__ = __repr__

    @property
    def db_key_text(self) -> str:
        """The database key as DuckDB's ``ENCRYPTION_KEY`` string (hex of the 32 bytes)."""
        return self.db_key.hex()

    @classmethod
    def load(cls, keys_file: Path | None = None) -> GatewaySecrets:
        """Load from ``keys_file``, else ``CLEANROOM_KEYS_FILE``, else the two environment variables."""
        path = keys_file or (Path(os.environ[ENV_KEYS_FILE]) if os.environ.get(ENV_KEYS_FILE) else None)
        if path is not None:
            return cls._from_file(path)
        pepper, db_key = os.environ.get(ENV_PEPPER), os.environ.get(ENV_DB_KEY)
        if not pepper or not db_key:
            raise ConfigError(
                "config.missing_key",
                "gateway secrets not configured: pass --keys-file, or set "
                f"{ENV_KEYS_FILE}, or set both {ENV_PEPPER} and {ENV_DB_KEY} (hex); "
                "create a key file with: cleanroom keys gateway --out FILE",
            )
        return cls(pepper=_hex_secret(pepper, ENV_PEPPER), db_key=_hex_secret(db_key, ENV_DB_KEY))

    @classmethod
    def _from_file(cls, path: Path) -> GatewaySecrets:
        try:
            data = json.loads(read_secret_file(path))
            return cls(pepper=_hex_secret(data["pepper"], f"{path}:pepper"), db_key=_hex_secret(data["db_key"], f"{path}:db_key"))
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError("keys.invalid", f"{path} is not a gateway key file (JSON with pepper and db_key)", path=str(path)) from exc

    def write(self, path: Path) -> None:
        write_secret_file(path, json.dumps({"pepper": self.pepper.hex(), "db_key": self.db_key.hex()}).encode())


def _hex_secret(text: str, where: str) -> bytes:
    try:
        raw = bytes.fromhex(text.strip())
    except ValueError as exc:
        raise ConfigError("keys.invalid", f"{where} is not hex") from exc
    if len(raw) != SECRET_BYTES:
        raise ConfigError("keys.invalid", f"{where} must be {SECRET_BYTES} bytes ({2 * SECRET_BYTES} hex chars)")
    return raw


def _pick(explicit: Path | None, env: str, default: Path) -> Path:
    if explicit is not None:
        return explicit
    value = os.environ.get(env)
    return Path(value) if value else default


__all__ = ["GatewaySecrets", "Paths"]
