"""``Client``: the typed HTTP client of the gateway API, on httpx.

It imports nothing from the server side (only ``cleanroom.errors``, its own models and httpx), so
it installs and runs on a machine that holds no data and no secrets. Every failure comes back as
the ``cleanroom.errors`` exception the server raised (see ``_errors``); a gateway that cannot be
reached is a ``config.invalid`` naming the URL, and a timeout is ``query.timeout``.

:meth:`Client.upload` streams the Arrow file (never read into memory), can report progress, and
retries on connection errors and 502/503/504 when asked to: safe, because the gateway answers the
same signed manifest again with the version it already accepted (``replayed``) instead of
refusing it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from cleanroom.client._errors import error_from_response
from cleanroom.client._models import AuditPage, Budget, DatasetVersions, Explanation, Health, Policy, QueryResult, ReportPlan, Rollback, UploadReceipt
from cleanroom.errors import ConfigError, InternalError, QueryError

M = TypeVar("M", bound=BaseModel)

ARROW_MEDIA_TYPE = "application/vnd.apache.arrow.file"
RETRY_STATUSES = frozenset({502, 503, 504})
MAX_BACKOFF_S = 30.0

# progress(bytes_sent_of_the_arrow_file, its_size); called again from 0 when an attempt is retried
Progress = Callable[[int, int], None]
# on_retry(attempt_that_failed, why, seconds_until_the_next_one)
OnRetry = Callable[[int, str, float], None]


class Client:
    """A connection to one gateway with one API key. Use as a context manager, or call :meth:`close`."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 60, transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json, application/problem+json"},
            timeout=timeout,
            transport=transport,
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def __repr__(self) -> str:
        return f"Client({self.base_url!r}, api_key=***)"

    # --- endpoints ----------------------------------------------------------------------------

    def query(self, collaboration: str, template: str, params: dict[str, Any] | None = None, epsilon: float = 0.5) -> QueryResult:
        """Run a template; spends ``epsilon`` unless an identical query was answered before."""
        body = {"collaboration": collaboration, "template": template, "params": params or {}, "epsilon": epsilon}
        return self._call(QueryResult, "POST", "/v1/queries", json=body)

    def explain(self, collaboration: str, template: str | None, params: dict[str, Any] | None = None, epsilon: float = 0.5, *,
                sql: str | None = None, target_ci95: float | None = None) -> Explanation:
        """What a query would read and how accurate it would be at ``epsilon``; free (nothing charged, no data read)."""
        body: dict[str, Any] = {"collaboration": collaboration, "epsilon": epsilon}
        body.update({"sql": sql} if sql is not None else {"template": template, "params": params or {}})
        if target_ci95 is not None:
            body["target_ci95"] = target_ci95
        return self._call(Explanation, "POST", "/v1/queries/explain", json=body)

    def sql(self, collaboration: str, sql: str, epsilon: float) -> QueryResult:
        """Run one restricted-SQL aggregate (where the policy allows restricted SQL)."""
        return self._call(QueryResult, "POST", "/v1/queries", json={"collaboration": collaboration, "sql": sql, "epsilon": epsilon})

    def get_query(self, query_id: str) -> QueryResult:
        return self._call(QueryResult, "GET", f"/v1/queries/{_segment(query_id)}")

    def budget(self, collaboration: str) -> Budget:
        return self._call(Budget, "GET", "/v1/budget", params={"collaboration": collaboration})

    def upload(self, dataset: str, arrow_path: Path, manifest_path: Path, *, retries: int = 0, backoff_s: float = 1.0,
               progress: Progress | None = None, on_retry: OnRetry | None = None) -> UploadReceipt:
        """Upload one prepared file and its signed manifest (as written by ``cleanroom prepare``).

        The file is streamed. With ``retries``, a connection error, a timeout or a 502/503/504 is
        retried after ``backoff_s``, doubling (at most 30 s; a ``Retry-After`` is honoured). A retry
        of an upload the gateway did accept comes back ``replayed`` with the same version.
        """
        path = f"/v1/datasets/{_segment(dataset)}/uploads"
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._post_files(path, Path(arrow_path), Path(manifest_path), progress)
            except httpx.TransportError as exc:
                if attempt > retries:
                    raise self._transport_error(exc, "POST", path) from exc
                why = f"{exc.__class__.__name__}: {exc}" if str(exc) else exc.__class__.__name__
                delay = _backoff(backoff_s, attempt, None)
            else:
                if response.status_code not in RETRY_STATUSES or attempt > retries:
                    return self._parse(UploadReceipt, response, "POST", path)
                why, delay = f"HTTP {response.status_code}", _backoff(backoff_s, attempt, response.headers.get("retry-after"))
            if on_retry is not None:
                on_retry(attempt, why, delay)
            time.sleep(delay)

    def _post_files(self, path: str, arrow_path: Path, manifest_path: Path, progress: Progress | None) -> httpx.Response:
        with arrow_path.open("rb") as arrow, manifest_path.open("rb") as manifest:
            body: IO[bytes] = arrow if progress is None else _Reader(arrow, arrow_path.stat().st_size, progress)
            files = {
                "arrow": (arrow_path.name, body, ARROW_MEDIA_TYPE),
                "manifest": (manifest_path.name, manifest, "application/json"),
            }
            return self._http.request("POST", path, files=files)

    def dataset_versions(self, partner: str, dataset: str) -> DatasetVersions:
        """Every version of one of the key's partner's datasets, and which is active (compliance keys)."""
        return self._call(DatasetVersions, "GET", f"/v1/datasets/{_segment(partner)}/{_segment(dataset)}/versions")

    def rollback(self, partner: str, dataset: str, version: int) -> Rollback:
        """Make an earlier, retained version of one of the key's partner's datasets active again (compliance keys; audited)."""
        return self._call(Rollback, "POST", f"/v1/datasets/{_segment(partner)}/{_segment(dataset)}/rollback", json={"version": version})

    def policy(self, collaboration: str) -> Policy:
        return self._call(Policy, "GET", f"/v1/policies/{_segment(collaboration)}")

    def audit(self, *, after: int | None = None, limit: int = 100) -> AuditPage:
        """One page of the audit entries visible to the key's partner (compliance keys only)."""
        params: dict[str, int] = {"limit": limit} if after is None else {"limit": limit, "after": after}
        return self._call(AuditPage, "GET", "/v1/audit", params=params)

    def report_plan(self, collaboration: str, month: str) -> ReportPlan:
        """A month's report plan: sections, recipients and data freshness (report keys; no charge)."""
        return self._call(ReportPlan, "GET", f"/v1/reports/{_segment(collaboration)}/{_segment(month)}")

    def report_section(self, collaboration: str, month: str, section: str) -> QueryResult:
        """Release one section of a complete month's report, or get its stored release back (report keys)."""
        return self._call(QueryResult, "POST", f"/v1/reports/{_segment(collaboration)}/{_segment(month)}/sections/{_segment(section)}")

    def health(self) -> Health:
        return self._call(Health, "GET", "/healthz")

    # --- plumbing -----------------------------------------------------------------------------

    def _call(self, model: type[M], method: str, path: str, **kwargs: Any) -> M:
        return self._parse(model, self._send(method, path, **kwargs), method, path)

    def _parse(self, model: type[M], response: httpx.Response, method: str, path: str) -> M:
        if response.is_error:
            raise error_from_response(response)
        try:
            return model.model_validate_json(response.content)
        except ValueError as exc:
            raise InternalError("internal.invariant", f"{method} {path}: the gateway's answer does not match {model.__name__}") from exc

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise self._transport_error(exc, method, path) from exc

    def _transport_error(self, exc: httpx.TransportError, method: str, path: str) -> QueryError | ConfigError:
        if isinstance(exc, httpx.TimeoutException):
            return QueryError("query.timeout", f"{method} {self.base_url}{path}: no answer within the client timeout")
        return ConfigError("config.invalid", f"cannot reach the gateway at {self.base_url} ({exc}); is `cleanroom serve` running?", url=self.base_url)


def _backoff(base_s: float, attempt: int, retry_after: str | None) -> float:
    """Seconds before the next attempt: the server's Retry-After when it gave one, else ``base_s`` doubling per attempt."""
    if retry_after is not None and retry_after.strip().isdigit():
        return min(float(retry_after.strip()), MAX_BACKOFF_S)
    return min(base_s * 2 ** (attempt - 1), MAX_BACKOFF_S)


class _Reader:
    """A binary file that reports how far it has been read (httpx streams multipart files in 64 KiB reads)."""

    def __init__(self, fh: IO[bytes], size: int, progress: Progress) -> None:
        self._fh, self._size, self._progress = fh, size, progress
        self.name = fh.name

    def read(self, n: int = -1) -> bytes:
        chunk = self._fh.read(n)
        self._progress(self._fh.tell(), self._size)
        return chunk

    def seek(self, offset: int, whence: int = 0) -> int:
        position = self._fh.seek(offset, whence)
        self._progress(position, self._size)
        return position

    def tell(self) -> int:
        return self._fh.tell()

    def fileno(self) -> int:
        return self._fh.fileno()


def _segment(value: str) -> str:
    """Quote one path segment so an id can never change the route it is sent to."""
    return quote(value, safe="")


__all__ = ["Client"]
