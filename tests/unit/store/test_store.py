"""The encrypted store: encryption at rest, keys, locks, the sandbox, readers, the writer."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from _store_data import leads_table, meta, rekey

from cleanroom.crypto import new_secret
from cleanroom.errors import CleanroomError, QueryError, StoreError, UploadError
from cleanroom.settings import GatewaySecrets
from cleanroom.store import DB_FILE, Published, Store

LEADS = "northside-dealers.leads"
MARKER = "ZQ-DISTINCTIVE-DEALER-7731"


def test_open_creates_private_directory_and_persists(store_dir: Path, gateway_secrets: GatewaySecrets) -> None:
    with Store.open(store_dir, gateway_secrets) as st:
        published = st.publish(leads_table(40), meta(), rekey(st))
        token = st.data_version_token([LEADS])
    assert stat.S_IMODE(store_dir.stat().st_mode) == 0o700
    with Store.open(store_dir, gateway_secrets) as st:
        assert st.active_versions() == {LEADS: published.version}
        assert st.data_version_token([LEADS]) == token
        with st.reader({"leads": LEADS}) as cur:
            assert cur.execute("SELECT count(*) FROM leads").fetchone() == (40,)


def test_data_is_encrypted_on_disk(store_dir: Path, gateway_secrets: GatewaySecrets, tmp_path: Path) -> None:
    table = leads_table(20_000, dealer=MARKER)
    with Store.open(store_dir, gateway_secrets) as st:
        st.publish(table, meta(), rekey(st))
        with st.reader({"leads": LEADS}) as cur:
            assert cur.execute("SELECT DISTINCT dealer_id FROM leads").fetchall() == [(MARKER,)]
    # Read the files only after close: closing any descriptor of the file in this process would
    # drop DuckDB's POSIX lock on it.
    on_disk = b"".join(p.read_bytes() for p in store_dir.rglob("*") if p.is_file())
    assert MARKER.encode() not in on_disk
    # Control: the same data in an unencrypted DuckDB file does show the marker, so the check above can fail.
    plain = duckdb.connect(str(tmp_path / "plain.duckdb"))
    plain.register("t", table)
    plain.execute("CREATE TABLE leads AS SELECT * FROM t")
    plain.close()
    assert MARKER.encode() in (tmp_path / "plain.duckdb").read_bytes()


def test_wrong_key_is_key_invalid(store_dir: Path, gateway_secrets: GatewaySecrets) -> None:
    Store.open(store_dir, gateway_secrets).close()
    wrong = GatewaySecrets(pepper=gateway_secrets.pepper, db_key=new_secret())
    with pytest.raises(StoreError) as exc:
        Store.open(store_dir, wrong)
    assert exc.value.code == "store.key_invalid"
    assert wrong.db_key_text not in exc.value.message and gateway_secrets.db_key_text not in exc.value.message


def test_second_process_gets_store_locked(store: Store, store_dir: Path, gateway_secrets: GatewaySecrets) -> None:
    script = (
        "import sys\nfrom pathlib import Path\nfrom cleanroom.settings import GatewaySecrets\nfrom cleanroom.store import Store\n"
        "from cleanroom.errors import CleanroomError\n"
        "try:\n    Store.open(Path(sys.argv[1]), GatewaySecrets.load())\nexcept CleanroomError as e:\n    print(e.code, e.message)\n"
    )
    env = {**os.environ, "CLEANROOM_PEPPER": gateway_secrets.pepper.hex(), "CLEANROOM_DB_KEY": gateway_secrets.db_key.hex()}
    env.pop("CLEANROOM_KEYS_FILE", None)
    out = subprocess.run([sys.executable, "-c", script, str(store_dir)], env=env, capture_output=True, text=True, timeout=60, check=True).stdout
    assert out.startswith("store.locked") and "gateway" in out


def test_same_process_second_open_is_locked(store: Store, store_dir: Path, gateway_secrets: GatewaySecrets) -> None:
    with pytest.raises(StoreError) as exc:
        Store.open(store_dir, gateway_secrets)
    assert exc.value.code == "store.locked"


def test_instance_settings_are_hardened_for_every_cursor(store: Store) -> None:
    names = ["temp_file_encryption", "enable_external_access", "autoload_known_extensions", "autoinstall_known_extensions",
             "python_enable_replacements", "allow_unsigned_extensions", "lock_configuration", "threads"]
    with store.reader({}) as cur:
        values = dict(cur.execute("SELECT name, value FROM duckdb_settings() WHERE list_contains(?, name)", [names]).fetchall())
    assert values == {
        "temp_file_encryption": "true", "enable_external_access": "false", "autoload_known_extensions": "false",
        "autoinstall_known_extensions": "false", "python_enable_replacements": "false", "allow_unsigned_extensions": "false",
        "lock_configuration": "true", "threads": "2",
    }


def test_cursors_cannot_read_python_variables(store: Store) -> None:
    secret_rows = pa.table({"x": [1, 2, 3]})  # noqa: F841 - what a replacement scan would find by name
    with pytest.raises(QueryError) as exc:
        with store.reader({}) as cur:
            cur.execute("SELECT count(*) FROM secret_rows").fetchall()
    assert exc.value.code == "query.failed"


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT * FROM read_csv('/etc/passwd')",
        "COPY (SELECT 1) TO 'leak.csv'",
        "ATTACH 'other.duckdb' AS other",
        "INSTALL httpfs",
        "SET enable_external_access = true",
        "SET lock_configuration = false",
        "LOAD 'spatial'",
        "LOAD 'evil.duckdb_extension'",
    ],
)
def test_sandbox_blocks_escapes(store: Store, statement: str) -> None:
    with pytest.raises((duckdb.PermissionException, duckdb.InvalidInputException, duckdb.IOException, duckdb.CatalogException)):
        with store.writer() as cur:
            cur.execute(statement)
    with pytest.raises(QueryError) as exc:
        with store.reader({}) as cur:
            cur.execute(statement)
    assert exc.value.code == "query.failed" and "passwd" not in exc.value.message and "Permission" not in exc.value.message


def test_reader_sees_only_its_views(store: Store, publish: Callable[..., Published]) -> None:
    publish()
    publish(dataset="sales")
    with store.reader({"l": LEADS}) as cur:
        views = cur.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
        columns = [d[0] for d in cur.execute("SELECT * FROM l LIMIT 0").description]
    assert views == [("l",)]
    assert columns == ["pid", "dealer_id", "price_eur"]  # salesperson is private: stored, never in a view
    with store.reader({"s": "northside-dealers.sales"}) as cur:
        assert cur.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall() == [("s",)]
        with pytest.raises(duckdb.CatalogException):
            cur.execute("SELECT * FROM l")


def test_running_reader_keeps_its_version_through_a_swap(store: Store, publish: Callable[..., Published]) -> None:
    publish(leads_table(50))
    with store.reader({"l": LEADS}) as cur:
        cur.execute("BEGIN TRANSACTION")
        assert cur.execute("SELECT count(*) FROM l").fetchone() == (50,)
        publish(leads_table(70))  # drops version 1's table in its own transaction
        assert cur.execute("SELECT count(*) FROM l").fetchone() == (50,)
        cur.execute("COMMIT")
    with store.reader({"l": LEADS}) as cur:
        assert cur.execute("SELECT count(*) FROM l").fetchone() == (70,)


def test_reader_errors(store: Store, publish: Callable[..., Published]) -> None:
    with pytest.raises(QueryError) as exc:
        with store.reader({"l": LEADS}):
            pass
    assert exc.value.code == "query.dataset_missing"
    publish()
    with pytest.raises(QueryError) as exc:
        with store.reader({"l": LEADS}) as cur:
            cur.execute("SELECT secret_column_xyz FROM l")
    assert exc.value.code == "query.failed" and "secret_column_xyz" not in str(exc.value)


def test_timeout_interrupts_and_store_stays_usable(store: Store) -> None:
    started = time.perf_counter()
    with pytest.raises(QueryError) as exc:
        with store.reader({}, timeout_s=0.3) as cur:
            cur.execute("SELECT sum(hash(range)) FROM range(100000000000)").fetchall()
    assert exc.value.code == "query.timeout"
    assert time.perf_counter() - started < 10
    with store.reader({}) as cur:
        assert cur.execute("SELECT 42").fetchone() == (42,)


def test_writer_rolls_back_on_error(store: Store, publish: Callable[..., Published]) -> None:
    publish()
    before = store.active_versions()
    with pytest.raises(RuntimeError):
        with store.writer() as cur:
            cur.execute("CREATE TABLE store.main.half_written AS SELECT 1 AS x")
            cur.execute("UPDATE store.main.catalog SET active = false")
            raise RuntimeError("interrupted")
    assert store.active_versions() == before
    with store.writer() as cur:
        assert cur.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'half_written'").fetchone() == (0,)


def test_publish_failure_inside_swap_rolls_back_persons(store: Store, publish: Callable[..., Published]) -> None:
    first = publish(leads_table(30))
    persons = store.person_count()
    bad = leads_table(1000)
    dealers = pa.array(bad.column("dealer_id").to_pylist()[:999] + [None], pa.string())
    bad = bad.set_column(1, bad.schema.field("dealer_id"), dealers)
    with pytest.raises(duckdb.ConstraintException):
        store.publish(bad, meta(), rekey(store))
    assert store.active_versions() == {LEADS: first.version}
    assert store.person_count() == persons


def test_replay_is_checked_inside_the_transaction_per_partner_and_dataset(store: Store) -> None:
    m = meta()
    store.publish(leads_table(10), m, rekey(store))
    mine = {"partner": m.partner, "dataset": m.dataset}
    assert store.seen(**mine, nonce=m.nonce, sha256="0" * 64).reason == "nonce"  # type: ignore[union-attr]
    assert store.seen(**mine, nonce="0" * 32, sha256=m.sha256).reason == "sha256"  # type: ignore[union-attr]
    assert store.seen(**mine, nonce=m.nonce, sha256=m.sha256).reason == "manifest"  # type: ignore[union-attr]
    # another partner's (or dataset's) nonce and bytes are nobody else's business
    assert store.seen(partner="lakeside-autos", dataset="leads", nonce=m.nonce, sha256=m.sha256) is None
    assert store.seen(partner=m.partner, dataset="sales", nonce=m.nonce, sha256=m.sha256) is None
    with pytest.raises(UploadError) as exc:
        store.publish(leads_table(10), m.model_copy(update={"sha256": "1" * 64}), rekey(store))
    assert exc.value.code == "upload.replayed"
    again = store.publish(leads_table(10), m, rekey(store))
    assert again.replayed and again.version.version == 1 and again.rolled_back_from is None


def test_person_ids_are_dense_and_shared_across_datasets(store: Store) -> None:
    table = leads_table(100, persons=40)
    assert store.publish(table, meta(), rekey(store)).new_persons == 40
    assert store.publish(table.slice(0, 50), meta(dataset="sales"), rekey(store)).new_persons == 0
    assert store.publish(leads_table(10), meta(dataset="test_drives"), rekey(store)).new_persons == 10
    with store.writer() as cur:
        assert cur.execute("SELECT min(pid), max(pid), count(*) FROM store.main.persons").fetchone() == (1, 50, 50)


def test_data_version_token_tracks_versions(store: Store, publish: Callable[..., Published]) -> None:
    empty = store.data_version_token([LEADS])
    publish()
    one = store.data_version_token([LEADS])
    assert one != empty and store.data_version_token([LEADS, LEADS]) == one
    other = store.data_version_token(["northside-dealers.sales"])
    publish(dataset="sales")
    assert store.data_version_token([LEADS]) == one and store.data_version_token(["northside-dealers.sales"]) != other
    publish()
    assert store.data_version_token([LEADS]) != one


def test_concurrent_publishes_serialize(store: Store) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            store.publish(leads_table(200), meta(), rekey(store))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert store.active_versions()[LEADS].version == 4
    with store.writer() as cur:
        assert cur.execute("SELECT count(*) FROM store.main.catalog WHERE active").fetchone() == (1,)


def test_bad_limits_are_config_errors(tmp_path: Path, gateway_secrets: GatewaySecrets) -> None:
    with pytest.raises(CleanroomError) as exc:
        Store.open(tmp_path / "s", gateway_secrets, memory_limit="2GB'; SET x=1; --")
    assert exc.value.code == "config.invalid"
    Store.open(tmp_path / "s", gateway_secrets).close()  # the failed open released the file
    assert (tmp_path / "s" / DB_FILE).exists()
