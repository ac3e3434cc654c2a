"""``ingest_upload``: validate a signed upload, re-key it with the pepper, publish it atomically.

The same function serves the CLI (``cleanroom upload``) and the gateway's upload endpoint, so an
upload is judged identically whichever way it arrives. Nothing becomes visible except through
``Store.publish``'s single transaction: a rejected or interrupted upload leaves the previous
version active and readable.

Before the file is even read, two guards against a partner's own mistakes (_guards.py): a file
keyed with another salt than the collaboration's is refused (``upload.salt_mismatch``), and so is
an empty file or one far smaller than the active version, unless the manifest allows it
(``upload.shrinks_dataset``).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from pydantic import BaseModel, ConfigDict

from cleanroom.audit import AuditLog
from cleanroom.crypto import Keyer
from cleanroom.errors import CleanroomError, InternalError, UploadError
from cleanroom.ingest import _checks as checks
from cleanroom.ingest import _guards as guards
from cleanroom.manifest import MANIFEST_SUFFIX, Manifest
from cleanroom.partners import Dataset, get_partner
from cleanroom.store import Published, Store, VersionMeta

MAX_UPLOAD_BYTES = 8 << 30  # 8 GiB: far above a year of a large dealer group's rows
DEFAULT_MAX_SHRINK = guards.DEFAULT_MAX_SHRINK

log = logging.getLogger(__name__)


class IngestResult(BaseModel):
    """What an accepted upload became: the new active version and how many persons it added."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    partner: str
    dataset: str
    version: int
    rows: int
    new_persons: int
    seconds: float
    warnings: tuple[str, ...] = ()


