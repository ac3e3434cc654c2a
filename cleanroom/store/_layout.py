"""The layout inside the encrypted database: DDL, table names and the SQL of a version swap.

Everything lives in the attached catalog ``store`` (schema ``main``):

- ``meta(key, value)``: the layout version and a random store id (part of data-version tokens,
  so two stores that both hold "version 1" never share a cache entry);
- ``persons(hid, pid)``: peppered hid -> dense person id; the only place a hid is kept (the
  partner's own hid never reaches the disk, only its HMAC under the pepper);
- ``catalog``: one row per dataset version, exactly one ``active`` per partner dataset, with its
  row and person counts and the most rows any one person has in it (``max_rows_per_person``);
- ``nonces``: every manifest nonce ever accepted (replay protection survives version drops);
- ``ds_<partner>__<dataset>__v<n>``: one table per version, ``pid`` in place of ``hid``.
"""

from __future__ import annotations

import re

import pyarrow as pa

from cleanroom.errors import InternalError

LAYOUT_VERSION = "1"
IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,127}$")

DDL = (
    "CREATE TABLE IF NOT EXISTS store.main.meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)",
    # No PRIMARY KEY on hid: its index cost 2.5 s per 500k new persons. Uniqueness holds by
    # construction (distinct peppered hids, anti-join, one writer) and a duplicate could not go
    # unnoticed: every upload checks that the pid join returned exactly one row per uploaded row.
    "CREATE TABLE IF NOT EXISTS store.main.persons (hid VARCHAR NOT NULL, pid BIGINT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS store.main.catalog (
        partner VARCHAR NOT NULL, dataset VARCHAR NOT NULL, version INTEGER NOT NULL,
        table_name VARCHAR NOT NULL, rows BIGINT NOT NULL, persons BIGINT NOT NULL,
        sha256 VARCHAR NOT NULL, nonce VARCHAR NOT NULL, uploaded_at TIMESTAMP NOT NULL,
        uploaded_by VARCHAR NOT NULL, visible_columns VARCHAR[] NOT NULL, active BOOLEAN NOT NULL,
        PRIMARY KEY (partner, dataset, version))""",
    "CREATE TABLE IF NOT EXISTS store.main.nonces (nonce VARCHAR PRIMARY KEY, partner VARCHAR NOT NULL, used_at TIMESTAMP NOT NULL)",
    # The most rows any one person has in the version, recorded when it is published (NULL in
    # stores written before it existed: unknown, so the engine keeps its per-person row bound).
    "ALTER TABLE store.main.catalog ADD COLUMN IF NOT EXISTS max_rows_per_person BIGINT",
)

# Arrow type of a declared column -> DuckDB column type of a version table.
DUCKDB_TYPES: dict[pa.DataType, str] = {
    pa.string(): "VARCHAR",
    pa.int64(): "BIGINT",
    pa.bool_(): "BOOLEAN",
    pa.date32(): "DATE",
    pa.timestamp("us"): "TIMESTAMP",
}

ACTIVE_COLUMNS = "partner, dataset, version, table_name, rows, uploaded_at, sha256, max_rows_per_person, visible_columns"
# Named, not positional: the migration above appends ``max_rows_per_person`` after ``active``.
CATALOG_INSERT = (
    "INSERT INTO store.main.catalog (partner, dataset, version, table_name, rows, persons, max_rows_per_person, sha256, nonce, "
    "uploaded_at, uploaded_by, visible_columns, active) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, true)"
)


def quote(name: str) -> str:
    """Quote an identifier we generated or validated; anything else is a bug."""
    if not IDENT.match(name):
        raise InternalError("internal.invariant", f"refusing to use {name!r} as a SQL identifier")
    return f'"{name}"'


def table_name(partner: str, dataset: str, version: int) -> str:
    """``ds_northside_dealers__leads__v3``: partner ids have no ``_``, so ``__`` splits them."""
    return f"ds_{partner.replace('-', '_')}__{dataset}__v{version}"


def create_table_sql(table: str, schema: pa.Schema) -> str:
    """DDL of a version table: ``pid`` first, then the declared columns with NOT NULL as declared.

    The NOT NULL constraints are the null check: a null in a non-nullable column fails the
    insert inside the swap transaction, which then rolls back as a whole.
    """
    cols = ["pid BIGINT NOT NULL"]
    for field in schema:
        if field.name == "hid":
            continue
        if field.type not in DUCKDB_TYPES:
            raise InternalError("internal.invariant", f"no DuckDB type for {field.name}: {field.type}")
        cols.append(f"{quote(field.name)} {DUCKDB_TYPES[field.type]}{'' if field.nullable else ' NOT NULL'}")
    return f"CREATE TABLE store.main.{quote(table)} ({', '.join(cols)})"


def insert_version_sql(table: str, schema: pa.Schema, source: str, keyed: str) -> str:
    """Copy an upload into its version table, swapping each partner hid for its person id.

    ``keyed`` maps each distinct partner hid (``raw``) to its peppered hid; joining through it
    is about twice as fast as rewriting the hid column of every row before the insert.
    """
    cols = [quote(f.name) for f in schema if f.name != "hid"]
    selected = ", ".join(["m.pid"] + [f"i.{c}" for c in cols])
    ids = f"SELECT k.raw, p.pid FROM {quote(keyed)} AS k JOIN store.main.persons AS p ON p.hid = k.hid"
    return f"INSERT INTO store.main.{quote(table)} SELECT {selected} FROM {quote(source)} AS i JOIN ({ids}) AS m ON m.raw = i.hid"


def insert_persons_sql(keyed: str) -> str:
    """Give every peppered hid not yet in the dictionary the next dense person id."""
    return (
        "INSERT INTO store.main.persons "
        "SELECT k.hid, (SELECT coalesce(max(pid), 0) FROM store.main.persons) + row_number() OVER () "
        f"FROM {quote(keyed)} AS k "
        "WHERE NOT EXISTS (SELECT 1 FROM store.main.persons AS p WHERE p.hid = k.hid)"
    )
