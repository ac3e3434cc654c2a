"""``Client``: the typed HTTP client of the gateway API, on httpx.

It imports nothing from the server side (only ``cleanroom.errors``, its own models and httpx), so
it installs and runs on a machine that holds no data and no secrets. Every failure comes back as
the ``cleanroom.errors`` exception the server raised (see ``_errors``); a gateway that cannot be
reached is a ``config.invalid`` naming the URL, and a timeout is ``query.timeout``.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from cleanroom.client._errors import error_from_response
from cleanroom.client._models import AuditPage, Budget, Explanation, Health, Policy, QueryResult, ReportPlan, UploadReceipt
from cleanroom.errors import ConfigError, InternalError, QueryError

M = TypeVar("M", bound=BaseModel)

ARROW_MEDIA_TYPE = "application/vnd.apache.arrow.file"


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

    def upload(self, dataset: str, arrow_path: Path, manifest_path: Path) -> UploadReceipt:
        """Upload one prepared file and its signed manifest (as written by ``cleanroom prepare``)."""
        with Path(arrow_path).open("rb") as arrow, Path(manifest_path).open("rb") as manifest:
            files = {
                "arrow": (Path(arrow_path).name, arrow, ARROW_MEDIA_TYPE),
                "manifest": (Path(manifest_path).name, manifest, "application/json"),
            }
            return self._call(UploadReceipt, "POST", f"/v1/datasets/{_segment(dataset)}/uploads", files=files)

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
        response = self._send(method, path, **kwargs)
        if response.is_error:
            raise error_from_response(response)
        try:
            return model.model_validate_json(response.content)
        except ValueError as exc:
            raise InternalError("internal.invariant", f"{method} {path}: the gateway's answer does not match {model.__name__}") from exc

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise QueryError("query.timeout", f"{method} {self.base_url}{path}: no answer within the client timeout") from exc
        except httpx.TransportError as exc:
            raise ConfigError("config.invalid", f"cannot reach the gateway at {self.base_url} ({exc}); is `cleanroom serve` running?", url=self.base_url) from exc


def _segment(value: str) -> str:
    """Quote one path segment so an id can never change the route it is sent to."""
    return quote(value, safe="")


__all__ = ["Client"]
