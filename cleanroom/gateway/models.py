"""Request and response bodies of the gateway API, with the examples shown at ``/docs``.

These are the only shapes that cross the HTTP boundary. None of them has a field that could hold
a row, a ``hid`` or an exact aggregate: query results carry noisy values only (made by the one
release path), and every other response is metadata (budgets, receipts, policy text, audit
entries). The typed client in ``cleanroom.client`` mirrors them field for field (a test checks).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, model_validator

from cleanroom.partners import ID_PATTERN, NAME_PATTERN

CellValue = str | int | float | bool | list[float | None] | list[str] | None  # a 95% interval [low, high], or the names in suppressed_values

QUERY_ID_PATTERN = r"^[A-Za-z0-9_-]{1,80}$"
PERIOD_PATTERN = r"^\d{4}-\d{2}$"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- queries -----------------------------------------------------------------------------------

_TEMPLATE_EXAMPLE = {
    "collaboration": "aurora-2026",
    "template": "funnel",
    "params": {"dimensions": ["model"]},
    "epsilon": 0.5,
}
_SQL_EXAMPLE = {
    "collaboration": "aurora-2026",
    "sql": "SELECT model, COUNT(DISTINCT pid) AS persons FROM northside_dealers__sales GROUP BY model",
    "epsilon": 0.25,
}


class QueryRequest(_Model):
    """Run one approved template, or one restricted-SQL aggregate, and spend ``epsilon`` on it."""

    model_config = ConfigDict(frozen=True, extra="forbid", json_schema_extra={"examples": [_TEMPLATE_EXAMPLE, _SQL_EXAMPLE]})

    collaboration: str = Field(pattern=ID_PATTERN, description="The collaboration whose active policy governs the query.")
    template: str | None = Field(default=None, pattern=NAME_PATTERN, description="funnel | attribution | overlap | lifecycle.")
    sql: str | None = Field(default=None, min_length=1, max_length=20_000, description="Restricted SQL (when the policy allows it).")
    params: dict[str, Any] = Field(default_factory=dict, description="Template parameters (see docs/reference/templates.md).")
    epsilon: StrictFloat = Field(gt=0, allow_inf_nan=False, description="Privacy loss to spend on this query (a JSON number; true or \"0.5\" are refused).")

    @model_validator(mode="after")
    def _template_xor_sql(self) -> QueryRequest:
        if (self.template is None) == (self.sql is None):
            raise ValueError("give exactly one of 'template' or 'sql'")
        if self.sql is not None and self.params:
            raise ValueError("'params' go with a template; restricted SQL takes none")
        return self


class ExplainRequest(QueryRequest):
    """A query to explain before spending anything: the same body, plus an optional accuracy target."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    target_ci95: float | None = Field(default=None, gt=0, allow_inf_nan=False,
                                      description="A wished 95% half-width (persons, sales): the response says what epsilon would give it.")


class ExpectedAccuracy(_Model):
    """What one kind of shown number will look like at the requested epsilon (before any data is read)."""

    quantity: str = Field(description="e.g. 'persons at stage lead (per group)'.")
    part: str
    cells_summed: int = Field(description="How many noisy cells the number adds up (its noise is their sum).")
    ci95: float = Field(description="Expected half-width of its 95% interval, in persons or sales (unconditional).")
    epsilon_for_target: float | None = Field(default=None, description="Epsilon of the whole query that would give target_ci95, when asked.")


class PartPlanOut(_Model):
    part: str
    cells: int
    sensitivity: int = Field(description="L1 sensitivity: the most one person can move the part's cells in total.")
    epsilon: str = Field(description="This part's exact share of the query's epsilon.")
    mechanism: str
    scale: float = Field(description="Noise scale per cell, in persons or sales.")


class ExplainResponse(_Model):
    """``POST /v1/queries/explain``: the compiled plan in words and the accuracy to expect; no charge, no data read."""

    template: str
    params: dict[str, Any]
    datasets: list[str]
    joins: list[list[str]]
    consent_purposes: list[str]
    threshold: int
    epsilon: float
    parts: list[PartPlanOut]
    expected: list[ExpectedAccuracy]
    plan: list[str] = Field(description="The plan in words.")
    notes: list[str] = Field(default_factory=list, description="What the engine leaves out and why.")


class NoiseInfo(_Model):
    """How one released vector (a *part*: e.g. ``persons``, ``sales``) was noised."""

    part: str
    mechanism: str = Field(description="e.g. discrete_laplace, discrete_gaussian")
    scale: float
    ci95: float = Field(description="Half-width of the 95% interval of each value of this part.")


