"""``create_app``: the FastAPI application of one gateway process.

The app is assembled from parts that each own one concern: ``Services`` (all state and every
decision about data), ``routes/`` (parse, authorize, serialize), ``problems`` (the one error
renderer) and ``limits`` (body sizes). Nothing here touches data. The gateway never reports
timings (no Server-Timing header, no durations in bodies): OpenDP's samplers are not hardened
against timing side channels, so precise timings could leak noise.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from cleanroom import __version__
from cleanroom.gateway import problems
from cleanroom.gateway.config import GatewayConfig
from cleanroom.gateway.limits import BodyLimit
from cleanroom.gateway.routes import ROUTERS
from cleanroom.gateway.routes.uploads import sweep_staging
from cleanroom.gateway.services import Services

DESCRIPTION = """\
Differentially private aggregates over the partners' keyed data, and nothing else.

Authenticate with `Authorization: Bearer crk_...` (keys are minted with `cleanroom apikey create`).
Every error is RFC 9457 `application/problem+json` with a stable `code`
(see docs/reference/errors.md).
"""


def create_app(config: GatewayConfig, services: Services | None = None) -> FastAPI:
    """Build the app. ``Services`` is created here (partners, secrets, keys) so bad config fails at start."""
    state = services if services is not None else Services(config)
    sweep_staging(state.incoming)  # what an upload interrupted by a crash left behind (no upload is in flight yet)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        state.close()

    app = FastAPI(title="cleanroom gateway", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.services = state
    for router in ROUTERS:
        app.include_router(router)
    problems.install(app)
    app.add_middleware(BodyLimit, limits=config.limits)
    return app


__all__ = ["create_app"]
