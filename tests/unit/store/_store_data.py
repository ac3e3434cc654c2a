"""Small peppered tables as ingest hands them to the store after validation."""

from __future__ import annotations

import secrets

import pyarrow as pa

from cleanroom.ingest import pepper_hids
from cleanroom.store import Rekey, Store, VersionMeta

LEADS_SCHEMA = pa.schema(
    [
        pa.field("hid", pa.string(), nullable=False),
        pa.field("dealer_id", pa.string(), nullable=False),
        pa.field("price_eur", pa.int64(), nullable=True),
        pa.field("salesperson", pa.string(), nullable=False),
    ]
)


def leads_table(rows: int, dealer: str = "NS-01", persons: int | None = None) -> pa.Table:
    hids = [secrets.token_hex(32) for _ in range(persons or rows)]
    return pa.Table.from_arrays(
        [
            pa.array([hids[i % len(hids)] for i in range(rows)]),
            pa.array([dealer] * rows),
            pa.array([None if i % 5 == 0 else 20_000 + i for i in range(rows)], pa.int64()),
            pa.array([f"S-{i % 7:03d}" for i in range(rows)]),
        ],
        schema=LEADS_SCHEMA,
    )


def meta(partner: str = "northside-dealers", dataset: str = "leads") -> VersionMeta:
    return VersionMeta(
        partner=partner, dataset=dataset, sha256=secrets.token_hex(32), nonce=secrets.token_hex(16), uploaded_by="test", hidden_columns=("salesperson",)
    )


def rekey(store: Store) -> Rekey:
    """The pepper step ingest hands to ``Store.publish``."""
    return lambda distinct: pepper_hids(distinct, store.pepper_keyer)
