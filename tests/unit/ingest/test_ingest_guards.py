"""The upload guards against a partner's own mistakes, on a real encrypted store: a file keyed with
another salt, an empty file and a far smaller new version are refused and change nothing; the
partner's signed ``allow_shrink`` lets an intended shrink through, and nobody else can set it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from _uploads import FINGERPRINT, PARTNER, make_table, write_upload

from cleanroom import crypto
from cleanroom.audit import AuditLog
from cleanroom.crypto import new_signing_key, public_key_text
from cleanroom.errors import CleanroomError
from cleanroom.ingest import UploadPair, ingest_upload
from cleanroom.ingest._guards import SALT_RECORD_FILE, check_salt_fingerprint, collaboration_fingerprint
from cleanroom.manifest import Manifest
from cleanroom.partners import get_partner, set_public_key
from cleanroom.prepare import salt_fingerprint
from cleanroom.store import Store

LEADS = f"{PARTNER}.leads"
OTHER_SALT_FINGERPRINT = salt_fingerprint(bytes(range(1, 33)))
Build = Callable[..., UploadPair]


def upload(store: Store, partners_dir: Path, pair: UploadPair, audit: AuditLog | None = None, partner: str = PARTNER) -> Any:
    return ingest_upload(store, partners_dir, partner, pair.arrow, pair.manifest, actor="test", audit=audit)


def snapshot(store: Store) -> tuple[Any, ...]:
    """What a refused upload must leave as it was: versions, the leads rows, persons, the salt record."""
    with store.reader({"leads": LEADS}) as cur:
        rows = cur.execute("SELECT * FROM leads ORDER BY ALL").fetchall()
    return store.active_versions(), rows, store.person_count(), collaboration_fingerprint(store)


def refused(store: Store, partners_dir: Path, pair: UploadPair, code: str, tmp_path: Path) -> CleanroomError:
    """Upload ``pair``, expect ``code``, check nothing changed and the refusal is audited."""
    before = snapshot(store)
    audit = AuditLog(tmp_path / "audit.jsonl")
    with pytest.raises(CleanroomError) as exc:
        upload(store, partners_dir, pair, audit)
    assert exc.value.code == code, exc.value.message
    assert snapshot(store) == before
    assert [(e.event, e.details["code"]) for e in audit.entries()] == [("upload.rejected", code)]
    return exc.value


# --- salt fingerprint ------------------------------------------------------------------------------


def test_first_accepted_upload_sets_the_collaboration_fingerprint(store: Store, partners_dir: Path, build: Build) -> None:
    assert collaboration_fingerprint(store) is None
    upload(store, partners_dir, build(rows=100))
    assert collaboration_fingerprint(store) == FINGERPRINT
    record = json.loads((store.directory / SALT_RECORD_FILE).read_text())
    assert record["store_id"] == store.store_id and record["first_upload"]["partner"] == PARTNER
    assert "salt" not in record  # only the fingerprint, never a secret


def test_wrong_salt_upload_is_refused_and_changes_nothing(store: Store, partners_dir: Path, build: Build, tmp_path: Path) -> None:
    upload(store, partners_dir, build(rows=100))
    exc = refused(store, partners_dir, build(rows=100, fingerprint=OTHER_SALT_FINGERPRINT), "upload.salt_mismatch", tmp_path)
    assert exc.status == 400
    assert OTHER_SALT_FINGERPRINT[:6] in exc.message and FINGERPRINT[:6] in exc.message
    assert OTHER_SALT_FINGERPRINT not in exc.message  # six characters suffice to tell them apart
    assert exc.details["fingerprint"] == OTHER_SALT_FINGERPRINT[:6] and exc.details["expected"] == FINGERPRINT[:6]


def test_the_fingerprint_binds_every_partner(store: Store, partners_dir: Path, build: Build, tmp_path: Path) -> None:
    """Set by northside's first upload, it refuses lakeside's file keyed with another salt and accepts one with the same."""
    upload(store, partners_dir, build(rows=100))
    key = new_signing_key()
    set_public_key(partners_dir, "lakeside-autos", "uploader", public_key_text(key))
    dataset = get_partner(partners_dir, "lakeside-autos").dataset("leads")
    wrong = write_upload(tmp_path / "lake1", "lakeside-autos", "leads", dataset, make_table(dataset, 40), key, fingerprint=OTHER_SALT_FINGERPRINT)
    with pytest.raises(CleanroomError) as exc:
        upload(store, partners_dir, wrong, partner="lakeside-autos")
    assert exc.value.code == "upload.salt_mismatch"
    assert "lakeside-autos.leads" not in store.active_versions()
    right = write_upload(tmp_path / "lake2", "lakeside-autos", "leads", dataset, make_table(dataset, 40), key)
    assert upload(store, partners_dir, right, partner="lakeside-autos").version == 1


def test_a_fingerprint_is_recorded_only_by_an_accepted_upload(store: Store, partners_dir: Path, build: Build) -> None:
    """An upload refused inside the publishing transaction (a late null) does not claim the collaboration's salt."""
    table = make_table(get_partner(partners_dir, PARTNER).dataset("leads"), 500, persons=500)
    regions = table.column("region").to_pylist()
    regions[432] = None
    table = table.set_column(table.schema.get_field_index("region"), table.schema.field("region"), pa.array(regions, pa.string()))
    with pytest.raises(CleanroomError) as exc:
        upload(store, partners_dir, build(table=table, fingerprint=OTHER_SALT_FINGERPRINT))
    assert exc.value.code == "upload.schema_mismatch"
    assert collaboration_fingerprint(store) is None and not (store.directory / SALT_RECORD_FILE).exists()
    upload(store, partners_dir, build(rows=100))
    assert collaboration_fingerprint(store) == FINGERPRINT


