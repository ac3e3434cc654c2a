"""``GET /v1/policies/{collaboration}``: the active policy, for every authenticated role."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from cleanroom.gateway.deps import AnyPrincipal, ServicesDep
from cleanroom.gateway.models import PolicyResponse
from cleanroom.gateway.problems import problem_responses
from cleanroom.partners import ID_PATTERN

router = APIRouter(prefix="/v1/policies", tags=["policies"])


@router.get(
    "/{collaboration}",
    response_model=PolicyResponse,
    summary="The collaboration's active, signed policy",
    responses=problem_responses(400, 401, 404, 409),
)
def get_policy(
    collaboration: Annotated[str, Path(pattern=ID_PATTERN, examples=["aurora-2026"])],
    principal: AnyPrincipal,
    services: ServicesDep,
) -> PolicyResponse:
    """Every role may read the rules it is held to: templates, thresholds, budgets, signatures."""
    return services.policy(principal, collaboration)
