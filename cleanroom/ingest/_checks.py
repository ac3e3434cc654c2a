"""The validation steps of an upload, in the order ``ingest_upload`` runs them.

Cheap and cryptographic checks come first (manifest, partner, signature, replay, file digest), so
that an unsigned or replayed upload never gets its Arrow file parsed; then the content checks
(readable, row count, schema, hid format, raw PII). Each raises an ``UploadError`` whose message
names the file and the column or row, never a data value (a bad "hid" may be a raw email).
"""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from cleanroom.crypto import sha256_file
from cleanroom.errors import UploadError
from cleanroom.ingest import _pii
from cleanroom.manifest import Manifest
from cleanroom.partners import JOIN_KEY, Dataset, Partner

HID_PATTERN = r"^[0-9a-f]{64}$"
SAFE_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def read_manifest(path: Path) -> Manifest:
    if not path.is_file():
        raise UploadError("upload.manifest_invalid", f"{path}: manifest not found", path=str(path))
    manifest = Manifest.read(path)
    if manifest.format_version != 1:
        raise UploadError("upload.manifest_invalid", f"{path}: format_version {manifest.format_version} is not supported (expected 1)", path=str(path))
    return manifest


def check_partner(manifest: Manifest, partner: Partner, path: Path) -> Dataset:
    """The manifest speaks for this partner and names one of its declared datasets."""
    if manifest.partner != partner.id:
        raise UploadError("upload.manifest_invalid", f"{path}: partner is {manifest.partner!r} but the upload is for {partner.id!r}", path=str(path), key="partner")
    if manifest.dataset not in partner.datasets:
        known = ", ".join(sorted(partner.datasets))
        raise UploadError("upload.manifest_invalid", f"{path}: dataset {manifest.dataset!r} is not declared by {partner.id} (known: {known})", path=str(path), key="dataset")
    return partner.datasets[manifest.dataset]


def check_signature(manifest: Manifest, partner: Partner, path: Path) -> None:
    if not manifest.verify(partner.public_key("uploader")):
        raise UploadError("upload.signature_invalid", f"{path}: signature does not verify against {partner.id}'s uploader key", path=str(path))


def check_file(arrow_path: Path, manifest: Manifest, *, max_bytes: int) -> None:
    """The file exists, is not too large, and is exactly the file the manifest vouches for."""
    if not arrow_path.is_file():
        raise UploadError("upload.file_invalid", f"{arrow_path}: file not found", path=str(arrow_path))
    size = arrow_path.stat().st_size
    if size > max_bytes:
        raise UploadError("upload.too_large", f"{arrow_path}: {size} bytes exceeds the limit of {max_bytes}", path=str(arrow_path))
    if sha256_file(arrow_path) != manifest.sha256:
        raise UploadError("upload.manifest_invalid", f"{arrow_path}: SHA-256 does not match the manifest's sha256 (file changed after signing?)", path=str(arrow_path), key="sha256")


def read_arrow(path: Path) -> pa.Table:
    """Read and fully validate an Arrow IPC file; a truncated or corrupt file is file_invalid."""
    try:
        table = pa.ipc.open_file(pa.memory_map(str(path))).read_all()
        table.validate(full=True)
    except (pa.ArrowException, OSError) as exc:
        raise UploadError("upload.file_invalid", f"{path}: not a readable Arrow IPC file ({exc.__class__.__name__}: {_first_line(exc)})", path=str(path)) from None
    return table


def check_row_count(table: pa.Table, manifest: Manifest, path: Path) -> None:
    if table.num_rows != manifest.row_count:
        raise UploadError("upload.manifest_invalid", f"{path}: file has {table.num_rows} rows, manifest says {manifest.row_count}", path=str(path), key="row_count")


def check_schema(schema: pa.Schema, dataset: Dataset, manifest: Manifest, path: Path, qualified: str) -> None:
    """Same columns, order, types and nullability as declared, and a manifest for this schema."""
    expected = dataset.arrow_schema()
    for name in expected.names:
        if name not in schema.names:
            raise UploadError("upload.schema_mismatch", f"{path}: column {name!r} of {qualified} is missing (expected {expected.field(name).type})", path=str(path), column=name)
    for field in schema:
        if field.name not in expected.names:
            raise UploadError("upload.schema_mismatch", f"{path}: column {field.name!r} is not declared for {qualified}", path=str(path), column=field.name)
        _check_field(field, expected.field(field.name), path)
    if schema.names != expected.names:
        raise UploadError("upload.schema_mismatch", f"{path}: columns are in order {schema.names}, expected {expected.names}", path=str(path))
    if manifest.schema_hash != dataset.schema_hash():
        raise UploadError("upload.schema_mismatch", f"{path}: the manifest's schema_hash is not the current schema of {qualified} (re-run prepare)", path=str(path), key="schema_hash")


def _check_field(actual: pa.Field, expected: pa.Field, path: Path) -> None:
    if actual.type != expected.type:
        raise UploadError("upload.schema_mismatch", f"{path}: column {actual.name!r}: expected type {expected.type}, got {actual.type}", path=str(path), column=actual.name)
    if actual.nullable != expected.nullable:
        raise UploadError(
            "upload.schema_mismatch",
            f"{path}: column {actual.name!r}: declared nullable={expected.nullable}, file says nullable={actual.nullable}",
            path=str(path),
            column=actual.name,
        )


def check_hids(table: pa.Table, path: Path) -> None:
    """Every hid is 64 lower-case hex characters (vectorized); name the first bad row, not its value."""
    ok = pc.fill_null(pc.match_substring_regex(table.column(JOIN_KEY), HID_PATTERN), False)
    if pc.all(ok).as_py() is False:
        row = pc.index(ok, False).as_py()
        raise UploadError("upload.hid_invalid", f"{path}: row {row + 1}: {JOIN_KEY} is not 64 lower-case hex characters (is it keyed?)", path=str(path), row=row + 1)


def check_pii(table: pa.Table, path: Path) -> None:
    for field in table.schema:
        if field.name == JOIN_KEY or field.type != pa.string():
            continue
        found = _pii.detect(_pii.sample_values(table.column(field.name)))
        if found:
            kind, evidence = found
            raise UploadError(
                "upload.raw_pii_detected",
                f"{path}: column {field.name!r} looks like raw {kind} data: {evidence}; drop or key it before upload",
                path=str(path),
                column=field.name,
                kind=kind,
            )


def first_null_row(table: pa.Table, columns: list[str]) -> tuple[str, int] | None:
    """The first non-nullable column holding a null, and its 1-based row."""
    for name in columns:
        col = table.column(name)
        if col.null_count:
            return name, int(pc.index(pc.is_null(col), True).as_py()) + 1
    return None


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else "unreadable"