def test_manifest_without_fingerprint_is_accepted_with_a_warning(store: Store, partners_dir: Path, build: Build, tmp_path: Path) -> None:
    """Written by a prepare older than the field: accepted, warned about in the result and the audit, and sets nothing."""
    audit = AuditLog(tmp_path / "audit.jsonl")
    pair = build(rows=100, fingerprint=None)
    assert "salt_fingerprint" not in json.loads(pair.manifest.read_text())
    result = upload(store, partners_dir, pair, audit)
    assert result.version == 1 and len(result.warnings) == 1 and "salt_fingerprint" in result.warnings[0]
    [entry] = list(audit.entries())
    assert entry.event == "upload" and "salt was not checked" in entry.details["warning"]
    assert collaboration_fingerprint(store) is None
    upload(store, partners_dir, build(rows=100))
    assert collaboration_fingerprint(store) == FINGERPRINT
    assert upload(store, partners_dir, build(rows=100, fingerprint=None)).version == 3  # still accepted, still warned


def test_a_record_of_another_store_is_ignored(store: Store, partners_dir: Path, build: Build) -> None:
    """A store re-created in the same folder gets a new id: the old collaboration's fingerprint does not bind it."""
    (store.directory / SALT_RECORD_FILE).write_text(json.dumps({"store_id": "gone", "salt_fingerprint": OTHER_SALT_FINGERPRINT}))
    assert collaboration_fingerprint(store) is None
    upload(store, partners_dir, build(rows=100))
    assert collaboration_fingerprint(store) == FINGERPRINT


def test_check_salt_fingerprint_is_pure(build: Build) -> None:
    manifest = Manifest.read(build(rows=10).manifest)
    assert check_salt_fingerprint(None, manifest, Path("m")) is None
    assert check_salt_fingerprint(FINGERPRINT, manifest, Path("m")) is None
    with pytest.raises(CleanroomError) as exc:
        check_salt_fingerprint(OTHER_SALT_FINGERPRINT, manifest, Path("m"))
    assert exc.value.code == "upload.salt_mismatch"


# --- shrink guard ----------------------------------------------------------------------------------