class QueryResponse(_Model):
    """A released result: dimensions, noisy values (``null`` where suppressed) and their noise.

    ``columns`` are the grouping dimensions followed by one column per released part, named after
    the part, so ``noise`` says how each value column was made.
    """

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "query_id": "q_7f3a9c2e01b4",
                    "template": "funnel",
                    "columns": ["model", "stage", "persons", "persons_ci95", "suppressed", "suppressed_values"],
                    "rows": [["aster", "configurator", 4213, [4207.0, 4219.0], False, []], ["dune", "sale", None, None, True, ["persons"]]],
                    "epsilon_charged": 0.5,
                    "budget_remaining": 4.5,
                    "noise": [{"part": "reached", "mechanism": "laplace", "scale": 2.0, "ci95": 6.43}],
                    "suppressed_cells": 1,
                    "cached": False,
                    "notes": ["Cohort: persons whose first configurator event falls in the period ..."],
                }
            ]
        },
    )

    query_id: str
    template: str = Field(description="The template name, or 'sql' for restricted SQL.")
    columns: list[str]
    rows: list[list[CellValue]]
    epsilon_charged: float = Field(description="0 when the result was served from the cache.")
    budget_remaining: float = Field(description="The caller's partner's budget left this month.")
    noise: list[NoiseInfo]
    suppressed_cells: int = Field(ge=0)
    cached: bool = Field(description="True when an identical earlier query's stored noisy result was returned.")
    notes: list[str] = Field(default_factory=list, description="How to read the result: definitions, and why a stage or value is missing.")


# --- the monthly report --------------------------------------------------------------------------


class ReportSectionPlan(_Model):
    """One section of a month's report: what it asks, what it costs, who receives it."""

    name: str
    title: str
    template: str
    dimensions: list[str]
    params: dict[str, Any] = Field(description="The template parameters resolved for the month.")
    epsilon: str = Field(description="Exact epsilon the section spends, as a decimal string.")
    recipients: list[str]


class ReportRecipient(_Model):
    partner: str
    role: str


class DatasetFreshness(_Model):
    """What one dataset in scope looked like when the plan was made (metadata only, never contents)."""

    partner: str
    dataset: str
    version: int | None
    uploaded_at: datetime | None
    status: Literal["ok", "missing", "stale", "empty"] = Field(
        description="missing: never uploaded; empty: the active version has no rows; stale: not uploaded since the month ended."
    )
    detail: str = ""


class ReportPlan(_Model):
    """``GET /v1/reports/{collaboration}/{month}``: everything the report job needs before releasing."""

    collaboration: str
    month: str
    complete: bool = Field(description="True when the month is over (UTC); only complete months are reported.")
    policy_hash: str
    reservation: str = Field(description="Epsilon the policy reserves each month for the report.")
    spent: str = Field(description="Epsilon the report of this month has spent so far (re-runs spend nothing).")
    recipients: list[ReportRecipient]
    sections: list[ReportSectionPlan]
    freshness: list[DatasetFreshness]


# --- budget ------------------------------------------------------------------------------------


class BudgetResponse(_Model):
    """The caller's partner's privacy budget in one collaboration for the current month."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "collaboration": "aurora-2026",
                    "partner": "northside-dealers",
                    "period": "2026-06",
                    "partner_limit": 5.0,
                    "partner_spent": 1.25,
                    "partner_remaining": 3.75,
                    "reserved_for_report": 1.0,
                    "collaboration_cap": 12.0,
                    "collaboration_spent": 4.5,
                    "collaboration_remaining": 7.5,
                    "lifetime_epsilon": 31.5,
                }
            ]
        },
    )

    collaboration: str
    partner: str
    period: str = Field(pattern=PERIOD_PATTERN)
    partner_limit: float
    partner_spent: float
    partner_remaining: float
    reserved_for_report: float = Field(description="Epsilon held back from the collaboration cap for the monthly report (not from partner budgets).")
    collaboration_cap: float
    collaboration_spent: float
    collaboration_remaining: float
    lifetime_epsilon: float


# --- uploads -----------------------------------------------------------------------------------


class UploadResponse(_Model):
    """Receipt of an accepted upload: the dataset version that is now visible."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={"examples": [{"partner": "northside-dealers", "dataset": "sales", "version": 3, "sha256": "9f2c" + "0" * 60}]},
    )

    partner: str
    dataset: str
    version: int = Field(ge=1)
    sha256: str = Field(description="SHA-256 of the accepted Arrow file, as in its manifest.")
    replayed: bool = Field(default=False, description=(
        "True when this very manifest (same nonce, same SHA-256) had been accepted before: nothing new was stored and `version` is that "
        "earlier version, active now. Makes retries safe."))
    rolled_back_from: int | None = Field(default=None, description=(
        "Set when the re-upload made an older version active again (a rollback): the version that was active before."))
    warnings: list[str] = Field(default=[], description="What ingest accepted but the uploader should know (e.g. a manifest without a salt fingerprint).")


