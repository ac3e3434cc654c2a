"""The typed Python client of the cleanroom gateway.

    with Client("http://127.0.0.1:8000", api_key) as c:
        result = c.query("aurora-2026", "funnel", {"dimensions": ["model"]}, epsilon=0.5)

Imports only ``cleanroom.errors``, its own models and httpx: never a server module. Failures are
raised as the ``cleanroom.errors`` exception with the server's stable code.
"""

from __future__ import annotations

from cleanroom.client._client import Client
from cleanroom.client._errors import error_from_response
from cleanroom.client._models import (
    AuditEntry,
    AuditPage,
    Budget,
    CellValue,
    DatasetFreshness,
    DatasetVersionInfo,
    DatasetVersions,
    Explanation,
    Health,
    NoiseInfo,
    Policy,
    QueryResult,
    ReportPlan,
    ReportRecipient,
    ReportSectionPlan,
    Rollback,
    UploadReceipt,
)

__all__ = [
    "AuditEntry",
    "AuditPage",
    "Budget",
    "CellValue",
    "Client",
    "DatasetFreshness",
    "DatasetVersionInfo",
    "DatasetVersions",
    "Explanation",
    "Health",
    "NoiseInfo",
    "Policy",
    "QueryResult",
    "ReportPlan",
    "ReportRecipient",
    "ReportSectionPlan",
    "Rollback",
    "UploadReceipt",
    "error_from_response",
]
