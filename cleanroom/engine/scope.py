"""What the active policy entitles for ONE request: the engine's only view of the policy.

The gateway builds a :class:`Scope` from the active policy, the caller's role and the template
(its consent purposes); the engine never reads the policy itself. Everything the compiled SQL may
touch is named here: datasets (and so views), public domains, measure bounds, joins, filterable
columns, and the contribution limits the SQL enforces.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cleanroom.engine.views import split_qualified, view_name
from cleanroom.errors import ConfigError, PolicyError

Tag = Literal["join_key", "dimension", "measure", "timestamp", "consent", "private"]
PartnerRole = Literal["brand", "dealer", "finance"]


class DatasetRef(BaseModel):
    """One entitled dataset: whose it is, its view, and its columns with their semantic tags.

    ``columns`` keeps the partner file's declared order (it is the deterministic tie-break order
    of the per-person row bound). The join key may be listed or not: views expose it as ``pid``.
    ``max_rows_per_person`` is the most rows any one person has in the stored version the view
    shows, as the store recorded it at publish time; None (unknown) keeps the row bound.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    partner: str
    partner_role: PartnerRole
    dataset: str
    view: str
    columns: dict[str, Tag]
    max_rows_per_person: int | None = Field(default=None, ge=0)

    @property
    def qualified(self) -> str:
        return f"{self.partner}.{self.dataset}"

    @property
    def event_time(self) -> str:
        """The dataset's event time: its first declared timestamp column (contracts: start_date)."""
        stamps = self.tagged("timestamp")
        if not stamps:
            raise ConfigError("partner.invalid", f"dataset {self.qualified} declares no timestamp column", dataset=self.qualified)
        return stamps[0]

    @property
    def is_consent(self) -> bool:
        return bool(self.tagged("consent"))

    def tagged(self, *tags: Tag) -> list[str]:
        return [name for name, tag in self.columns.items() if tag in tags]

    def order_columns(self) -> list[str]:
        """Event time first, then every other non-private column: a total, deterministic order."""
        rest = [c for c in self.tagged("dimension", "measure", "timestamp") if c != self.event_time]
        return [self.event_time, *rest]


class Scope(BaseModel):
    """The entitlements of one request (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    datasets: dict[str, DatasetRef]
    consent_purposes: list[str]
    # True: the views of non-consent datasets already hold only the rows of persons with an active
    # consent for ``consent_purposes`` at ``now`` (the store's consented-rows tables), so the engine
    # writes no consent semi-join. It still checks and records each owner's consent dataset: the
    # answer depends on it (data-version token, consent horizon, audit) as much as when it joins.
    consent_applied: bool = False
    domains: dict[str, list[str]]
    measure_bounds: dict[str, tuple[int, int]] = Field(default_factory=dict)
    max_groups_per_person: int = Field(ge=1)
    max_rows_per_person: int = Field(ge=1)
    approved_joins: frozenset[frozenset[str]] = frozenset()
    filterable_columns: frozenset[str] = frozenset()
    now: datetime

    @field_validator("domains")
    @classmethod
    def _domains(cls, domains: dict[str, list[str]]) -> dict[str, list[str]]:
        for dim, vals in domains.items():
            if not vals or len(set(vals)) != len(vals):
                raise ValueError(f"domain of {dim!r} must be a non-empty list of distinct values")
        return domains

    @field_validator("measure_bounds")
    @classmethod
    def _bounds(cls, bounds: dict[str, tuple[int, int]]) -> dict[str, tuple[int, int]]:
        for key, (lo, hi) in bounds.items():
            if lo > hi:
                raise ValueError(f"measure bounds of {key!r}: lower {lo} exceeds upper {hi}")
        return bounds

    @model_validator(mode="after")
    def _refs_match_keys(self) -> Scope:
        for qualified, ref in self.datasets.items():
            split_qualified(qualified)
            if ref.qualified != qualified or ref.view != view_name(qualified):
                raise ValueError(f"dataset {qualified!r}: partner/dataset/view do not match its key")
        for pair in self.approved_joins:
            if len(pair) != 2:
                raise ValueError(f"an approved join names two distinct datasets, got {sorted(pair)}")
        return self

    def datasets_of(self, role: PartnerRole, dataset: str) -> list[DatasetRef]:
        """Every entitled dataset called ``dataset`` of a partner with ``role``, in key order."""
        return [r for q, r in sorted(self.datasets.items()) if r.partner_role == role and r.dataset == dataset]

    def ref(self, qualified: str) -> DatasetRef:
        try:
            return self.datasets[qualified]
        except KeyError:
            raise PolicyError(
                "policy.dataset_not_in_scope", f"dataset {qualified!r} is not in the policy's scope for this query", dataset=qualified
            ) from None

    def domain(self, dim: str, template: str) -> list[str]:
        """The public domain of a groupable dimension; no domain means not groupable."""
        try:
            return self.domains[dim]
        except KeyError:
            raise PolicyError(
                "policy.dimension_not_allowed",
                f"{template}: dimension {dim!r} has no public domain in the policy, so it cannot be grouped or filtered",
                dimension=dim,
            ) from None

    def is_filterable(self, column: str, qualified: str) -> bool:
        """A column is filterable when the policy lists it bare or as ``partner.dataset.column``."""
        return column in self.filterable_columns or f"{qualified}.{column}" in self.filterable_columns

    def join_approved(self, a: str, b: str) -> bool:
        return a == b or frozenset((a, b)) in self.approved_joins

    def require_join(self, a: str, b: str, why: str) -> None:
        if not self.join_approved(a, b):
            raise PolicyError(
                "policy.join_not_approved", f"{why} needs the join {a} <-> {b}, which the policy does not approve", pair=sorted((a, b))
            )


__all__ = ["DatasetRef", "PartnerRole", "Scope", "Tag"]
