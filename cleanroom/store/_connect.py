"""Opening the one DuckDB instance of a process: load httpfs, attach encrypted, harden, lock.

Why this order (see docs/explanation/storage.md): writing an encrypted database needs the
``httpfs`` extension, so it is loaded first, from the pinned PyPI wheel and never downloaded
(``allow_unsigned_extensions`` stays off: DuckDB checks the extension's signature). The database
is attached next, because attaching is a file-system operation that the sandbox forbids. Then the
instance is hardened and ``lock_configuration`` is set last, so nothing that runs later (a
buggy template, an allow-listed SQL query) can turn a setting back on.
"""

from __future__ import annotations

import importlib.resources
import logging
import re
from pathlib import Path

import duckdb

from cleanroom.errors import ConfigError, StoreError

log = logging.getLogger(__name__)

DUCKDB_VERSION = "v1.5.5"
MEMORY_LIMIT = re.compile(r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$")


def httpfs_path() -> Path:
    """The httpfs extension shipped by the pinned ``duckdb-extension-httpfs`` wheel."""
    root = importlib.resources.files("duckdb_extension_httpfs")
    path = Path(str(root / "extensions" / DUCKDB_VERSION / "httpfs.duckdb_extension"))
    if not path.is_file():
        raise ConfigError("config.invalid", f"httpfs extension not found at {path}; reinstall duckdb-extension-httpfs==1.5.5")
    return path


def sql_text(value: str) -> str:
    """A SQL string literal. Only for paths and settings we control; never for caller input."""
    return "'" + value.replace("'", "''") + "'"


def attach(db_file: Path, key_hex: str) -> duckdb.DuckDBPyConnection:
    """A fresh in-memory instance with the encrypted store attached as ``store``."""
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"LOAD {sql_text(str(httpfs_path()))}")
        con.execute(f"ATTACH {sql_text(str(db_file))} AS store (ENCRYPTION_KEY {sql_text(key_hex)})")
    except duckdb.Error as exc:
        con.close()
        raise _open_error(db_file, exc) from None
    return con


def _open_error(db_file: Path, exc: duckdb.Error) -> Exception:
    """Map DuckDB's open failures to stable codes; the key never appears in a message."""
    text = str(exc)
    if "Could not set lock" in text:
        return StoreError("store.locked", f"{db_file} is open in another process (is the gateway running?)", path=str(db_file))
    if "Unique file handle conflict" in text:
        return StoreError("store.locked", f"{db_file} is already open in this process; share that Store", path=str(db_file))
    if "encryption key" in text.lower() or "encrypted" in text.lower():
        return StoreError("store.key_invalid", f"the database key does not open {db_file} (wrong key or not a cleanroom store)", path=str(db_file))
    from cleanroom.store.faults import storage_fault  # a full disk, a read-only directory, a damaged block

    fault = storage_fault(exc, db_file)
    if fault is not None:
        return fault
    log.error("cannot open store %s: %s", db_file, text)
    return ConfigError("config.invalid", f"{db_file} cannot be opened as a cleanroom store: {exc.__class__.__name__}", path=str(db_file))


def harden(con: duckdb.DuckDBPyConnection, *, temp_dir: Path, memory_limit: str, threads: int) -> None:
    """Apply the instance-wide sandbox, then lock the configuration so it cannot be undone."""
    if not MEMORY_LIMIT.match(memory_limit):
        raise ConfigError("config.invalid", f"memory_limit {memory_limit!r} must look like '2GB' or '512MiB'")
    if not 1 <= threads <= 256:
        raise ConfigError("config.invalid", f"threads must be between 1 and 256, got {threads}")
    # SET GLOBAL, not SET: a plain SET of python_enable_replacements changes only the connection
    # it runs on, and every cursor (a new connection) would start with replacements back on,
    # able to read a Python variable of its caller's scope by name. (enable_external_access=false
    # happens to block replacement scans too in 1.5.5; this keeps the second, explicit lock.)
    for setting in (
        "temp_file_encryption = true",
        f"temp_directory = {sql_text(str(temp_dir))}",
        "enable_external_access = false",
        "autoinstall_known_extensions = false",
        "autoload_known_extensions = false",
        "python_enable_replacements = false",
        f"memory_limit = {sql_text(memory_limit)}",
        f"threads = {int(threads)}",
        "lock_configuration = true",
    ):
        con.execute(f"SET GLOBAL {setting}")
