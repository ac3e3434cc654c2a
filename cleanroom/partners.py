"""Partner definitions (``partners/<id>.toml``): role, datasets with tagged column schemas, keys.

A partner file is the contract between a data owner and the clean room: ``prepare`` writes
exactly the declared columns, ``ingest`` accepts exactly them, and the policy may only name what
is declared here. Every column carries a semantic tag that decides what the engine may do with
it: ``join_key`` (the keyed identifier ``hid``), ``dimension`` (groupable, given a public
domain in the policy), ``measure`` (summable within clamp bounds), ``timestamp``, ``consent``
(the purpose column of a ``consent`` dataset) and ``private`` (stored, never queryable).
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from pathlib import Path
from typing import Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cleanroom.crypto import canonical_json, parse_public_key
from cleanroom.errors import CleanroomError, ConfigError

ColumnType = Literal["string", "int64", "bool", "date", "timestamp"]
Tag = Literal["join_key", "dimension", "measure", "timestamp", "consent", "private"]
Role = Literal["brand", "dealer", "finance"]
KeyRole = Literal["uploader", "compliance"]

JOIN_KEY = "hid"
ID_PATTERN = r"^[a-z][a-z0-9-]{1,62}$"
NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"

ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "int64": pa.int64(),
    "bool": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
}


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class Column(_Strict):
    type: ColumnType
    tag: Tag
    nullable: bool = False
    description: str = ""


class Dataset(_Strict):
    description: str = ""
    columns: dict[str, Column]

    @field_validator("columns")
    @classmethod
    def _one_join_key(cls, columns: dict[str, Column]) -> dict[str, Column]:
        for name in columns:
            if not re.match(NAME_PATTERN, name):
                raise ValueError(f"column name {name!r} must match {NAME_PATTERN}")
        keys = [n for n, c in columns.items() if c.tag == "join_key"]
        if keys != [JOIN_KEY]:
            raise ValueError(f"exactly one join_key column named {JOIN_KEY!r} is required, found {keys}")
        if columns[JOIN_KEY].type != "string" or columns[JOIN_KEY].nullable:
            raise ValueError(f"{JOIN_KEY!r} must be a non-nullable string")
        return columns

    def arrow_schema(self) -> pa.Schema:
        """The Arrow schema a prepared file of this dataset must have, in declared order."""
        return pa.schema([pa.field(n, ARROW_TYPES[c.type], nullable=c.nullable) for n, c in self.columns.items()])

    def schema_hash(self) -> str:
        """SHA-256 over the declared (name, type, nullable) list: what a manifest pins."""
        spec = [[n, c.type, c.nullable] for n, c in self.columns.items()]
        return hashlib.sha256(canonical_json(spec)).hexdigest()

    def columns_tagged(self, *tags: Tag) -> list[str]:
        return [n for n, c in self.columns.items() if c.tag in tags]


class Keys(_Strict):
    uploader: str
    compliance: str

    @field_validator("uploader", "compliance")
    @classmethod
    def _valid_key(cls, text: str) -> str:
        try:
            parse_public_key(text)
        except CleanroomError as exc:
            raise ValueError(exc.message) from None
        return text


class Restrictions(_Strict):
    """Stricter rules a data owner declares for its own datasets; the strictest rule wins."""

    min_threshold: int | None = Field(default=None, ge=1)
    max_epsilon_per_query: float | None = Field(default=None, gt=0)
    dimensions: list[str] | None = None


class Partner(_Strict):
    id: str = Field(pattern=ID_PATTERN)
    display_name: str
    role: Role
    keys: Keys
    datasets: dict[str, Dataset]
    restrictions: Restrictions = Restrictions()

    @model_validator(mode="after")
    def _dataset_names(self) -> Partner:
        for name in self.datasets:
            if not re.match(NAME_PATTERN, name):
                raise ValueError(f"dataset name {name!r} must match {NAME_PATTERN}")
        if "consent" in self.datasets and self.datasets["consent"].columns_tagged("consent") != ["purpose"]:
            raise ValueError("the consent dataset must tag exactly its 'purpose' column as consent")
        return self

    def dataset(self, name: str) -> Dataset:
        try:
            return self.datasets[name]
        except KeyError:
            raise ConfigError(
                "partner.unknown_dataset",
                f"partner {self.id!r} declares no dataset {name!r} (known: {', '.join(sorted(self.datasets))})",
            ) from None

    def public_key(self, role: KeyRole):  # noqa: ANN201 - Ed25519PublicKey
        return parse_public_key(getattr(self.keys, role))


def load_partner(path: Path) -> Partner:
    """Load and validate one partner file; errors name the file and the key path."""
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError("partner.unknown", f"{path}: no such partner file", path=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("partner.invalid", f"{path}: not valid TOML: {exc}", path=str(path)) from exc
    try:
        partner = Partner.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        raise ConfigError("partner.invalid", f"{path}: {key}: {err['msg']}{more}", path=str(path), key=key) from None
    if partner.id != path.stem:
        raise ConfigError("partner.invalid", f"{path}: id: {partner.id!r} must equal the file name {path.stem!r}", path=str(path), key="id")
    return partner


def load_partners(directory: Path) -> dict[str, Partner]:
    """Load every ``*.toml`` partner file in ``directory``, keyed by partner id."""
    files = sorted(directory.glob("*.toml"))
    if not files:
        raise ConfigError("partner.unknown", f"no partner files (*.toml) in {directory}", path=str(directory))
    return {p.id: p for p in map(load_partner, files)}


def get_partner(directory: Path, partner_id: str) -> Partner:
    path = directory / f"{partner_id}.toml"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in directory.glob("*.toml")))
        raise ConfigError("partner.unknown", f"no partner {partner_id!r} in {directory} (known: {known})", partner=partner_id)
    return load_partner(path)


def set_public_key(directory: Path, partner_id: str, role: KeyRole, key_text: str) -> Path:
    """Register a new public key in a partner file, editing only that line (comments survive)."""
    path = directory / f"{partner_id}.toml"
    get_partner(directory, partner_id)
    text = path.read_text()
    pattern = re.compile(rf'^(\s*{role}\s*=\s*)"[^"]*"', re.MULTILINE)
    new, count = pattern.subn(lambda m: f'{m.group(1)}"{key_text}"', text, count=1)
    if count != 1:
        raise ConfigError("partner.invalid", f"{path}: keys.{role}: no such line to update", path=str(path), key=f"keys.{role}")
    path.write_text(new)
    load_partner(path)
    return path


__all__ = [
    "ARROW_TYPES",
    "JOIN_KEY",
    "Column",
    "Dataset",
    "Partner",
    "get_partner",
    "load_partner",
    "load_partners",
    "set_public_key",
]
