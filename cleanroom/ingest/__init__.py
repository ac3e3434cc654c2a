"""Validated ingest: signed manifest, replay, digest, schema, hid format and PII checks, pepper.

Nothing an upload contains becomes visible except through the store's atomic swap. See
docs/explanation/storage.md for what happens to the data once it is accepted.
"""

from __future__ import annotations

from cleanroom.ingest._upload import MAX_UPLOAD_BYTES, IngestResult, UploadPair, find_uploads, ingest_upload, pepper_hids

__all__ = ["MAX_UPLOAD_BYTES", "IngestResult", "UploadPair", "find_uploads", "ingest_upload", "pepper_hids"]
