"""Builders for prepared uploads: Arrow IPC files of a declared schema and signed manifests,
written exactly as ``cleanroom prepare`` writes them."""

from __future__ import annotations

import secrets
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleanroom.ingest import UploadPair
from cleanroom.manifest import Manifest, manifest_path
from cleanroom.partners import Dataset
from cleanroom.prepare import salt_fingerprint

PARTNER = "northside-dealers"
# The collaboration salt of the ingest tests: its fingerprint goes into every manifest, as prepare writes it.
SALT = bytes(range(32))
FINGERPRINT = salt_fingerprint(SALT)

DOMAINS: dict[str, list[str]] = {
    "dealer_id": [f"NS-0{i}" for i in range(1, 7)],
    "model": ["aster", "borealis", "cirrus", "dune", "ember", "fjord"],
    "region": ["north", "south", "east", "west", "central"],
    "source": ["web", "walk_in", "phone", "event"],
    "price_band": ["<30k", "30-45k", "45-60k", "60k+"],
    "purpose": ["measurement", "attribution", "analytics"],
    "salesperson": [f"S-{i:03d}" for i in range(40)],
}


def column_values(name: str, arrow_type: pa.DataType, nullable: bool, n: int, hids: list[str]) -> pa.Array:
    """Plausible values for one declared column (deterministic per row index)."""
    if name == "hid":
        values: list[Any] = [hids[i % len(hids)] for i in range(n)]
    elif arrow_type == pa.string():
        domain = DOMAINS.get(name, ["a", "b", "c"])
        values = [domain[(i * 7 + len(name)) % len(domain)] for i in range(n)]
    elif arrow_type == pa.int64():
        values = [20_000 + (i * 7919) % 60_000 for i in range(n)]
    elif arrow_type == pa.bool_():
        values = [i % 3 == 0 for i in range(n)]
    elif arrow_type == pa.date32():
        values = [date(2026, 1, 1) + timedelta(days=i % 300) for i in range(n)]
    else:
        values = [datetime(2025, 11, 1) + timedelta(minutes=17 * i) for i in range(n)]
    if nullable:
        values = [None if i % 4 == 0 else v for i, v in enumerate(values)]
    return pa.array(values, type=arrow_type)


def make_table(dataset: Dataset, rows: int, persons: int | None = None) -> pa.Table:
    hids = [secrets.token_hex(32) for _ in range(persons or max(1, rows // 2))]
    schema = dataset.arrow_schema()
    arrays = [column_values(f.name, f.type, f.nullable, rows, hids) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def write_upload(
    out: Path, partner: str, dataset_name: str, dataset: Dataset, table: pa.Table, key: Ed25519PrivateKey, *, name: str | None = None,
    fingerprint: str | None = FINGERPRINT, allow_shrink: bool = False,
) -> UploadPair:
    """Write ``<name>.arrow`` and its signed manifest, as ``cleanroom prepare`` would (``fingerprint=None``: as an older prepare did)."""
    out.mkdir(parents=True, exist_ok=True)
    arrow = out / f"{name or dataset_name}.arrow"
    with pa.ipc.new_file(arrow, table.schema) as writer:
        writer.write_table(table)
    unsigned = Manifest.new(partner, dataset_name, arrow, dataset.schema_hash(), table.num_rows, salt_fingerprint=fingerprint, allow_shrink=allow_shrink)
    manifest = unsigned.signed_by(key)
    manifest.write(manifest_path(arrow))
    return UploadPair(arrow=arrow, manifest=manifest_path(arrow))
