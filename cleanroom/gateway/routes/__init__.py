"""One module per resource; ``ROUTERS`` is what ``create_app`` mounts, in the order /docs lists them."""

from __future__ import annotations

from fastapi import APIRouter

from cleanroom.gateway.routes import audit, budget, datasets, health, policies, queries, reports, uploads

ROUTERS: tuple[APIRouter, ...] = (health.router, queries.router, reports.router, budget.router, uploads.router, datasets.router, policies.router, audit.router)

__all__ = ["ROUTERS"]
