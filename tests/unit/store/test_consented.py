"""Consented-rows tables: a reader view over only the rows of persons with an active consent,
built once per (dataset version, consent version, purposes, consent horizon), never in the file,
and dropped once superseded and no longer read."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
from _store_data import leads_table

from cleanroom.errors import InternalError, QueryError
from cleanroom.store import Published, Store

LEADS = "northside-dealers.leads"
NOW = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)
PAST = datetime(2025, 1, 1)
CONSENT_SCHEMA = pa.schema([
    pa.field("hid", pa.string(), nullable=False), pa.field("purpose", pa.string(), nullable=False),
    pa.field("granted_at", pa.timestamp("us"), nullable=False), pa.field("revoked_at", pa.timestamp("us"), nullable=True),
])


def consent_table(grants: list[tuple[str, str, datetime, datetime | None]]) -> pa.Table:
    cols = list(zip(*grants, strict=True)) if grants else [[], [], [], []]
    return pa.Table.from_arrays([pa.array(list(c), type=f.type) for c, f in zip(cols, CONSENT_SCHEMA, strict=True)], schema=CONSENT_SCHEMA)


def naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


@pytest.fixture()
def hids(publish: Callable[..., Published]) -> list[str]:
    """Ten leads, one per person; the consent below is what each person gave northside-dealers."""
    table = leads_table(10)
    publish(table)
    return table.column("hid").to_pylist()


def grants(hids: list[str], *, revoke_7_at: datetime) -> pa.Table:
    """0-5 granted measurement; 6 revoked in the past; 7 revoked at ``revoke_7_at``; 8 only analytics; 0 analytics too; 9 nothing."""
    rows = [(h, "measurement", PAST, None) for h in hids[:6]]
    rows += [(hids[6], "measurement", PAST, PAST + timedelta(days=1)), (hids[7], "measurement", PAST, naive(revoke_7_at))]
    rows += [(hids[8], "analytics", PAST, None), (hids[0], "analytics", PAST, None)]
    return consent_table(rows)


def count(store: Store, purposes: list[str], at: datetime = NOW) -> int:
    with store.reader({"l": (LEADS, purposes)}, consent_at=at) as cur:
        return int(cur.execute("SELECT count(*) FROM l").fetchone()[0])


def test_only_persons_with_an_active_consent_for_every_purpose(store: Store, publish: Callable[..., Published], hids: list[str]) -> None:
    publish(grants(hids, revoke_7_at=NOW + timedelta(days=30)), dataset="consent")
    assert count(store, ["measurement"]) == 7  # 0-5 and 7 (revoked only later)
    assert count(store, ["measurement", "analytics"]) == 1  # person 0 alone holds both
    assert count(store, ["analytics"]) == 2
    with store.reader({"l": LEADS}) as cur:  # a plain view still shows every row
        assert cur.execute("SELECT count(*) FROM l").fetchone() == (10,)


def test_views_keep_private_columns_out_and_tables_stay_out_of_the_file(store: Store, publish: Callable[..., Published], hids: list[str]) -> None:
    publish(grants(hids, revoke_7_at=NOW), dataset="consent")
    with store.reader({"l": (LEADS, ["measurement"])}, consent_at=NOW) as cur:
        assert [d[0] for d in cur.execute("SELECT * FROM l LIMIT 0").description] == ["pid", "dealer_id", "price_eur"]
        assert cur.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall() == [("l",)]
        tables = cur.execute("SELECT database_name, table_name FROM duckdb_tables() WHERE table_name LIKE 'consented_%'").fetchall()
    assert [t[0] for t in tables] == ["memory"] and [t[1] for t in tables] == store.consented_tables()


def test_one_table_is_shared_until_the_horizon_passes(store: Store, publish: Callable[..., Published], hids: list[str]) -> None:
    """Person 7's revocation is dated one hour after NOW: it counts before, not after, and the table is rebuilt once."""
    publish(grants(hids, revoke_7_at=NOW + timedelta(hours=1)), dataset="consent")
    assert count(store, ["measurement"]) == 7
    first = store.consented_tables()
    assert count(store, ["measurement"], NOW + timedelta(minutes=59)) == 7
    assert store.consented_tables() == first and len(first) == 1
    assert count(store, ["measurement"], NOW + timedelta(hours=1)) == 6
    assert len(store.consented_tables()) == 1 and store.consented_tables() != first  # the superseded one was dropped


def test_a_new_consent_version_supersedes_the_table(store: Store, publish: Callable[..., Published], hids: list[str]) -> None:
    publish(grants(hids, revoke_7_at=NOW + timedelta(days=30)), dataset="consent")
    assert count(store, ["measurement"]) == 7
    assert len(store.consented_tables()) == 1
    publish(consent_table([(h, "measurement", PAST, None) for h in hids[:3]]), dataset="consent")
    assert store.consented_tables() == []  # dropped at the publish, not at the next query
    assert count(store, ["measurement"]) == 3


def test_an_open_reader_keeps_its_table_through_a_publish(store: Store, publish: Callable[..., Published], hids: list[str]) -> None:
    publish(grants(hids, revoke_7_at=NOW + timedelta(days=30)), dataset="consent")
    with store.reader({"l": (LEADS, ["measurement"])}, consent_at=NOW) as cur:
        publish(leads_table(4), dataset="leads")  # a new leads version: the table is superseded...
        assert cur.execute("SELECT count(*) FROM l").fetchone() == (7,)  # ...but still readable here
        assert len(store.consented_tables()) == 1
    assert store.consented_tables() == []
    assert count(store, ["measurement"]) == 0  # the new leads' persons never consented


def test_missing_consent_and_missing_moment_are_errors(store: Store, publish: Callable[..., Published], hids: list[str]) -> None:
    with pytest.raises(QueryError) as err:
        count(store, ["measurement"])
    assert err.value.code == "query.dataset_missing" and "northside-dealers.consent" in err.value.message
    publish(grants(hids, revoke_7_at=NOW), dataset="consent")
    with pytest.raises(InternalError):
        with store.reader({"l": (LEADS, ["measurement"])}):
            pass
    assert store.consented_tables() == []

