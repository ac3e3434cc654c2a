"""The one error renderer: every failure leaves the gateway as RFC 9457 ``application/problem+json``.

Shape (and nothing else)::

    {"type": "https://cleanroom.dev/errors/<code>", "title": <CODES meaning>, "status": <CODES status>,
     "detail": <message>, "code": <code>, "instance": <request path>, "details": {...}?}

Four sources feed it: a :class:`CleanroomError` (rendered as is), FastAPI's request validation
(``query.invalid``, or ``budget.invalid_epsilon`` when only ``epsilon`` is wrong, with the field
paths in ``details``), Starlette's HTTP errors (unknown route or method, malformed multipart) and
anything else: a storage fault (a full disk, a read-only or unreadable store, a damaged block) is
recognized by :func:`cleanroom.store.faults.storage_fault` and answered with its documented 503
(``store.full`` / ``store.unavailable`` with ``Retry-After``, ``store.integrity``) and one log
line; only what is left is a bug (``internal.invariant``, logged with its traceback). Every
storage fault is also recorded in the gateway's ``StoreHealth`` (what ``GET /healthz`` reports).
A 5xx never carries the exception's text or details: those may hold server paths or engine
internals, so they go to the server log only.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cleanroom.errors import CODES, CleanroomError, InternalError, QueryError, StoreError
from cleanroom.store.faults import FAULT_CODES, storage_fault

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://cleanroom.dev/errors/"

log = logging.getLogger("cleanroom.gateway")

# Starlette's own HTTP errors, by status, onto our codes (anything else 4xx: query.invalid).
_HTTP_CODES = {401: "auth.missing", 403: "auth.forbidden", 404: "query.no_endpoint", 405: "query.no_endpoint", 413: "upload.too_large"}


class Problem(BaseModel):
    """The body of every error response (documented at /docs for each route)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str
    title: str
    status: int
    detail: str
    code: str
    instance: str | None = None
    details: dict[str, Any] | None = None


def problem_for(exc: CleanroomError, instance: str | None = None) -> Problem:
    """Build the problem for an error. Server errors (5xx) keep only the code's public meaning."""
    status, title = CODES[exc.code]
    public = status < 500
    return Problem(
        type=TYPE_BASE + exc.code,
        title=title,
        status=status,
        detail=exc.message if public else title,
        code=exc.code,
        instance=instance,
        details=(exc.details or None) if public else None,
    )


def problem_response(exc: CleanroomError, instance: str | None = None) -> JSONResponse:
    problem = problem_for(exc, instance)
    body = problem.model_dump(exclude_none=True)
    headers = {"WWW-Authenticate": 'Bearer realm="cleanroom"'} if problem.status == 401 else None
    retry = exc.details.get("retry_after_s") if isinstance(exc.details, dict) else None
    if problem.status in (429, 503) and isinstance(retry, int):
        headers = {"Retry-After": str(retry)}
    return JSONResponse(body, status_code=problem.status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries declaring the problem+json body for these statuses."""
    return {s: {"model": Problem, "content": {PROBLEM_MEDIA_TYPE: {}}, "description": "Problem (RFC 9457)"} for s in statuses}


# --- converting the other sources ----------------------------------------------------------------


def validation_error(errors: Sequence[Any]) -> CleanroomError:
    """A request that failed schema validation, with every offending field path (never its value)."""
    fields = [{"field": ".".join(str(p) for p in e.get("loc", ())), "message": str(e.get("msg", ""))} for e in errors]
    first = fields[0] if fields else {"field": "body", "message": "invalid request"}
    more = f" (and {len(fields) - 1} more)" if len(fields) > 1 else ""
    code = "budget.invalid_epsilon" if fields and all(f["field"] == "body.epsilon" for f in fields) else "query.invalid"
    return QueryError(code, f"{first['field']}: {first['message']}{more}", errors=fields)


def http_error(exc: HTTPException) -> CleanroomError:
    """Starlette's own errors (no route, wrong method, unparseable multipart) in our vocabulary."""
    code = _HTTP_CODES.get(exc.status_code, "query.invalid" if exc.status_code < 500 else "internal.invariant")
    detail = str(exc.detail) if exc.status_code < 500 else "internal error"
    if code == "query.no_endpoint":
        detail = f"{detail}: no such endpoint or method; the API is listed at /docs"
    return QueryError(code, detail) if code != "internal.invariant" else InternalError(code, detail)


def _path(request: Request) -> str:
    return request.url.path


def record_fault(app: Any, err: StoreError) -> None:
    """Tell the gateway's ``StoreHealth`` (if the app has one) about a storage fault."""
    health = getattr(getattr(getattr(app, "state", None), "services", None), "health", None)
    if health is not None:
        health.fault(err)


async def _on_cleanroom(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CleanroomError)
    if isinstance(exc, StoreError) and exc.code in FAULT_CODES:
        record_fault(request.app, exc)
        log.warning("%s %s -> %s: %s", request.method, _path(request), exc.code, exc.message)
        return problem_response(exc, _path(request))
    if exc.status >= 500:
        log.error("%s %s -> %s: %s %s", request.method, _path(request), exc.code, exc.message, exc.details)
    return problem_response(exc, _path(request))


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return problem_response(validation_error(exc.errors()), _path(request))


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return problem_response(http_error(exc), _path(request))


def _internal(scope: Scope) -> JSONResponse:
    return problem_response(InternalError("internal.invariant", "unhandled exception"), str(scope.get("path", "")))


class CatchAll:
    """Render any unexpected exception as ``internal.invariant`` (logged with its traceback here).

    Pure ASGI and inside Starlette's ServerErrorMiddleware, so the client gets the one shape and
    the exception does not propagate further (no duplicate 500 page, no re-raise in tests).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            services = getattr(getattr(scope.get("app"), "state", None), "services", None)
            fault = storage_fault(exc, getattr(getattr(services, "config", None), "store", None))
            if fault is None:
                log.exception("unhandled exception on %s %s", scope.get("method"), scope.get("path"))
            else:  # an operator's problem, not a bug: one line, no traceback
                record_fault(scope.get("app"), fault)
                log.warning("%s %s -> %s: %s", scope.get("method"), scope.get("path"), fault.code, fault.message)
            if started:
                raise
            response = _internal(scope) if fault is None else problem_response(fault, str(scope.get("path", "")))
            await response(scope, receive, send)


def install(app: FastAPI) -> None:
    """Register the renderer for every error source on ``app``."""
    app.add_exception_handler(CleanroomError, _on_cleanroom)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(HTTPException, _on_http)
    app.add_middleware(CatchAll)


__all__ = [
    "PROBLEM_MEDIA_TYPE",
    "TYPE_BASE",
    "CatchAll",
    "Problem",
    "http_error",
    "install",
    "record_fault",
    "problem_for",
    "problem_response",
    "problem_responses",
    "validation_error",
]