class UploadPair(BaseModel):
    """An Arrow file and the manifest that vouches for it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    arrow: Path
    manifest: Path


def ingest_upload(
    store: Store,
    partners_dir: Path,
    partner_id: str,
    arrow_path: Path,
    manifest_path: Path,
    *,
    actor: str,
    audit: AuditLog | None = None,
    max_bytes: int = MAX_UPLOAD_BYTES,
    max_shrink: float = DEFAULT_MAX_SHRINK,
) -> IngestResult:
    """Validate, pepper and publish one upload; audit the outcome either way when ``audit`` is given.

    ``max_shrink``: the largest share of the active version's rows a new version may lose
    without the manifest's ``allow_shrink`` (0.5: a new version with fewer than half the rows
    is refused).
    """
    started = time.perf_counter()
    context: dict[str, Any] = {"partner": partner_id, "file": arrow_path.name}
    limits = _Limits(max_bytes=max_bytes, max_shrink=max_shrink)
    try:
        result = _ingest(store, partners_dir, partner_id, UploadPair(arrow=arrow_path, manifest=manifest_path), actor, limits, context)
    except CleanroomError as exc:
        if audit is not None:
            audit.append("upload.rejected", actor, {**context, "code": exc.code, "message": exc.message})
        raise
    result = result.model_copy(update={"seconds": round(time.perf_counter() - started, 3)})
    if audit is not None:
        details = {"partner": result.partner, "dataset": result.dataset, "version": result.version, "rows": result.rows, "sha256": context["sha256"]}
        details.update(context["guards"])
        audit.append("upload", actor, details)
    return result


class _Limits(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    max_bytes: int
    max_shrink: float


def _ingest(store: Store, partners_dir: Path, partner_id: str, pair: UploadPair, actor: str, limits: _Limits, context: dict[str, Any]) -> IngestResult:
    """The checks in order (see docs/explanation/storage.md), then the one publishing transaction."""
    arrow_path, manifest_path = pair.arrow, pair.manifest
    partner = get_partner(partners_dir, partner_id)
    manifest = checks.read_manifest(manifest_path)
    dataset = checks.check_partner(manifest, partner, manifest_path)
    context.update(dataset=manifest.dataset, sha256=manifest.sha256, nonce=manifest.nonce)
    checks.check_signature(manifest, partner, manifest_path)
    _check_fresh(store, manifest, manifest_path)
    qualified = f"{partner.id}.{manifest.dataset}"
    warnings = _check_guards(store, manifest, qualified, manifest_path, limits.max_shrink, context)
    checks.check_file(arrow_path, manifest, max_bytes=limits.max_bytes)
    table = _validated_table(arrow_path, manifest, dataset, qualified)
    meta = VersionMeta(
        partner=partner.id, dataset=manifest.dataset, sha256=manifest.sha256, nonce=manifest.nonce, uploaded_by=actor,
        hidden_columns=tuple(dataset.columns_tagged("private")),
    )
    with guards.salt_claimed(store, manifest, manifest_path):
        published = _publish(store, table, meta, dataset, arrow_path)
    v = published.version
    return IngestResult(
        partner=v.partner, dataset=v.dataset, version=v.version, rows=v.rows, new_persons=published.new_persons, seconds=0.0, warnings=warnings
    )


def _check_guards(store: Store, manifest: Manifest, qualified: str, path: Path, max_shrink: float, context: dict[str, Any]) -> tuple[str, ...]:
    """The salt and shrink guards, on signed manifest fields only; what they add to the audit goes into ``context``."""
    warning = guards.check_salt_fingerprint(guards.collaboration_fingerprint(store), manifest, path)
    active = store.active_versions().get(qualified)
    guards.check_shrink(active.rows if active else None, manifest, qualified, path, max_shrink=max_shrink)
    added: dict[str, Any] = {}
    if manifest.salt_fingerprint is not None:
        added["salt_fingerprint"] = manifest.salt_fingerprint
    if manifest.allow_shrink:
        added["allow_shrink"] = True
    if warning:
        log.warning("upload %s of %s: %s", manifest.nonce, qualified, warning)
        added["warning"] = warning
    context["guards"] = added
    return (warning,) if warning else ()


def _validated_table(arrow_path: Path, manifest: Manifest, dataset: Dataset, qualified: str) -> pa.Table:
    table = checks.read_arrow(arrow_path)
    checks.check_row_count(table, manifest, arrow_path)
    checks.check_schema(table.schema, dataset, manifest, arrow_path, qualified)
    checks.check_hids(table, arrow_path)
    checks.check_pii(table, arrow_path)
    return table


def _check_fresh(store: Store, manifest: Manifest, path: Path) -> None:
    reason = store.seen(nonce=manifest.nonce, sha256=manifest.sha256)
    if reason == "nonce":
        raise UploadError("upload.replayed", f"{path}: nonce {manifest.nonce} was already used: this manifest was uploaded before", path=str(path))
    if reason == "sha256":
        raise UploadError("upload.replayed", f"{path}: a file with this SHA-256 was already uploaded (an active or past version)", path=str(path))


def _publish(store: Store, table: pa.Table, meta: VersionMeta, dataset: Dataset, path: Path) -> Published:
    """Publish; a NOT NULL violation inside the swap becomes schema_mismatch naming column and row."""
    try:
        return store.publish(table, meta, lambda distinct: pepper_hids(distinct, store.pepper_keyer))
    except duckdb.ConstraintException:
        required = [n for n, c in dataset.columns.items() if not c.nullable]
        found = checks.first_null_row(table, required)
        if found is None:
            raise InternalError("internal.invariant", f"{path}: the store rejected a constraint that the file does not violate") from None
        column, row = found
        raise UploadError("upload.schema_mismatch", f"{path}: row {row}: column {column!r} is null but declared non-nullable", path=str(path), column=column, row=row) from None


def pepper_hids(distinct: pa.Array, keyer: Keyer) -> pa.Array:
    """HMAC each distinct partner hid with the gateway's pepper, in order.

    The partner's hid is already a salted HMAC of an email or phone; keying it again with a
    secret only the gateway holds means neither the partners (who know the salt) nor a thief of
    the store file alone can run a dictionary of emails against the stored ids.
    """
    return pa.array([keyer.hex(h) for h in distinct.to_pylist()], type=pa.string())


def find_uploads(path: Path) -> list[UploadPair]:
    """Uploads in ``path``: every ``*.manifest.json`` of a directory, or one manifest or Arrow file."""
    if path.is_dir():
        manifests = sorted(path.glob(f"*{MANIFEST_SUFFIX}"))
        if not manifests:
            raise UploadError("upload.manifest_invalid", f"{path}: no *{MANIFEST_SUFFIX} files to upload", path=str(path))
    elif path.name.endswith(MANIFEST_SUFFIX):
        manifests = [path]
    else:
        manifests = [path.with_name(path.stem + MANIFEST_SUFFIX)]
    return [UploadPair(arrow=_arrow_beside(m), manifest=m) for m in manifests]


def _arrow_beside(manifest_path: Path) -> Path:
    """The manifest names its Arrow file relative to itself; refuse anything but a plain name."""
    name = checks.read_manifest(manifest_path).file
    if not checks.SAFE_FILE_NAME.match(name):
        raise UploadError("upload.manifest_invalid", f"{manifest_path}: file {name!r} must be a plain file name beside the manifest", path=str(manifest_path), key="file")
    return manifest_path.parent / name
