"""``GET /healthz``: liveness and storage health, without authentication and without any timing or load figure.

``{"status": "ok"}`` (200) normally. After a storage fault (see :mod:`cleanroom.store.faults`)
``{"status": "degraded", "reason": "<code>"}`` with HTTP 503, so a load balancer takes the
instance out of rotation: ``store.full`` and ``store.unavailable`` clear by themselves after the
next successful durable write, and while degraded by them each ``/healthz`` (at most once a
second) tries one small write in the store itself, so the instance comes back even when no
traffic reaches it; ``store.integrity`` (a damaged block) stays until the gateway is restarted.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from cleanroom import __version__
from cleanroom.gateway.deps import ServicesDep
from cleanroom.gateway.models import HealthResponse

router = APIRouter(tags=["health"])


@router.get(
    "/healthz",
    response_model=HealthResponse,
    response_model_exclude_none=True,
    summary="Is the gateway up, and can it use its store?",
    responses={503: {"model": HealthResponse, "description": "Degraded: a storage fault (reason: its error code)"}},
)
def healthz(services: ServicesDep) -> HealthResponse | JSONResponse:
    """Answers as soon as the process serves requests; needs no key."""
    services.health.probe()
    reason = services.health.reason
    if reason is None:
        return HealthResponse(status="ok", version=__version__)
    body = HealthResponse(status="degraded", version=__version__, reason=reason)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=503)