def test_empty_upload_is_refused(store: Store, partners_dir: Path, build: Build, tmp_path: Path) -> None:
    upload(store, partners_dir, build(rows=100))
    exc = refused(store, partners_dir, build(rows=0), "upload.shrinks_dataset", tmp_path)
    assert exc.status == 409 and LEADS in exc.message and "0 rows" in exc.message and "100 rows" in exc.message
    assert "--allow-shrink" in exc.message
    assert {k: exc.details[k] for k in ("dataset", "old_rows", "new_rows")} == {"dataset": LEADS, "old_rows": 100, "new_rows": 0}


def test_empty_first_upload_is_refused(store: Store, partners_dir: Path, build: Build) -> None:
    with pytest.raises(CleanroomError) as exc:
        upload(store, partners_dir, build(rows=0))
    assert exc.value.code == "upload.shrinks_dataset" and "nothing was uploaded before" in exc.value.message
    assert store.active_versions() == {} and collaboration_fingerprint(store) is None


def test_sixty_percent_shrink_is_refused(store: Store, partners_dir: Path, build: Build, tmp_path: Path) -> None:
    upload(store, partners_dir, build(rows=1000))
    exc = refused(store, partners_dir, build(rows=400), "upload.shrinks_dataset", tmp_path)
    assert f"{LEADS} would shrink from 1,000 to 400 rows (60% fewer" in exc.message
    assert exc.details["old_rows"] == 1000 and exc.details["new_rows"] == 400


def test_a_shrink_up_to_half_is_accepted(store: Store, partners_dir: Path, build: Build) -> None:
    upload(store, partners_dir, build(rows=1000))
    assert upload(store, partners_dir, build(rows=500)).rows == 500
    assert upload(store, partners_dir, build(rows=5000)).rows == 5000  # growing is never guarded


def test_max_shrink_is_configurable(store: Store, partners_dir: Path, build: Build) -> None:
    upload(store, partners_dir, build(rows=1000))
    pair = build(rows=850)
    with pytest.raises(CleanroomError) as exc:
        ingest_upload(store, partners_dir, PARTNER, pair.arrow, pair.manifest, actor="test", max_shrink=0.1)
    assert exc.value.code == "upload.shrinks_dataset"
    assert ingest_upload(store, partners_dir, PARTNER, pair.arrow, pair.manifest, actor="test", max_shrink=0.2).rows == 850


def test_allow_shrink_lets_an_intended_shrink_through(store: Store, partners_dir: Path, build: Build, tmp_path: Path) -> None:
    upload(store, partners_dir, build(rows=1000))
    audit = AuditLog(tmp_path / "audit.jsonl")
    result = upload(store, partners_dir, build(rows=400, allow_shrink=True), audit)
    assert (result.version, result.rows) == (2, 400)
    [entry] = list(audit.entries())
    assert entry.details["allow_shrink"] is True
    assert upload(store, partners_dir, build(rows=0, allow_shrink=True)).rows == 0  # even to empty, when signed so
    assert store.active_versions()[LEADS].rows == 0


def test_allow_shrink_cannot_be_added_by_anyone_but_the_uploader(store: Store, partners_dir: Path, build: Build, tmp_path: Path) -> None:
    """``allow_shrink`` is signed: setting it in the file afterwards breaks the signature."""
    upload(store, partners_dir, build(rows=1000))
    pair = build(rows=400)
    doc = json.loads(pair.manifest.read_text())
    doc["allow_shrink"] = True
    pair.manifest.write_text(json.dumps(doc))
    refused(store, partners_dir, pair, "upload.signature_invalid", tmp_path)


def test_manifests_signed_before_the_new_fields_still_verify(build: Build, uploader_key: Any) -> None:
    """The new fields are left out of the signed bytes while absent: an old manifest's signature holds."""
    manifest = Manifest.read(build(rows=10, fingerprint=None).manifest)
    old_style = manifest.model_dump(mode="json", exclude={"signature", "salt_fingerprint", "allow_shrink"})
    signature = crypto.sign(uploader_key, crypto.canonical_json(old_style))
    old = Manifest.model_validate({**old_style, "signature": signature})
    assert old.verify(uploader_key.public_key())
    assert manifest.model_copy(update={"allow_shrink": True}).verify(uploader_key.public_key()) is False
