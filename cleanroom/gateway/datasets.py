"""Dataset versions for compliance officers: list a dataset's versions, make an earlier one active again.

Kept out of ``services.py`` (one module per concern): the routes in ``routes/datasets.py`` call
these functions with the gateway's ``Services``. A compliance key manages only its own partner's
datasets; any other partner in the path is ``auth.forbidden`` (audited), with a message that says
nothing about that partner's data. A rollback runs as one store transaction
(:meth:`cleanroom.store.Store.rollback`) and is audited as ``dataset.rollback``.
"""

from __future__ import annotations

from fastapi import Request

from cleanroom.errors import AuthError
from cleanroom.gateway.auth import Principal
from cleanroom.gateway.models import DatasetVersionOut, DatasetVersions, RollbackResponse
from cleanroom.gateway.services import Services


def _own(services: Services, principal: Principal, partner: str, dataset: str, request: Request) -> None:
    """The key's partner owns ``partner.dataset`` (declared): nothing about other partners is looked up."""
    if partner != principal.partner:
        where = f"{request.method} {request.url.path}"
        services.keys.fail("forbidden", where=where, actor=principal.actor, key_id=principal.key_id, role=principal.role)
        raise AuthError("auth.forbidden", f"a {principal.partner} key manages only {principal.partner}'s datasets", role=principal.role)
    services.partners[partner].dataset(dataset)


def dataset_versions(services: Services, principal: Principal, partner: str, dataset: str, request: Request) -> DatasetVersions:
    """Every stored version of the dataset, oldest first, with the active one and whether its rows are retained."""
    _own(services, principal, partner, dataset, request)
    versions = [
        DatasetVersionOut(version=v.version, active=v.active, retained=v.retained, rows=v.rows, uploaded_at=v.uploaded_at,
                          uploaded_by=v.uploaded_by, sha256=v.sha256)
        for v in services.store.versions(f"{partner}.{dataset}")
    ]
    return DatasetVersions(partner=partner, dataset=dataset, versions=versions)


def rollback(services: Services, principal: Principal, partner: str, dataset: str, version: int, request: Request) -> RollbackResponse:
    """Make ``version`` active again (``store.not_found`` if unknown or its rows were dropped); audited when it changed anything."""
    _own(services, principal, partner, dataset, request)
    done = services.store.rollback(partner, dataset, version)
    v = done.version
    if done.rolled_back_from is not None:
        services.audit.append("dataset.rollback", principal.actor, {
            "partner": partner, "dataset": dataset, "from_version": done.rolled_back_from, "to_version": v.version,
            "rows": v.rows, "sha256": v.sha256, "via": "api",
        })
    return RollbackResponse(partner=partner, dataset=dataset, from_version=done.rolled_back_from if done.rolled_back_from is not None else v.version,
                            to_version=v.version, changed=done.rolled_back_from is not None, rows=v.rows, sha256=v.sha256)


__all__ = ["dataset_versions", "rollback"]
