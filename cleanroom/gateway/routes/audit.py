"""``GET /v1/audit``: the audit entries a compliance officer's partner may see."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from cleanroom.gateway.auth import Principal
from cleanroom.gateway.deps import ServicesDep, require
from cleanroom.gateway.models import AuditPage
from cleanroom.gateway.problems import problem_responses

router = APIRouter(prefix="/v1", tags=["audit"])


@router.get(
    "/audit",
    response_model=AuditPage,
    summary="Audit entries made by, or touching the data of, the caller's partner",
    responses=problem_responses(400, 401, 403),
)
def get_audit(
    principal: Annotated[Principal, Depends(require("compliance"))],
    services: ServicesDep,
    after: Annotated[int | None, Query(ge=-1, description="Return entries with seq greater than this.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditPage:
    """Pages through the hash-chained log and reports whether the whole chain verifies."""
    return services.audit_page(principal, after, limit)
