"""problem+json back into the exception it was on the server, by the area of its stable code.

``auth.invalid`` comes back as :class:`cleanroom.errors.AuthError` with ``code == "auth.invalid"``,
the server's ``detail`` as its message and the problem's ``details`` as its details, so code
written against the library (``except BudgetError``) works unchanged over HTTP.
"""

from __future__ import annotations

from typing import Any

import httpx

from cleanroom.errors import (
    CODES,
    AuditError,
    AuthError,
    BudgetError,
    CleanroomError,
    ConfigError,
    InternalError,
    PolicyError,
    PrepareError,
    QueryError,
    StoreError,
    UploadError,
)

PROBLEM_MEDIA_TYPE = "application/problem+json"

AREAS: dict[str, type[CleanroomError]] = {
    "config": ConfigError,
    "keys": ConfigError,
    "partner": ConfigError,
    "policy": PolicyError,
    "prepare": PrepareError,
    "upload": UploadError,
    "store": StoreError,
    "query": QueryError,
    "budget": BudgetError,
    "auth": AuthError,
    "audit": AuditError,
    "internal": InternalError,
}


def error_from_response(response: httpx.Response) -> CleanroomError:
    """The exception a failed response stands for (``internal.invariant`` if it is not a problem)."""
    problem = _problem(response)
    if problem is None:
        return InternalError("internal.invariant", f"HTTP {response.status_code} from {response.request.url} without a problem+json body")
    code, detail = str(problem.get("code", "")), str(problem.get("detail") or problem.get("title") or "")
    details: dict[str, Any] = problem.get("details") or {}
    if code not in CODES:
        return InternalError("internal.invariant", f"server error code {code!r} unknown to this client: {detail}", remote_code=code)
    error = AREAS.get(code.split(".", 1)[0], CleanroomError)(code, detail)
    error.details = details  # set, not passed as keywords: a detail may be named like a parameter
    return error


def _problem(response: httpx.Response) -> dict[str, Any] | None:
    if not response.headers.get("content-type", "").startswith(PROBLEM_MEDIA_TYPE):
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


__all__ = ["AREAS", "PROBLEM_MEDIA_TYPE", "error_from_response"]
