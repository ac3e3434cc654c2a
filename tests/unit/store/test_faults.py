"""Storage faults are recognized in one place (``storage_fault``), and a damaged block is ``store.integrity``.

The classifier is checked on the exceptions each library really raises (OSError errnos, SQLite
and DuckDB messages); the damaged block on a real encrypted store: bytes in the middle of a copy
of its database file are overwritten, and a query over the copy must fail as ``store.integrity``
(DuckDB: "Computed AES tag differs from read AES tag"), not as ``query.failed``.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
from pathlib import Path

import duckdb
import pytest
from _store_data import leads_table, meta, rekey

from cleanroom.budget.ledger import SCHEMA as LEDGER_SCHEMA
from cleanroom.errors import CleanroomError, QueryError, StoreError
from cleanroom.settings import GatewaySecrets
from cleanroom.store import DB_FILE, Store
from cleanroom.store.faults import RETRY_AFTER_S, StoreHealth, check_sqlite_schema, open_anonymous, storage_fault


@pytest.mark.parametrize(("exc", "code"), [
    (OSError(errno.ENOSPC, "No space left on device", "/s/audit.jsonl"), "store.full"),
    (OSError(errno.EDQUOT, "Disk quota exceeded"), "store.full"),
    (OSError(errno.EROFS, "Read-only file system"), "store.unavailable"),
    (PermissionError(errno.EACCES, "Permission denied"), "store.unavailable"),
    (PermissionError(errno.EPERM, "Operation not permitted"), "store.unavailable"),
    (OSError(errno.EIO, "Input/output error"), "store.unavailable"),
    (sqlite3.OperationalError("database or disk is full"), "store.full"),
    (sqlite3.OperationalError("attempt to write a readonly database"), "store.unavailable"),
    (sqlite3.OperationalError("unable to open database file"), "store.unavailable"),
    (sqlite3.OperationalError("disk I/O error"), "store.unavailable"),
    (sqlite3.DatabaseError("file is not a database"), "store.integrity"),
    (sqlite3.DatabaseError("database disk image is malformed"), "store.integrity"),
    (duckdb.TransactionException('TransactionContext Error: Failed to commit: Could not write file "/s/cleanroom.duckdb": '
                                 "No space left on device"), "store.full"),
    (duckdb.TransactionException('Failed to commit: Cannot open file "/s/cleanroom.duckdb.wal": Read-only file system'), "store.unavailable"),
    (duckdb.IOException("Corrupt database file: computed checksum 1 does not match stored checksum 2 in block"), "store.integrity"),
    (duckdb.InvalidInputException("Invalid Input Error: Computed AES tag differs from read AES tag, are you using the right key?"),
     "store.integrity"),
])
def test_faults_are_classified(exc: BaseException, code: str) -> None:
    fault = storage_fault(exc, "/s/budget.sqlite")
    assert fault is not None and fault.code == code and fault.status == 503
    assert fault.details["path"] in ("/s/budget.sqlite", "/s/audit.jsonl")
    assert fault.details["path"] in fault.message  # the operator learns which file
    assert ("retry_after_s" in fault.details) == (code != "store.integrity")
    if code != "store.integrity":
        assert fault.details["retry_after_s"] == RETRY_AFTER_S


@pytest.mark.parametrize("exc", [
    ValueError("x"), KeyError("k"), OSError(errno.ENOENT, "No such file"), FileExistsError(errno.EEXIST, "exists"),
    sqlite3.OperationalError("no such table: charges"), sqlite3.IntegrityError("UNIQUE constraint failed"),
    duckdb.CatalogException("Table with name x does not exist"), QueryError("query.failed", "x"),
])
def test_everything_else_is_not_a_storage_fault(exc: BaseException) -> None:
    assert storage_fault(exc) is None


def test_a_store_error_fault_passes_through() -> None:
    err = StoreError("store.full", "x")
    assert storage_fault(err) is err
    assert storage_fault(StoreError("store.locked", "x")) is None


def test_health_clears_full_on_a_write_but_integrity_is_sticky(tmp_path: Path) -> None:
    health = StoreHealth(tmp_path)
    assert health.reason is None
    health.fault(StoreError("store.full", "full"))
    assert health.reason == "store.full"
    health.require_intact()  # full: queries still try (the disk may have space again)
    health.wrote()
    assert health.reason is None
    health.fault(StoreError("store.integrity", "damaged"))
    health.wrote()
    assert health.reason == "store.integrity"
    with pytest.raises(StoreError) as err:
        health.require_intact()
    assert err.value.code == "store.integrity"


def test_the_health_probe_clears_a_fault_when_the_disk_takes_writes(tmp_path: Path) -> None:
    health = StoreHealth(tmp_path)
    health.fault(StoreError("store.unavailable", "ro"))
    health.probe()
    assert health.reason is None
    assert list(tmp_path.iterdir()) == []  # the probe leaves nothing behind


def test_an_anonymous_file_has_no_name_and_mode_0600(tmp_path: Path) -> None:
    fd = open_anonymous(tmp_path)
    try:
        os.write(fd, b"secret")
        assert list(tmp_path.iterdir()) == []
        assert os.fstat(fd).st_mode & 0o777 == 0o600
        assert Path(f"/proc/self/fd/{fd}").read_bytes() == b"secret"
    finally:
        os.close(fd)


def test_the_ledger_schema_check(tmp_path: Path) -> None:
    good = tmp_path / "good.sqlite"
    with sqlite3.connect(good) as con:
        con.executescript(LEDGER_SCHEMA)
    check_sqlite_schema(good, LEDGER_SCHEMA, "budget ledger")
    bad = tmp_path / "bad.sqlite"
    with sqlite3.connect(bad) as con:
        con.executescript("CREATE TABLE charges (id INTEGER PRIMARY KEY, micro TEXT)")
    with pytest.raises(StoreError) as err:
        check_sqlite_schema(bad, LEDGER_SCHEMA, "budget ledger")
    assert err.value.code == "store.integrity" and str(bad) in err.value.message
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(os.urandom(8192))
    with pytest.raises(StoreError) as err:
        check_sqlite_schema(garbage, LEDGER_SCHEMA, "budget ledger")
    assert err.value.code == "store.integrity" and str(garbage) in err.value.message


def _query(store: Store) -> None:
    with store.reader({"v": "northside-dealers.leads"}) as cur:
        cur.execute("SELECT count(*), sum(hash(dealer_id)) FROM v").fetchall()


def test_a_damaged_block_is_store_integrity(tmp_path: Path, store_dir: Path, gateway_secrets: GatewaySecrets) -> None:
    with Store.open(store_dir, gateway_secrets, memory_limit="512MB") as store:
        store.publish(leads_table(60_000), meta(), rekey(store))
        _query(store)
    size = (store_dir / DB_FILE).stat().st_size
    block = 256 * 1024
    outcomes = []
    for start in range(3 * 4096 + block, size, block):  # past the headers and the first block
        copy = tmp_path / f"copy-{start}"
        shutil.copytree(store_dir, copy)
        with (copy / DB_FILE).open("r+b") as fh:
            fh.seek(start + block // 2)
            fh.write(b"\xa5" * 512)
        try:
            with Store.open(copy, gateway_secrets, memory_limit="512MB") as damaged:
                _query(damaged)
            outcomes.append("ok")
        except CleanroomError as exc:
            outcomes.append(exc.code)
            if exc.code == "store.integrity" and isinstance(exc, StoreError):
                assert DB_FILE in exc.message
        shutil.rmtree(copy)
        if "store.integrity" in outcomes:
            break
    assert "query.failed" not in outcomes and "config.invalid" not in outcomes, outcomes
    if "store.integrity" not in outcomes:
        pytest.skip(f"no overwritten block was read by the query ({outcomes}); the classifier cases above cover the message")
