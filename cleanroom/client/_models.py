"""The client's own copies of the gateway's response shapes.

Defined here, not imported, because the client runs where the server's modules must not be
needed (an analyst's laptop, a BI job). A test checks that every model has exactly the fields of
its server twin in ``cleanroom.gateway.models``, so the two cannot drift apart silently.
"""

from __future__ import annotations

from datetime import datetime

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

CellValue = str | int | float | bool | list[float | None] | list[str] | None  # a 95% interval [low, high], or the names in suppressed_values


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class NoiseInfo(_Model):
    part: str
    mechanism: str
    scale: float
    ci95: float


class QueryResult(_Model):
    """A released query result: noisy values, ``None`` where a cell was suppressed."""

    query_id: str
    template: str
    columns: list[str]
    rows: list[list[CellValue]]
    epsilon_charged: float
    budget_remaining: float
    noise: list[NoiseInfo]
    suppressed_cells: int
    cached: bool
    notes: list[str] = []

    def noise_for(self, column: str) -> NoiseInfo | None:
        """The noise of a value column (value columns are named after their part), else None."""
        return next((n for n in self.noise if n.part == column), None)


class Budget(_Model):
    collaboration: str
    partner: str
    period: str
    partner_limit: float
    partner_spent: float
    partner_remaining: float
    reserved_for_report: float
    collaboration_cap: float
    collaboration_spent: float
    collaboration_remaining: float
    lifetime_epsilon: float


class UploadReceipt(_Model):
    """An accepted upload. ``replayed``: this manifest had been accepted before (a retry): nothing new was
    stored; ``rolled_back_from``: an older version was made active again (the version active before)."""

    partner: str
    dataset: str
    version: int
    sha256: str
    replayed: bool = False
    rolled_back_from: int | None = None
    warnings: list[str] = []


class Rollback(_Model):
    partner: str
    dataset: str
    from_version: int | None
    to_version: int
    changed: bool
    rows: int
    sha256: str


class DatasetVersionInfo(_Model):
    version: int
    active: bool
    retained: bool
    rows: int
    uploaded_at: datetime
    uploaded_by: str
    sha256: str


class DatasetVersions(_Model):
    partner: str
    dataset: str
    versions: list[DatasetVersionInfo]


class Policy(_Model):
    collaboration: str
    digest: str
    active: bool
    signed_by: list[str]
    policy: dict[str, Any]


class AuditEntry(_Model):
    seq: int
    at: str
    event: str
    actor: str
    details: dict[str, Any]
    prev: str
    hash: str


class AuditPage(_Model):
    entries: list[AuditEntry]
    chain_ok: bool
    chain_entries: int
    chain_head: str
    next_after: int | None


class ExpectedAccuracy(_Model):
    quantity: str
    part: str
    cells_summed: int
    ci95: float
    epsilon_for_target: float | None = None


class PartPlanOut(_Model):
    part: str
    cells: int
    sensitivity: int
    epsilon: str
    mechanism: str
    scale: float


class Explanation(_Model):
    template: str
    params: dict[str, Any]
    datasets: list[str]
    joins: list[list[str]]
    consent_purposes: list[str]
    threshold: int
    epsilon: float
    parts: list[PartPlanOut]
    expected: list[ExpectedAccuracy]
    plan: list[str]
    notes: list[str] = []


class ReportSectionPlan(_Model):
    name: str
    title: str
    template: str
    dimensions: list[str]
    params: dict[str, Any]
    epsilon: str
    recipients: list[str]


class ReportRecipient(_Model):
    partner: str
    role: str


class DatasetFreshness(_Model):
    partner: str
    dataset: str
    version: int | None
    uploaded_at: datetime | None
    status: Literal["ok", "missing", "stale", "empty"]
    detail: str = ""


class ReportPlan(_Model):
    collaboration: str
    month: str
    complete: bool
    policy_hash: str
    reservation: str
    spent: str
    recipients: list[ReportRecipient]
    sections: list[ReportSectionPlan]
    freshness: list[DatasetFreshness]


class Health(_Model):
    status: Literal["ok", "degraded"]
    version: str
    reason: str | None = None  # when degraded: the store.* code of the fault


__all__ = ["AuditEntry", "AuditPage", "Budget", "CellValue", "Health", "NoiseInfo", "Policy", "QueryResult", "UploadReceipt",
           "Rollback", "DatasetVersionInfo", "DatasetVersions"]
