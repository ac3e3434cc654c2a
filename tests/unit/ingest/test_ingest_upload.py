"""ingest_upload end to end on a real encrypted store: accepted uploads, and every rejection
leaving the previous version active and readable with exactly the same rows."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from _uploads import FINGERPRINT, PARTNER, make_table, write_upload

from cleanroom.audit import AuditLog
from cleanroom.crypto import Keyer, new_signing_key
from cleanroom.errors import CleanroomError
from cleanroom.ingest import UploadPair, ingest_upload
from cleanroom.manifest import Manifest
from cleanroom.partners import get_partner
from cleanroom.settings import GatewaySecrets
from cleanroom.store import Store

LEADS = f"{PARTNER}.leads"


def upload(store: Store, partners_dir: Path, pair: UploadPair, audit: AuditLog | None = None) -> Any:
    return ingest_upload(store, partners_dir, PARTNER, pair.arrow, pair.manifest, actor="test", audit=audit)


def snapshot(store: Store) -> tuple[Any, ...]:
    """Everything an upload must not change when rejected: versions, rows, the person count."""
    with store.reader({"leads": LEADS}) as cur:
        rows = cur.execute("SELECT * FROM leads ORDER BY ALL").fetchall()
    return store.active_versions(), rows, store.person_count()


def test_accepted_upload_is_readable_and_audited(store: Store, partners_dir: Path, build: Callable[..., UploadPair], tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit.jsonl")
    pair = build(rows=300)
    result = upload(store, partners_dir, pair, audit)
    assert (result.partner, result.dataset, result.version, result.rows, result.new_persons) == (PARTNER, "leads", 1, 300, 150)
    with store.reader({"leads": LEADS}) as cur:
        count, persons = cur.execute("SELECT count(*), count(DISTINCT pid) FROM leads").fetchone()
    assert (count, persons) == (300, 150)
    [entry] = list(audit.entries())
    sha = Manifest.read(pair.manifest).sha256
    assert entry.event == "upload" and entry.details == {
        "partner": PARTNER, "dataset": "leads", "version": 1, "rows": 300, "sha256": sha, "salt_fingerprint": FINGERPRINT,
    }
    assert audit.verify().ok


def test_new_version_swaps_and_reuses_person_ids(store: Store, partners_dir: Path, build: Callable[..., UploadPair]) -> None:
    dataset = get_partner(partners_dir, PARTNER).dataset("leads")
    first = make_table(dataset, 100, persons=50)
    upload(store, partners_dir, build(table=first))
    # Same people, different rows: no new person ids, version 2 active, version 1 retained (for a rollback).
    second = first.slice(0, 60)
    result = upload(store, partners_dir, build(table=second))
    assert (result.version, result.rows, result.new_persons) == (2, 60, 0)
    assert store.active_versions()[LEADS].version == 2
    assert store.person_count() == 50
    with store.writer() as cur:
        tables = {r[0] for r in cur.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = 'store'").fetchall()}
    assert {"ds_northside_dealers__leads__v2", "ds_northside_dealers__leads__v1"} <= tables


def test_hids_are_rekeyed_with_the_pepper(store: Store, partners_dir: Path, build: Callable[..., UploadPair], gateway_secrets: GatewaySecrets) -> None:
    pair = build(rows=20)
    uploaded = set(pa.ipc.open_file(pair.arrow).read_all().column("hid").to_pylist())
    upload(store, partners_dir, pair)
    with store.writer() as cur:
        stored = {r[0] for r in cur.execute("SELECT hid FROM store.main.persons").fetchall()}
    keyer = Keyer(gateway_secrets.pepper)
    assert stored == {keyer.hex(h) for h in uploaded}
    assert not stored & uploaded


# --- rejections: each leaves version 1 intact --------------------------------------------------


def _tampered_file(pair: UploadPair, **_: Any) -> None:
    data = bytearray(pair.arrow.read_bytes())
    data[len(data) // 2] ^= 0x01
    pair.arrow.write_bytes(bytes(data))


def _tampered_manifest(pair: UploadPair, **_: Any) -> None:
    doc = json.loads(pair.manifest.read_text())
    doc["row_count"] += 1
    pair.manifest.write_text(json.dumps(doc))


def _truncated(pair: UploadPair, key: Any, dataset: Any, **_: Any) -> None:
    """Truncate, then sign the truncated file honestly: only the Arrow reader can catch it."""
    data = pair.arrow.read_bytes()
    pair.arrow.write_bytes(data[: len(data) - 100])
    rows = Manifest.read(pair.manifest).row_count
    Manifest.new(PARTNER, "leads", pair.arrow, dataset.schema_hash(), rows).signed_by(key).write(pair.manifest)


REJECTIONS: dict[str, tuple[Callable[..., None], str]] = {
    "tampered file": (_tampered_file, "upload.manifest_invalid"),
    "tampered manifest": (_tampered_manifest, "upload.signature_invalid"),
    "truncated arrow": (_truncated, "upload.file_invalid"),
}


@pytest.mark.parametrize("case", list(REJECTIONS))
def test_tampering_is_rejected_and_previous_version_intact(
    case: str, store: Store, partners_dir: Path, build: Callable[..., UploadPair], uploader_key: Any, tmp_path: Path
) -> None:
    upload(store, partners_dir, build(rows=120))
    before = snapshot(store)
    pair = build(rows=150)
    tamper, code = REJECTIONS[case]
    tamper(pair, key=uploader_key, dataset=get_partner(partners_dir, PARTNER).dataset("leads"))
    audit = AuditLog(tmp_path / "audit.jsonl")
    with pytest.raises(CleanroomError) as exc:
        upload(store, partners_dir, pair, audit)
    assert exc.value.code == code
    assert snapshot(store) == before
    [entry] = list(audit.entries())
    assert entry.event == "upload.rejected" and entry.details["code"] == code


def test_the_same_upload_again_is_idempotent(store: Store, partners_dir: Path, build: Callable[..., UploadPair]) -> None:
    pair = build(rows=80)
    first = upload(store, partners_dir, pair)
    before = snapshot(store)
    again = upload(store, partners_dir, pair)
    assert (again.version, again.rows, again.new_persons, again.replayed, again.rolled_back_from) == (first.version, 80, 0, True, None)
    assert snapshot(store) == before


def test_same_file_with_fresh_nonce_is_rejected(store: Store, partners_dir: Path, build: Callable[..., UploadPair], uploader_key: Any) -> None:
    pair = build(rows=80)
    upload(store, partners_dir, pair)
    before = snapshot(store)
    old = Manifest.read(pair.manifest)
    Manifest.new(PARTNER, "leads", pair.arrow, old.schema_hash, old.row_count).signed_by(uploader_key).write(pair.manifest)
    with pytest.raises(CleanroomError) as exc:
        upload(store, partners_dir, pair)
    assert exc.value.code == "upload.replayed" and "SHA-256" in exc.value.message
    assert snapshot(store) == before


def test_wrong_key_is_rejected(store: Store, partners_dir: Path, build: Callable[..., UploadPair]) -> None:
    upload(store, partners_dir, build(rows=50))
    before = snapshot(store)
    with pytest.raises(CleanroomError) as exc:
        upload(store, partners_dir, build(rows=50, key=new_signing_key()))
    assert exc.value.code == "upload.signature_invalid"
    assert "uploader key" in exc.value.message
    assert snapshot(store) == before


def test_raw_email_column_is_rejected(store: Store, partners_dir: Path, build: Callable[..., UploadPair]) -> None:
    upload(store, partners_dir, build(rows=50))
    before = snapshot(store)
    table = make_table(get_partner(partners_dir, PARTNER).dataset("leads"), 500)
    emails = pa.array([f"person{i}@example.de" if i % 10 == 0 else "web" for i in range(500)])
    table = table.set_column(table.schema.get_field_index("source"), table.schema.field("source"), emails)
    with pytest.raises(CleanroomError) as exc:
        upload(store, partners_dir, build(table=table))
    assert exc.value.code == "upload.raw_pii_detected"
    assert exc.value.details["column"] == "source" and exc.value.details["kind"] == "email"
    assert "@" not in exc.value.message
    assert snapshot(store) == before


def test_schema_mismatch_names_column_and_types(store: Store, partners_dir: Path, build: Callable[..., UploadPair]) -> None:
    upload(store, partners_dir, build(rows=50))
    before = snapshot(store)
    table = make_table(get_partner(partners_dir, PARTNER).dataset("leads"), 50)
    idx = table.schema.get_field_index("model")
    table = table.set_column(idx, pa.field("model", pa.int64(), nullable=False), pa.array(range(50), pa.int64()))
    with pytest.raises(CleanroomError) as exc:
        upload(store, partners_dir, build(table=table))
    assert exc.value.code == "upload.schema_mismatch"
    assert "'model'" in exc.value.message and "expected type string, got int64" in exc.value.message
    assert snapshot(store) == before


def test_null_late_in_file_fails_inside_the_swap_and_rolls_back(store: Store, partners_dir: Path, build: Callable[..., UploadPair]) -> None:
    """The NOT NULL check runs inside the swap transaction, after persons were added and the
    version table was created: the failure must roll all of it back."""
    upload(store, partners_dir, build(rows=100))
    before = snapshot(store)
    table = make_table(get_partner(partners_dir, PARTNER).dataset("leads"), 5000, persons=5000)
    regions = table.column("region").to_pylist()
    regions[4321] = None
    table = table.set_column(table.schema.get_field_index("region"), table.schema.field("region"), pa.array(regions, pa.string()))
    with pytest.raises(CleanroomError) as exc:
        upload(store, partners_dir, build(table=table))
    assert exc.value.code == "upload.schema_mismatch"
    assert exc.value.details == {"path": exc.value.details["path"], "column": "region", "row": 4322}
    assert snapshot(store) == before  # includes the person count: the 5000 new persons were rolled back
    with store.writer() as cur:
        leftovers = cur.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '%__v2'").fetchone()
    assert leftovers == (0,)


def test_bad_hid_names_first_bad_row_not_value(store: Store, partners_dir: Path, build: Callable[..., UploadPair]) -> None:
    table = make_table(get_partner(partners_dir, PARTNER).dataset("leads"), 300)
    hids = table.column("hid").to_pylist()
    hids[250] = hids[250].upper()
    hids[270] = "anna@example.de"
    table = table.set_column(0, table.schema.field("hid"), pa.array(hids))
    with pytest.raises(CleanroomError) as exc:
        upload(store, partners_dir, build(table=table))
    assert exc.value.code == "upload.hid_invalid"
    assert exc.value.details["row"] == 251 and "row 251" in exc.value.message
    assert hids[250] not in exc.value.message
    assert store.active_versions() == {}


def test_row_count_must_match(store: Store, partners_dir: Path, build: Callable[..., UploadPair], uploader_key: Any) -> None:
    pair = build(rows=40)
    old = Manifest.read(pair.manifest)
    old.model_copy(update={"row_count": 41}).signed_by(uploader_key).write(pair.manifest)
    with pytest.raises(CleanroomError) as exc:
        upload(store, partners_dir, pair)
    assert exc.value.code == "upload.manifest_invalid" and "40 rows" in exc.value.message


def test_schema_hash_must_match(store: Store, partners_dir: Path, build: Callable[..., UploadPair], uploader_key: Any) -> None:
    pair = build(rows=40)
    Manifest.read(pair.manifest).model_copy(update={"schema_hash": "0" * 64}).signed_by(uploader_key).write(pair.manifest)
    with pytest.raises(CleanroomError) as exc:
        upload(store, partners_dir, pair)
    assert exc.value.code == "upload.schema_mismatch" and "schema_hash" in exc.value.message


def test_manifest_for_another_partner_or_dataset(store: Store, partners_dir: Path, build: Callable[..., UploadPair], uploader_key: Any) -> None:
    pair = build(rows=10)
    with pytest.raises(CleanroomError) as exc:
        ingest_upload(store, partners_dir, "lakeside-autos", pair.arrow, pair.manifest, actor="t")
    assert exc.value.code == "upload.manifest_invalid" and "lakeside-autos" in exc.value.message
    Manifest.read(pair.manifest).model_copy(update={"dataset": "contracts"}).signed_by(uploader_key).write(pair.manifest)
    with pytest.raises(CleanroomError) as exc:
        upload(store, partners_dir, pair)
    assert exc.value.code == "upload.manifest_invalid" and "'contracts' is not declared" in exc.value.message


def test_garbage_manifest_and_missing_file(store: Store, partners_dir: Path, build: Callable[..., UploadPair]) -> None:
    pair = build(rows=10)
    pair.arrow.unlink()
    with pytest.raises(CleanroomError) as exc:
        upload(store, partners_dir, pair)
    assert exc.value.code == "upload.file_invalid" and "not found" in exc.value.message
    pair.manifest.write_text("{not json")
    with pytest.raises(CleanroomError) as exc:
        upload(store, partners_dir, pair)
    assert exc.value.code == "upload.manifest_invalid"


def test_too_large(store: Store, partners_dir: Path, build: Callable[..., UploadPair]) -> None:
    pair = build(rows=10)
    with pytest.raises(CleanroomError) as exc:
        ingest_upload(store, partners_dir, PARTNER, pair.arrow, pair.manifest, actor="t", max_bytes=100)
    assert exc.value.code == "upload.too_large"


def test_private_column_is_stored_but_not_in_views(store: Store, partners_dir: Path, build: Callable[..., UploadPair]) -> None:
    upload(store, partners_dir, build("sales", rows=30))
    with store.reader({"sales": f"{PARTNER}.sales"}) as cur:
        columns = [d[0] for d in cur.execute("SELECT * FROM sales LIMIT 0").description]
    assert "salesperson" not in columns and {"pid", "price_eur", "dealer_id"} <= set(columns)
    with store.writer() as cur:
        stored = cur.execute("SELECT count(salesperson) FROM store.main.ds_northside_dealers__sales__v1").fetchone()
    assert stored == (30,)


def test_nullable_timestamps_survive(store: Store, partners_dir: Path, build: Callable[..., UploadPair]) -> None:
    pair = build("consent", rows=40)
    expected = pc.sum(pc.is_null(pa.ipc.open_file(pair.arrow).read_all().column("revoked_at"))).as_py()
    upload(store, partners_dir, pair)
    with store.reader({"c": f"{PARTNER}.consent"}) as cur:
        assert cur.execute("SELECT count(*) - count(revoked_at) FROM c").fetchone() == (expected,)


def test_upload_for_other_partner_directory(store: Store, partners_dir: Path, tmp_path: Path) -> None:
    """Each partner's uploads verify against its own key only."""
    key = new_signing_key()
    from cleanroom.crypto import public_key_text
    from cleanroom.partners import set_public_key

    set_public_key(partners_dir, "aurora-financial", "uploader", public_key_text(key))
    dataset = get_partner(partners_dir, "aurora-financial").dataset("contracts")
    pair = write_upload(tmp_path / "af", "aurora-financial", "contracts", dataset, make_table(dataset, 25), key)
    result = ingest_upload(store, partners_dir, "aurora-financial", pair.arrow, pair.manifest, actor="t")
    assert (result.dataset, result.rows) == ("contracts", 25)
