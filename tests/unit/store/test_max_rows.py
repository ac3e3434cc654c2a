"""The catalog records, per dataset version, the most rows any one person has in it (counted at
publish time); stores written before it existed read as unknown (None) and keep working."""

from __future__ import annotations

from pathlib import Path

from _store_data import leads_table, meta, rekey

from cleanroom.settings import GatewaySecrets
from cleanroom.store import Store

LEADS = "northside-dealers.leads"


def test_the_recorded_maximum_is_the_heaviest_persons_row_count(store: Store) -> None:
    # 50 rows over 7 persons, round-robin: person 0 gets rows 0, 7, ..., 49 (8 rows), the others 7.
    published = store.publish(leads_table(50, persons=7), meta(), rekey(store))
    assert published.version.max_rows_per_person == 8
    assert store.active_versions()[LEADS].max_rows_per_person == 8
    with store.reader({"leads": LEADS}) as cur:
        assert cur.execute("SELECT max(n) FROM (SELECT count(*) AS n FROM leads GROUP BY pid)").fetchone() == (8,)


def test_each_version_records_its_own_maximum(store: Store) -> None:
    store.publish(leads_table(30, persons=3), meta(), rekey(store))
    assert store.active_versions()[LEADS].max_rows_per_person == 10
    store.publish(leads_table(12), meta(), rekey(store))
    assert store.active_versions()[LEADS].max_rows_per_person == 1


def test_it_survives_a_reopen(store_dir: Path, gateway_secrets: GatewaySecrets) -> None:
    with Store.open(store_dir, gateway_secrets) as st:
        st.publish(leads_table(20, persons=4), meta(), rekey(st))
    with Store.open(store_dir, gateway_secrets) as st:
        assert st.active_versions()[LEADS].max_rows_per_person == 5


def test_a_store_from_before_the_column_reads_unknown_then_records(store_dir: Path, gateway_secrets: GatewaySecrets) -> None:
    with Store.open(store_dir, gateway_secrets) as st:
        st.publish(leads_table(20, persons=4), meta(), rekey(st))
        st._cursor().execute("ALTER TABLE store.main.catalog DROP COLUMN max_rows_per_person")  # the earlier layout
    with Store.open(store_dir, gateway_secrets) as st:
        assert st.active_versions()[LEADS].max_rows_per_person is None
        st.publish(leads_table(9, persons=3), meta(), rekey(st))
        assert st.active_versions()[LEADS].max_rows_per_person == 3
        assert st.active_versions()[LEADS].version == 2
