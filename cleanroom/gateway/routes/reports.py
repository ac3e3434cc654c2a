"""The monthly report: ``GET`` a month's plan, ``POST`` each section (report keys only).

A section is released once per collaboration and month through the same release path as a
query, charged once to the report reservation, and delivered by the report job to every
recipient the policy names for it; a second ``POST`` returns the stored release (``cached``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from cleanroom.gateway.auth import Principal
from cleanroom.gateway.deps import ServicesDep, require
from cleanroom.gateway.models import PERIOD_PATTERN, QueryResponse, ReportPlan
from cleanroom.gateway.problems import problem_responses
from cleanroom.partners import ID_PATTERN, NAME_PATTERN

router = APIRouter(prefix="/v1/reports", tags=["reports"])

Reporter = Annotated[Principal, Depends(require("report"))]
Collaboration = Annotated[str, Path(pattern=ID_PATTERN, max_length=64)]
Month = Annotated[str, Path(pattern=PERIOD_PATTERN)]
Section = Annotated[str, Path(pattern=NAME_PATTERN, max_length=64)]


@router.get(
    "/{collaboration}/{month}",
    response_model=ReportPlan,
    summary="The month's report plan: sections, recipients, epsilon, and the freshness of every dataset",
    responses=problem_responses(400, 401, 403, 404, 409),
)
def report_plan(collaboration: Collaboration, month: Month, principal: Reporter, services: ServicesDep) -> ReportPlan:
    """Metadata only: no data is read and nothing is charged."""
    return services.report_plan(principal, collaboration, month)


@router.post(
    "/{collaboration}/{month}/sections/{section}",
    response_model=QueryResponse,
    summary="Release one section of a complete month's report (once per collaboration and month)",
    responses=problem_responses(400, 401, 403, 404, 409, 429, 500, 504),
)
def report_section(collaboration: Collaboration, month: Month, section: Section, principal: Reporter, services: ServicesDep) -> QueryResponse:
    """Charged once to the report reservation of ``month``; later calls return the stored release (``cached: true``)."""
    return services.report_section(principal, collaboration, month, section)
