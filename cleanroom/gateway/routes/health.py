"""``GET /healthz``: liveness, without authentication and without any timing or load figure."""

from __future__ import annotations

from fastapi import APIRouter

from cleanroom import __version__
from cleanroom.gateway.models import HealthResponse

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthResponse, summary="Is the gateway up?")
def healthz() -> HealthResponse:
    """Answers as soon as the process serves requests; needs no key."""
    return HealthResponse(status="ok", version=__version__)
