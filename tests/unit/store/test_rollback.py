"""Versions and rollback on a real encrypted store: retained versions can be made active again in one
transaction, the data-version token follows the active version, and old rows are still dropped."""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
import pytest
from _store_data import LEADS_SCHEMA, leads_table, meta, rekey

from cleanroom.errors import CleanroomError
from cleanroom.store import RETAINED_VERSIONS, Published, Store

LEADS = "northside-dealers.leads"


def _count(store: Store) -> int:
    with store.reader({"leads": LEADS}) as cur:
        row = cur.execute("SELECT count(*) FROM leads").fetchone()
    return int(row[0]) if row else -1


def _tables(store: Store) -> set[str]:
    with store.writer() as cur:
        return {r[0] for r in cur.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = 'store'").fetchall()}


def test_rollback_restores_rows_and_token(store: Store, publish: Callable[..., Published]) -> None:
    publish(leads_table(30))
    token_one = store.data_version_token([LEADS])
    publish(leads_table(70))
    token_two = store.data_version_token([LEADS])
    assert _count(store) == 70 and token_two != token_one
    done = store.rollback("northside-dealers", "leads", 1)
    assert (done.version.version, done.rolled_back_from, done.version.rows) == (1, 2, 30)
    assert _count(store) == 30 and store.active_versions()[LEADS].version == 1
    assert store.data_version_token([LEADS]) == token_one != token_two, "the token names the active version: never version 2's cache entries"
    again = store.rollback("northside-dealers", "leads", 1)
    assert again.rolled_back_from is None and again.replayed, "the active version: a no-op"
    forward = store.rollback("northside-dealers", "leads", 2)
    assert forward.rolled_back_from == 1 and _count(store) == 70
    # the next upload is version 3, whatever was active
    assert publish(leads_table(60)).version.version == 3


def test_unknown_version_is_not_found_and_changes_nothing(store: Store, publish: Callable[..., Published]) -> None:
    publish(leads_table(30))
    for partner, dataset, version in (("northside-dealers", "leads", 9), ("northside-dealers", "sales", 1), ("lakeside-autos", "leads", 1)):
        with pytest.raises(CleanroomError) as exc:
            store.rollback(partner, dataset, version)
        assert exc.value.code == "store.not_found" and exc.value.status == 404
    assert store.active_versions()[LEADS].version == 1


def test_only_the_most_recent_superseded_versions_keep_their_rows(store: Store, publish: Callable[..., Published]) -> None:
    total = RETAINED_VERSIONS + 3
    for n in range(total):
        publish(leads_table(10 + n))
    versions = store.versions(LEADS)
    assert [v.version for v in versions] == list(range(1, total + 1))
    assert [v.active for v in versions] == [False] * (total - 1) + [True]
    retained = [v.version for v in versions if v.retained]
    assert retained == list(range(total - RETAINED_VERSIONS, total + 1))
    assert f"ds_northside_dealers__leads__v{total - RETAINED_VERSIONS - 1}" not in _tables(store)
    with pytest.raises(CleanroomError) as exc:
        store.rollback("northside-dealers", "leads", 1)
    assert exc.value.code == "store.not_found" and "dropped" in exc.value.message
    assert store.active_versions()[LEADS].version == total


def test_the_same_upload_again_rebuilds_a_dropped_version(store: Store) -> None:
    first_meta, first = meta(), leads_table(25)
    store.publish(first, first_meta, rekey(store))
    for n in range(RETAINED_VERSIONS + 1):
        store.publish(leads_table(40 + n), meta(), rekey(store))
    assert not store.versions(LEADS)[0].retained
    persons = store.person_count()
    done = store.publish(first, first_meta, rekey(store))
    assert (done.version.version, done.rolled_back_from, done.replayed, done.new_persons) == (1, RETAINED_VERSIONS + 2, True, 0)
    assert _count(store) == 25 and store.person_count() == persons
    assert store.versions(LEADS)[0].retained


def test_a_version_with_other_columns_is_not_made_active(store: Store) -> None:
    store.publish(leads_table(20), meta(), rekey(store))
    narrow = leads_table(20).drop_columns(["price_eur"])
    assert narrow.schema != LEADS_SCHEMA
    store.publish(pa.Table.from_batches(narrow.to_batches(), narrow.schema), meta(), rekey(store))
    with pytest.raises(CleanroomError) as exc:
        store.rollback("northside-dealers", "leads", 1)
    assert exc.value.code == "upload.schema_mismatch"
    assert store.active_versions()[LEADS].version == 2
