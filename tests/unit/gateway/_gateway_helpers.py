"""Helpers shared by the gateway's in-process tests (imported by name: tests dirs are not packages)."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import httpx
from starlette.exceptions import StarletteDeprecationWarning

from cleanroom.errors import CODES

with warnings.catch_warnings():
    # starlette 1.x prefers httpx2 for its test client; httpx (pinned) still works.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

Mint = Callable[[str, str], str]
ProblemCheck = Callable[[httpx.Response, str], dict[str, object]]


def check_problem(response: httpx.Response, code: str) -> dict[str, object]:
    """The one error shape: RFC 9457 fields, status and title from errors.CODES, nothing else."""
    assert response.headers["content-type"] == "application/problem+json", response.text
    body = response.json()
    assert body["code"] == code, body
    assert set(body) <= {"type", "title", "status", "detail", "code", "instance", "details"}
    assert {"type", "title", "status", "detail", "code"} <= set(body)
    assert body["type"] == f"https://cleanroom.dev/errors/{code}"
    assert response.status_code == body["status"] == CODES[code][0]
    assert body["title"] == CODES[code][1]
    assert isinstance(body["detail"], str) and body["detail"]
    return body  # type: ignore[no-any-return]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


__all__ = ["Mint", "ProblemCheck", "TestClient", "bearer", "check_problem"]
