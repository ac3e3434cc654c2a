"""``POST /v1/queries`` (release a noisy aggregate) and ``GET /v1/queries/{id}`` (fetch it again)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from cleanroom.gateway.auth import Principal
from cleanroom.gateway.deps import ServicesDep, require
from cleanroom.gateway.models import QUERY_ID_PATTERN, ExplainRequest, ExplainResponse, QueryRequest, QueryResponse
from cleanroom.gateway.problems import problem_responses

router = APIRouter(prefix="/v1/queries", tags=["queries"])

Querier = Annotated[Principal, Depends(require("analyst", "report"))]


@router.post(
    "",
    response_model=QueryResponse,
    summary="Run a template or restricted SQL and release a differentially private result",
    responses=problem_responses(400, 401, 403, 404, 409, 429, 500, 504),
)
def create_query(body: QueryRequest, principal: Querier, services: ServicesDep) -> QueryResponse:
    """Budget is charged before anything is released; an identical earlier query is served from the
    cache without new noise or charge (``cached: true``)."""
    return services.release_query(principal, body)


@router.post(
    "/explain",
    response_model=ExplainResponse,
    summary="Explain a query before spending: the plan in words and the accuracy to expect (no charge, no data read)",
    responses=problem_responses(400, 401, 403, 404, 409, 429, 500),
)
def explain_query(body: ExplainRequest, principal: Querier, services: ServicesDep) -> ExplainResponse:
    """The same authorization and compilation as a release; stops before the budget is charged."""
    return services.explain_query(principal, body)


@router.get(
    "/{query_id}",
    response_model=QueryResponse,
    summary="Fetch a result released earlier to the caller's partner",
    responses=problem_responses(400, 401, 403, 404),
)
def get_query(
    query_id: Annotated[str, Path(pattern=QUERY_ID_PATTERN)], principal: Querier, services: ServicesDep
) -> QueryResponse:
    """Only the caller's partner's queries are visible; any other id is ``query.not_found``."""
    return services.get_query(principal, query_id)
