"""Request-body size limits, enforced from ``Content-Length`` before any body byte is read.

Why here and not in the routes: FastAPI reads a body before it runs the route, and Starlette
spools multipart files to disk, so a route-level check would come after the damage (a full disk
from an oversized upload). This pure ASGI middleware refuses an oversized or unframed body up
front, and counts what it lets through so that a body longer than it declared is cut off too.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cleanroom.errors import CleanroomError, QueryError, UploadError
from cleanroom.gateway.config import Limits
from cleanroom.gateway.problems import problem_response

UPLOAD_PATH = re.compile(r"^/v1/datasets/[^/]+/uploads/?$")
_BODY_METHODS = {"POST", "PUT", "PATCH"}


class BodyLimit:
    """Refuse bodies above the limit of their route: uploads get ``upload.too_large`` (413)."""

    def __init__(self, app: ASGIApp, limits: Limits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        try:
            declared = self._check(scope)
        except CleanroomError as exc:
            await problem_response(exc, scope["path"])(scope, receive, send)
            return
        await self.app(scope, _counting(receive, declared), send)

    def _check(self, scope: Scope) -> int:
        """The declared body length, after refusing an unframed or oversized one."""
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        is_upload = bool(UPLOAD_PATH.match(scope["path"]))
        limit = self.limits.max_upload_bytes if is_upload else self.limits.max_json_bytes
        if "content-length" not in headers:
            if "transfer-encoding" in headers:
                raise QueryError("query.invalid", "send the request body with a Content-Length header (chunked bodies are refused)")
            return 0
        try:
            length = int(headers["content-length"])
        except ValueError:
            raise QueryError("query.invalid", "Content-Length is not an integer") from None
        if length > limit:
            error = UploadError if is_upload else QueryError
            code = "upload.too_large" if is_upload else "query.invalid"
            raise error(code, f"request body of {length} bytes exceeds the limit of {limit} bytes", limit=limit, size=length)
        return length


def _counting(receive: Receive, declared: int) -> Receive:
    """Pass body chunks through, failing if more bytes arrive than were declared."""
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > declared:
                raise QueryError("query.invalid", f"the request body is longer than its Content-Length ({declared} bytes)")
        return message

    return wrapped


__all__ = ["UPLOAD_PATH", "BodyLimit"]
