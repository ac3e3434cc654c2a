"""``ingest_upload``: validate a signed upload, re-key it with the pepper, publish it atomically.

The same function serves the operator's CLI (``cleanroom admin ingest``) and the gateway's upload
endpoint (which ``cleanroom upload --gateway`` calls), so an upload is judged identically whichever
way it arrives. Nothing becomes visible except through
``Store.publish``'s single transaction: a rejected or interrupted upload leaves the previous
version active and readable.

Before the file is even read, two guards against a partner's own mistakes (_guards.py): a file
keyed with another salt than the collaboration's is refused (``upload.salt_mismatch``), and so is
an empty file or one far smaller than the active version, unless the manifest allows it
(``upload.shrinks_dataset``).

Replays are judged per partner and dataset. The very same signed upload again (same nonce, same
SHA-256) is idempotent, which makes retries safe: when its version is the active one nothing
changes (``replayed``); when it is an older version, that version is made active again (a
rollback, audited as ``dataset.rollback``). A nonce reused for other bytes, or the same bytes
under a new nonce, is ``upload.replayed``.
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
from cleanroom.store import Published, Seen, Store, VersionMeta, replay_message

MAX_UPLOAD_BYTES = 8 << 30  # 8 GiB: far above a year of a large dealer group's rows
DEFAULT_MAX_SHRINK = guards.DEFAULT_MAX_SHRINK

log = logging.getLogger(__name__)


class IngestResult(BaseModel):
    """What an accepted upload became: the active version and how many persons it added.

    ``replayed``: this very manifest had been accepted before, so nothing new was stored and
    ``version`` is that earlier version, active now. ``rolled_back_from``: the version that was
    active before, when the re-upload made an older version active again (a rollback).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    partner: str
    dataset: str
    version: int
    rows: int
    new_persons: int
    seconds: float
    warnings: tuple[str, ...] = ()
    sha256: str = ""
    replayed: bool = False
    rolled_back_from: int | None = None


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
        _audit_accepted(audit, actor, result, context)
    return result


def _audit_accepted(audit: AuditLog, actor: str, result: IngestResult, context: dict[str, Any]) -> None:
    """``upload`` for a new version, ``dataset.rollback`` when a re-upload made an older one active, ``upload.idempotent`` otherwise."""
    details: dict[str, Any] = {"partner": result.partner, "dataset": result.dataset}
    if result.rolled_back_from is not None:
        audit.append("dataset.rollback", actor, {**details, "from_version": result.rolled_back_from, "to_version": result.version,
                                                 "via": "upload", "sha256": context["sha256"]})
    elif result.replayed:
        audit.append("upload.idempotent", actor, {**details, "version": result.version, "sha256": context["sha256"]})
    else:
        audit.append("upload", actor, {**details, "version": result.version, "rows": result.rows, "sha256": context["sha256"], **context["guards"]})


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
    seen = _check_fresh(store, partner.id, manifest, manifest_path)
    qualified = f"{partner.id}.{manifest.dataset}"
    meta = VersionMeta(
        partner=partner.id, dataset=manifest.dataset, sha256=manifest.sha256, nonce=manifest.nonce, uploaded_by=actor,
        hidden_columns=tuple(dataset.columns_tagged("private")),
    )
    if seen is not None and (seen.active or seen.retained):
        # the same signed upload again, its rows still stored: check the bytes are the signed ones, then no data is read
        context["guards"] = {}
        checks.check_file(arrow_path, manifest, max_bytes=limits.max_bytes)
        return _result(store.reactivate(meta), ())
    # a re-upload whose rows were dropped passed the shrink guard when it was first accepted: it is rebuilt, not judged again
    warnings = _check_guards(store, manifest, qualified, manifest_path, limits.max_shrink if seen is None else 1.0, context)
    checks.check_file(arrow_path, manifest, max_bytes=limits.max_bytes)
    table = _validated_table(arrow_path, manifest, dataset, qualified)
    with guards.salt_claimed(store, manifest, manifest_path):
        published = _publish(store, table, meta, dataset, arrow_path)
    return _result(published, warnings)


def _result(published: Published, warnings: tuple[str, ...]) -> IngestResult:
    v = published.version
    return IngestResult(
        partner=v.partner, dataset=v.dataset, version=v.version, rows=v.rows, new_persons=published.new_persons, seconds=0.0, warnings=warnings,
        sha256=v.sha256, replayed=published.replayed, rolled_back_from=published.rolled_back_from,
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


def _check_fresh(store: Store, partner: str, manifest: Manifest, path: Path) -> Seen | None:
    """None for a fresh upload; the earlier version for the same signed upload again; ``upload.replayed`` otherwise.

    Only this partner's versions of this dataset are compared, and the message names only them.
    """
    seen = store.seen(partner=partner, dataset=manifest.dataset, nonce=manifest.nonce, sha256=manifest.sha256)
    if seen is not None and seen.reason != "manifest":
        raise UploadError("upload.replayed", f"{path}: {replay_message(seen, partner, manifest.dataset)}", path=str(path), reason=seen.reason)
    return seen


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
