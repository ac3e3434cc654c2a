"""Turn generated rows into the two things that leave the generator: raw CSVs and truth tables.

A partner's CSV holds what the partner really has: its internal ``crm_id``, the person's name,
the raw (messy) email and phone, then exactly the business columns its partner file declares, in
declared order and format (ISO 8601 timestamps, ``YYYY-MM-DD`` dates, ``true``/``false``; an empty
field only in nullable columns and in missing identifiers). The truth table holds the same
business values, typed, keyed by the identity ``prepare`` will derive, and no PII at all.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from cleanroom.errors import ConfigError
from cleanroom.partners import JOIN_KEY, Dataset
from cleanroom.synth.frame import Coded, Column, Rows
from cleanroom.synth.identifiers import Emails
from cleanroom.synth.profiles import Profile, identity, raw_identifiers, reasons

PII_COLUMNS = ("crm_id", "first_name", "last_name", "email", "phone")


@dataclass(frozen=True)
class Output:
    """One (partner, dataset): its rows in file order, typed business columns and identity keys."""

    partner: str
    dataset: str
    rows: Rows
    business: pa.Table
    ikey: np.ndarray
    email_reason: np.ndarray
    phone_reason: np.ndarray

    def truth_table(self) -> pa.Table:
        return self.business.append_column("ikey", pa.array(self.ikey))


def business_columns(where: str, schema: Dataset, rows: Rows) -> pa.Table:
    """The declared columns (minus ``hid``), typed as declared; anything else is a generator/partner mismatch."""
    declared = [name for name in schema.columns if name != JOIN_KEY]
    if set(declared) != set(rows.columns):
        missing, extra = sorted(set(declared) - set(rows.columns)), sorted(set(rows.columns) - set(declared))
        raise ConfigError(
            "partner.invalid",
            f"{where}: the synthetic generator writes columns {sorted(rows.columns)}; the partner file declares "
            f"{declared} (cannot produce: {missing}; not declared: {extra})",
            key=where,
        )
    return pa.table({name: _typed(where, name, schema.columns[name].type, schema.columns[name].nullable, rows.columns[name]) for name in declared})


def _typed(where: str, name: str, kind: str, nullable: bool, col: Column) -> pa.Array:
    if kind == "string" and isinstance(col, Coded | pa.Array):
        return col.arrow() if isinstance(col, Coded) else col
    if isinstance(col, np.ndarray) and kind == "timestamp":
        mask = (col < 0) if nullable else None
        return pa.array(col.astype(np.int64), pa.int64(), mask=mask).cast(pa.timestamp("s"))
    if isinstance(col, np.ndarray) and kind == "date":
        return pa.array(col.astype(np.int32)).cast(pa.date32())
    if isinstance(col, np.ndarray) and kind in ("bool", "int64") and (col.dtype == np.bool_) == (kind == "bool"):
        return pa.array(col)
    raise ConfigError("partner.invalid", f"{where}.{name}: declared as {kind}, which the synthetic generator does not produce for it", key=f"{where}.{name}")


def file_order(rows: Rows, schema: Dataset) -> Rows:
    """Rows sorted as an export would be: by the dataset's first timestamp/date column, then person."""
    first_time = next(n for n, c in schema.columns.items() if c.type in ("timestamp", "date"))
    return rows.take(np.argsort(sort_key(rows.columns[first_time], rows.pid), kind="stable"))  # type: ignore[arg-type]


def sort_key(time: np.ndarray, pid: np.ndarray) -> np.ndarray:
    """One int64 ordering by time then person (one argsort is much faster than a lexsort)."""
    return time.astype(np.int64) * (1 << 24) + pid


def build_output(partner: str, dataset: str, schema: Dataset, rows: Rows, profile: Profile) -> Output:
    rows = file_order(rows, schema)
    business = business_columns(f"{partner}.datasets.{dataset}", schema, rows)
    email_reason, phone_reason = reasons(profile, rows)
    return Output(partner, dataset, rows, business, identity(profile, rows), email_reason, phone_reason)


def csv_table(out: Output, profile: Profile, emails: Emails) -> pa.Table:
    """PII first (as a CRM export has it), then the declared business columns in CSV text form."""
    email, phone = raw_identifiers(profile, out.rows)
    pid = pa.array(out.rows.pid)
    pii = {
        "crm_id": profile.crm_id.take(pa.array(profile.pos[out.rows.pid])),
        "first_name": emails.first_name.take(pid),
        "last_name": emails.last_name.take(pid),
        "email": email,
        "phone": phone,
    }
    text = {name: _as_text(out.business.column(name).combine_chunks()) for name in out.business.column_names}
    return pa.table({**pii, **text})


def _as_text(col: pa.Array) -> pa.Array:
    if pa.types.is_timestamp(col.type):
        return pc.replace_substring(col.cast(pa.string()), " ", "T")
    return col


def write_csv(table: pa.Table, path: Path) -> None:
    """Write next to the target and rename, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    pcsv.write_csv(table, tmp, write_options=pcsv.WriteOptions(quoting_style="needed"))
    os.replace(tmp, path)
