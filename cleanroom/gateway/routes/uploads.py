"""``POST /v1/datasets/{name}/uploads``: a partner's uploader hands over one prepared dataset.

The body is ``multipart/form-data`` with two parts: ``arrow`` (the Arrow IPC file) and
``manifest`` (its signed manifest JSON, as a file or a text field). The multipart body is parsed
here, after authentication (FastAPI would parse declared form parameters before running any
dependency), and both parts are staged in a private temp directory inside the store, named as
the manifest says, before ``ingest`` validates and swaps them in. The temp directory is removed
whatever happens.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path as FsPath
from typing import IO, Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from cleanroom.errors import AuthError, QueryError, UploadError
from cleanroom.gateway.auth import Principal
from cleanroom.gateway.deps import ServicesDep, require
from cleanroom.gateway.models import UploadResponse
from cleanroom.gateway.problems import problem_responses
from cleanroom.manifest import Manifest, manifest_path
from cleanroom.partners import NAME_PATTERN

router = APIRouter(prefix="/v1/datasets", tags=["uploads"])

ARROW_MEDIA_TYPE = "application/vnd.apache.arrow.file"
_STAGED_MANIFEST = "received.manifest.json"

_MULTIPART_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["arrow", "manifest"],
                    "properties": {
                        "arrow": {"type": "string", "format": "binary", "description": "The Arrow IPC file written by `cleanroom prepare`."},
                        "manifest": {"type": "string", "format": "binary", "description": "Its manifest (<stem>.manifest.json), signed by the uploader key."},
                    },
                }
            }
        },
    }
}


@router.post(
    "/{dataset}/uploads",
    response_model=UploadResponse,
    status_code=201,
    summary="Upload a new version of one of the caller's partner's datasets",
    openapi_extra=_MULTIPART_BODY,
    responses=problem_responses(400, 401, 403, 404, 409, 413),
)
async def create_upload(
    request: Request,
    dataset: Annotated[str, Path(pattern=NAME_PATTERN, examples=["sales"])],
    principal: Annotated[Principal, Depends(require("uploader"))],
    services: ServicesDep,
) -> UploadResponse:
    """Validated (signature, manifest, replay, schema, hid format, PII sniffing) before it becomes
    visible; a rejected upload leaves the previous version intact."""
    services.partners[principal.partner].dataset(dataset)
    limit = services.config.limits.max_manifest_bytes
    form = await request.form(max_files=2, max_fields=1, max_part_size=limit)
    try:
        with tempfile.TemporaryDirectory(dir=services.incoming) as tmp:
            arrow_path, manifest_file = await _stage(form, FsPath(tmp), principal, dataset, limit)
            return await run_in_threadpool(services.upload, principal, dataset, arrow_path, manifest_file)
    finally:
        await form.close()


async def _stage(form: FormData, tmp: FsPath, principal: Principal, dataset: str, limit: int) -> tuple[FsPath, FsPath]:
    """Write both parts into ``tmp`` as ``<manifest.file>`` and ``<stem>.manifest.json``."""
    arrow, manifest_part = _part(form, "arrow"), _part(form, "manifest")
    if not isinstance(arrow, UploadFile):
        raise QueryError("query.invalid", "multipart part 'arrow' must be a file", field="body.arrow")
    staged = tmp / _STAGED_MANIFEST
    staged.write_bytes(await _manifest_bytes(manifest_part, limit))
    manifest = _check_manifest(Manifest.read(staged), principal, dataset)
    arrow_path = tmp / manifest.file
    await run_in_threadpool(_copy, arrow.file, arrow_path)
    return arrow_path, staged.rename(manifest_path(arrow_path))


def _part(form: FormData, name: str) -> UploadFile | str:
    value = form.get(name)
    if value is None:
        raise QueryError("query.invalid", f"multipart part {name!r} is missing (send 'arrow' and 'manifest')", field=f"body.{name}")
    return value


async def _manifest_bytes(part: UploadFile | str, limit: int) -> bytes:
    if isinstance(part, str):
        return part.encode()
    data = await part.read(limit + 1)
    if len(data) > limit:
        raise UploadError("upload.too_large", f"the manifest part exceeds {limit} bytes", limit=limit)
    return data


def _check_manifest(manifest: Manifest, principal: Principal, dataset: str) -> Manifest:
    """The manifest must speak for the caller's partner and this dataset, and name a plain file."""
    if manifest.partner != principal.partner:
        raise AuthError(
            "auth.forbidden",
            f"the manifest is for partner {manifest.partner!r} but the API key belongs to {principal.partner!r}",
            manifest_partner=manifest.partner,
        )
    if manifest.dataset != dataset:
        raise UploadError("upload.manifest_invalid", f"manifest.dataset is {manifest.dataset!r} but the upload URL names {dataset!r}", key="dataset")
    name = manifest.file
    if name in ("", ".", "..") or FsPath(name).name != name or name == _STAGED_MANIFEST or "\\" in name:
        raise UploadError("upload.manifest_invalid", f"manifest.file {name!r} must be a plain file name", key="file")
    return manifest


def _copy(source: IO[bytes], dest: FsPath) -> None:
    source.seek(0)
    with dest.open("xb") as out:
        shutil.copyfileobj(source, out, length=1 << 20)


__all__ = ["ARROW_MEDIA_TYPE", "router"]
