"""Dataset versions (compliance keys, own partner only): list them, and roll back to an earlier one.

``GET /v1/datasets/{partner}/{dataset}/versions`` lists every version (metadata only) and which
is active; ``POST /v1/datasets/{partner}/{dataset}/rollback`` with ``{"version": N}`` makes a
retained earlier version active again, audited as ``dataset.rollback``. The logic lives in
``cleanroom.gateway.datasets``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from starlette.concurrency import run_in_threadpool

from cleanroom.gateway import datasets
from cleanroom.gateway.auth import Principal
from cleanroom.gateway.deps import ServicesDep, require
from cleanroom.gateway.models import DatasetVersions, RollbackRequest, RollbackResponse
from cleanroom.gateway.problems import problem_responses
from cleanroom.partners import ID_PATTERN, NAME_PATTERN

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])

Compliance = Annotated[Principal, Depends(require("compliance"))]
PartnerId = Annotated[str, Path(pattern=ID_PATTERN, max_length=64, examples=["northside-dealers"])]
DatasetName = Annotated[str, Path(pattern=NAME_PATTERN, max_length=64, examples=["sales"])]


@router.get(
    "/{partner}/{dataset}/versions",
    response_model=DatasetVersions,
    summary="Every version of one of the key's partner's datasets, and which one is active",
    responses=problem_responses(400, 401, 403, 404),
)
def list_versions(partner: PartnerId, dataset: DatasetName, request: Request, principal: Compliance, services: ServicesDep) -> DatasetVersions:
    """Metadata only (version, rows, upload time, SHA-256, whether its rows are retained); no data is read."""
    return datasets.dataset_versions(services, principal, partner, dataset, request)


@router.post(
    "/{partner}/{dataset}/rollback",
    response_model=RollbackResponse,
    summary="Make an earlier version of one of the key's partner's datasets active again (audited)",
    responses=problem_responses(400, 401, 403, 404, 409),
)
async def rollback(partner: PartnerId, dataset: DatasetName, body: RollbackRequest, request: Request, principal: Compliance,
                   services: ServicesDep) -> RollbackResponse:
    """One store transaction; the next query reads the restored version (the release cache follows the active version).
    ``store.not_found`` when the version does not exist or its rows were dropped; ``changed: false`` when it is already active."""
    return await run_in_threadpool(datasets.rollback, services, principal, partner, dataset, body.version, request)
