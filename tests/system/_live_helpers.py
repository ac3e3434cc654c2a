"""The live gateway handle and the one error shape, checked on real HTTP responses.

Imported by name (test directories are not packages).
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from cleanroom.errors import CODES
from cleanroom.gateway import ApiKeys, GatewayConfig

PROBLEM_KEYS = {"type", "title", "status", "detail", "code", "instance", "details"}


def check_problem(response: httpx.Response, code: str) -> dict[str, object]:
    """RFC 9457 fields only; type, status and title derived from errors.CODES; a non-empty detail."""
    assert response.headers["content-type"] == "application/problem+json", response.text
    body = response.json()
    assert body["code"] == code, body
    assert set(body) <= PROBLEM_KEYS and {"type", "title", "status", "detail", "code"} <= set(body)
    assert body["type"] == f"https://cleanroom.dev/errors/{code}"
    assert response.status_code == body["status"] == CODES[code][0]
    assert body["title"] == CODES[code][1]
    assert isinstance(body["detail"], str) and body["detail"]
    return body  # type: ignore[no-any-return]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@dataclass(frozen=True)
class LiveGateway:
    """A running gateway: its URL, its config, and its key store (to mint keys for tests)."""

    url: str
    config: GatewayConfig
    keys: ApiKeys

    def mint(self, partner: str, role: str) -> str:
        return self.keys.create_key(partner, role, "system-test", actor="test")[1]