# --- dataset versions (compliance keys, own partner only) --------------------------------------


class RollbackRequest(_Model):
    """``POST /v1/datasets/{partner}/{dataset}/rollback``: the earlier version to make active again."""

    model_config = ConfigDict(frozen=True, extra="forbid", json_schema_extra={"examples": [{"version": 2}]})

    version: int = Field(ge=1, le=2**31 - 1)


class RollbackResponse(_Model):
    """What a rollback did; ``changed`` is false when ``to_version`` was already active."""

    model_config = ConfigDict(frozen=True, extra="forbid", json_schema_extra={"examples": [
        {"partner": "northside-dealers", "dataset": "sales", "from_version": 3, "to_version": 2, "changed": True, "rows": 51234,
         "sha256": "9f2c" + "0" * 60}]})

    partner: str
    dataset: str
    from_version: int | None
    to_version: int
    changed: bool
    rows: int
    sha256: str


class DatasetVersionOut(_Model):
    version: int
    active: bool
    retained: bool = Field(description="Its rows are still stored, so it can be made active again.")
    rows: int
    uploaded_at: datetime
    uploaded_by: str
    sha256: str


class DatasetVersions(_Model):
    """Every version of one dataset (metadata only), so a compliance officer can pick one to roll back to."""

    partner: str
    dataset: str
    versions: list[DatasetVersionOut]


# --- policies ----------------------------------------------------------------------------------


class PolicyResponse(_Model):
    """The collaboration's active policy, exactly as signed, and who signed it."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "collaboration": "aurora-2026",
                    "digest": "3b1d" + "0" * 60,
                    "active": True,
                    "signed_by": ["aurora-financial", "aurora-motors", "lakeside-autos", "northside-dealers"],
                    "policy": {"collaboration": "aurora-2026", "templates": {"funnel": {"epsilon_max": 1.0}}},
                }
            ]
        },
    )

    collaboration: str
    digest: str = Field(description="SHA-256 of the policy's canonical bytes (what was signed).")
    active: bool
    signed_by: list[str]
    policy: dict[str, Any]


# --- audit -------------------------------------------------------------------------------------


class AuditEntryOut(_Model):
    seq: int
    at: str
    event: str
    actor: str
    details: dict[str, Any]
    prev: str
    hash: str


class AuditPage(_Model):
    """Audit entries visible to the caller's partner, and the state of the whole chain."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "entries": [
                        {
                            "seq": 41,
                            "at": "2026-06-02T09:14:03+00:00",
                            "event": "apikey.create",
                            "actor": "cli:ops",
                            "details": {"key_id": "kid_0c1d2e3f4a5b", "partner": "aurora-motors", "role": "analyst", "label": "bi"},
                            "prev": "77c1" + "0" * 60,
                            "hash": "5e0a" + "0" * 60,
                        }
                    ],
                    "chain_ok": True,
                    "chain_entries": 42,
                    "chain_head": "5e0a" + "0" * 60,
                    "next_after": None,
                }
            ]
        },
    )

    entries: list[AuditEntryOut]
    chain_ok: bool = Field(description="The whole log verifies (no entry edited, dropped or reordered).")
    chain_entries: int
    chain_head: str
    next_after: int | None = Field(description="Pass as ?after= to fetch the next page; null on the last page.")


# --- health ------------------------------------------------------------------------------------


class HealthResponse(_Model):
    model_config = ConfigDict(frozen=True, extra="forbid", json_schema_extra={"examples": [
        {"status": "ok", "version": "0.1.0"},
        {"status": "degraded", "version": "0.1.0", "reason": "store.full"},
    ]})

    status: Literal["ok", "degraded"] = Field(description="ok; degraded (HTTP 503) while the store has a fault.")
    version: str
    reason: str | None = Field(default=None, description="When degraded: the error code of the fault (store.full, store.unavailable, "
                                                        "store.integrity; see docs/reference/errors.md). Absent when ok.")


__all__ = [
    "AuditEntryOut",
    "AuditPage",
    "BudgetResponse",
    "CellValue",
    "HealthResponse",
    "NoiseInfo",
    "PolicyResponse",
    "QueryRequest",
    "QueryResponse",
    "UploadResponse",
    "RollbackRequest",
    "RollbackResponse",
    "DatasetVersionOut",
    "DatasetVersions",
]
