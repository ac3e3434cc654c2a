"""``GET /v1/budget``: the caller's partner's privacy budget in one collaboration."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from cleanroom.gateway.auth import Principal
from cleanroom.gateway.deps import ServicesDep, require
from cleanroom.gateway.models import BudgetResponse
from cleanroom.gateway.problems import problem_responses
from cleanroom.partners import ID_PATTERN

router = APIRouter(prefix="/v1", tags=["budget"])


@router.get(
    "/budget",
    response_model=BudgetResponse,
    summary="The caller's partner's epsilon budget this month",
    responses=problem_responses(400, 401, 403, 404, 409),
)
def get_budget(
    collaboration: Annotated[str, Query(pattern=ID_PATTERN, examples=["aurora-2026"])],
    principal: Annotated[Principal, Depends(require("analyst", "report", "compliance"))],
    services: ServicesDep,
) -> BudgetResponse:
    """Spent, remaining and reserved epsilon for the caller's partner, and the collaboration-wide cap."""
    return services.budget(principal, collaboration)
