"""What a monthly report holds, independent of how it is rendered (HTML, PDF, CSV, Parquet).

Why a model of its own: the report job fetches released sections over HTTP and hands the
renderers only this; renderers never see a gateway, a store or an exact number. Every value in a
section is a released (noisy, post-processed) number exactly as the gateway returned it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Section(_Frozen):
    """One released section of the report, as the gateway's release path returned it.

    ``columns``/``rows`` are the presented table of the template (the same shape as a query
    response): a column ``x`` with a companion ``x_ci95`` holds a released number and its 95 %
    interval ``[low, high]``; ``None`` in a value column means suppressed (or not computable,
    see ``notes``), never 0. ``suppressed`` is a boolean column on every row.
    """

    name: str
    title: str
    template: str
    params: dict[str, Any]
    dimensions: list[str]
    columns: list[str]
    rows: list[list[Any]]
    notes: list[str] = Field(default_factory=list)
    epsilon: str = Field(description="Epsilon this section's release spent, as an exact fraction 'p/q'.")
    query_id: str
    cached: bool = False

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


class Freshness(_Frozen):
    """What one partner's dataset looked like when the report ran (metadata only, never contents)."""

    partner: str
    dataset: str
    version: int | None
    uploaded_at: datetime | None
    status: Literal["ok", "missing", "stale", "empty"]
    detail: str = ""


class Report(_Frozen):
    """One recipient's report for one collaboration and month."""

    collaboration: str
    month: str = Field(pattern=r"^\d{4}-\d{2}$")
    recipient: str
    recipient_role: str
    generated_at: datetime
    policy_hash: str
    sections: list[Section]
    freshness: list[Freshness]
    missing: list[str] = Field(default_factory=list, description="What is missing (only with --allow-partial): shown on page one.")
    withheld: list[str] = Field(default_factory=list, description="Sections of the report this recipient's role may not receive.")

    def section(self, name: str) -> Section | None:
        return next((s for s in self.sections if s.name == name), None)


__all__ = ["Freshness", "Report", "Section"]
