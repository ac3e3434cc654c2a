"""``POST /v1/datasets/{name}/uploads``: a partner's uploader hands over one prepared dataset.

The body is ``multipart/form-data`` with two parts: ``arrow`` (the Arrow IPC file) and
``manifest`` (its signed manifest JSON, as a file or a text field). The multipart body is parsed
here, after authentication (FastAPI would parse declared form parameters before running any
dependency), then staged for ``ingest``, which validates it and swaps it in.

Staging cannot outlive the process. Starlette's multipart parser keeps each file part in a
``SpooledTemporaryFile``: in memory up to 1 MiB, then in an unnamed temp file of the system temp
directory (``O_TMPFILE``, 0600). Both parts are then copied into *anonymous* files inside the
store's ``incoming/`` directory (0700): ``O_TMPFILE`` (0600) where the file system supports it,
else a 0600 file unlinked the moment it is created, before a byte is written. An anonymous file
has no name: the kernel frees it when the last descriptor closes, on every exit path, kill -9
included. Ingest needs paths named as the manifest says (its messages and the audit entry name
the partner's file), so a private per-upload directory ``incoming/tmp*/`` (0700) holds two
*symlinks*, ``<manifest.file>`` and ``<stem>.manifest.json``, to ``/proc/self/fd/<n>`` of those
descriptors: they resolve only inside this process and hold no data. The directory is removed on
every exit path; what a crash leaves (at most empty directories with dangling symlinks, or a
named file on a system without ``/proc``) is removed by :func:`sweep_staging` when the gateway
starts, which logs one warning line with the count and bytes. Staging paths never reach a
response or an audit entry (``Services.upload`` strips them from error messages).
"""

from __future__ import annotations

import logging
import os
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
from cleanroom.store.faults import open_anonymous

log = logging.getLogger("cleanroom.gateway")

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
        with _Staging(services.incoming) as staging:
            arrow_path, manifest_file = await _stage(form, staging, principal, dataset, limit)
            return await run_in_threadpool(services.upload, principal, dataset, arrow_path, manifest_file)
    finally:
        await form.close()


async def _stage(form: FormData, staging: _Staging, principal: Principal, dataset: str, limit: int) -> tuple[FsPath, FsPath]:
    """Stage both parts as ``<manifest.file>`` and ``<stem>.manifest.json`` (symlinks to anonymous files)."""
    arrow, manifest_part = _part(form, "arrow"), _part(form, "manifest")
    if not isinstance(arrow, UploadFile):
        raise QueryError("query.invalid", "multipart part 'arrow' must be a file", field="body.arrow")
    data = await _manifest_bytes(manifest_part, limit)
    staged = await run_in_threadpool(staging.put, _STAGED_MANIFEST, lambda out: out.write(data))
    manifest = _check_manifest(Manifest.read(staged), principal, dataset)
    arrow_path = await run_in_threadpool(staging.put, manifest.file, lambda out: _copy(arrow.file, out))
    return arrow_path, staging.rename(staged, manifest_path(arrow_path).name)


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


def _copy(source: IO[bytes], out: IO[bytes]) -> None:
    source.seek(0)
    shutil.copyfileobj(source, out, length=1 << 20)


_PROC_FD = FsPath("/proc/self/fd")


class _Staging:
    """One upload's staging: a 0700 directory of names for anonymous 0600 files (see the module docstring)."""

    def __init__(self, incoming: FsPath) -> None:
        self.incoming = incoming
        self.dir = FsPath(tempfile.mkdtemp(dir=incoming))  # 0700
        self._fds: list[int] = []

    def put(self, name: str, write: Any) -> FsPath:
        """A new file ``name`` in the staging directory, filled by ``write(binary file)``, flushed."""
        path = self.dir / name
        if _PROC_FD.is_dir():
            fd = open_anonymous(self.dir)
            self._fds.append(fd)  # held open until the upload is done: closing it frees the data
            os.symlink(_PROC_FD / str(fd), path)
            fd = os.dup(fd)
        else:  # no /proc (not Linux): a named 0600 file, removed on exit or at the next start
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        with os.fdopen(fd, "wb") as out:
            write(out)
        return path

    def rename(self, path: FsPath, name: str) -> FsPath:
        target = self.dir / name
        path.rename(target)
        return target

    def __enter__(self) -> _Staging:
        return self

    def __exit__(self, *exc: object) -> None:
        for fd in self._fds:
            os.close(fd)
        shutil.rmtree(self.dir, ignore_errors=True)


def sweep_staging(incoming: FsPath) -> tuple[int, int]:
    """At start: remove everything a crashed gateway left in ``incoming``; return (entries, bytes) removed.

    No upload is in flight before the gateway serves, so all of it is garbage. The directory is
    (re)made 0700. One warning line is logged when anything was removed.
    """
    incoming.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(incoming, 0o700)
    count = size = 0
    for entry in incoming.iterdir():
        count += 1
        if entry.is_dir() and not entry.is_symlink():
            size += sum(f.lstat().st_size for f in entry.rglob("*") if not f.is_symlink() and f.is_file())
            shutil.rmtree(entry, ignore_errors=True)
        else:
            size += entry.lstat().st_size if not entry.is_symlink() else 0
            entry.unlink(missing_ok=True)
    if count:
        log.warning("removed %d staging entr%s (%d bytes of data) left in %s by an interrupted upload", count,
                    "y" if count == 1 else "ies", size, incoming)
    return count, size


__all__ = ["ARROW_MEDIA_TYPE", "router", "sweep_staging"]
