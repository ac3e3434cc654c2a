"""The policy model: what the partners of one collaboration agree to, as validated data.

A policy file (``policies/<collaboration>.yaml``) is parsed into :class:`Policy`. The model only
checks *shape* (types, required keys, ranges, duplicates); whether the datasets, columns and tags
it names exist in ``partners/`` is checked by :mod:`cleanroom.policy.checks`, because that needs
the partner files and because a linter must report every problem at once, not stop at the first.

Two choices keep the canonical form (what partners sign) stable:

- lists that are sets (partners, datasets, roles, purposes, recipients, joins) are sorted on
  validation, so reordering them never changes the signed bytes, while list order that carries
  meaning (a dimension's public domain, the report's sections) is kept;
- epsilon values are exact :class:`~fractions.Fraction` s, parsed from the decimal text the user
  wrote (``0.1`` is 1/10, not the nearest float) and limited to multiples of one micro-epsilon,
  so budget arithmetic is exact and ``1``, ``1.0`` and ``1.000`` sign the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from fractions import Fraction
from typing import Annotated, Any, Literal, TypeVar, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    JsonValue,
    PlainSerializer,
    Strict,
    Tag,
    WithJsonSchema,
    model_validator,
)

from cleanroom.errors import PolicyError, QueryError
from cleanroom.partners import ID_PATTERN, JOIN_KEY, NAME_PATTERN, Role

KNOWN_TEMPLATES: tuple[str, ...] = ("funnel", "attribution", "overlap", "lifecycle", "sql")
DERIVED_DIMENSIONS: dict[str, str] = {
    "month": "YYYY-MM of the row's timestamp (every dataset with a timestamp column)",
    "dealer_group": "the id of the dealer partner that owns the row (dealer datasets only)",
}
MICRO = 1_000_000
MAX_MONTHS = 240
MONTH_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"
QUALIFIED_DATASET = r"^[a-z][a-z0-9-]{1,62}\.[a-z][a-z0-9_]{0,62}$"
QUALIFIED_COLUMN = r"^[a-z][a-z0-9-]{1,62}\.[a-z][a-z0-9_]{0,62}\.[a-z][a-z0-9_]{0,62}$"

# Human names of the patterns above, for error messages (see lint's pydantic translation).
PATTERN_NAMES: dict[str, str] = {
    ID_PATTERN: "an id of lower-case letters, digits and '-' (e.g. aurora-motors)",
    NAME_PATTERN: "a name of lower-case letters, digits and '_' (e.g. web_sessions)",
    MONTH_PATTERN: "a month as YYYY-MM (e.g. 2025-11)",
    QUALIFIED_DATASET: "a qualified dataset name partner.dataset (e.g. aurora-motors.web_sessions)",
    QUALIFIED_COLUMN: "a qualified column name partner.dataset.column (e.g. northside-dealers.sales.price_eur)",
}

T = TypeVar("T")


# --- exact numbers -------------------------------------------------------------------------------


def _exact(value: object) -> Fraction:
    """Parse a number exactly: floats via their shortest decimal text (0.1 -> 1/10)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal | Fraction):
        raise ValueError(f"must be a number, got {value!r}")
    try:
        return Fraction(repr(value)) if isinstance(value, float) else Fraction(value)
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"{value!r} is not a finite number") from None


def _epsilon(value: object) -> Fraction:
    eps = _exact(value)
    if eps < 0:
        raise ValueError(f"epsilon must not be negative, got {decimal_text(eps)}")
    if (eps * MICRO).denominator != 1:
        raise ValueError(f"epsilon {decimal_text(eps)} is finer than one micro-epsilon (0.000001)")
    return eps


def _positive_epsilon(value: object) -> Fraction:
    eps = _epsilon(value)
    if eps == 0:
        raise ValueError("epsilon must be greater than 0")
    return eps


def _probability(value: object) -> Fraction:
    p = _exact(value)
    if not 0 < p < 1:
        raise ValueError(f"delta must be strictly between 0 and 1, got {decimal_text(p)}")
    return p


def decimal_text(value: Fraction) -> str:
    """Exact decimal text of a fraction whose denominator divides a power of ten, else ``p/q``."""
    d = value.denominator
    while d % 2 == 0:
        d //= 2
    while d % 5 == 0:
        d //= 5
    if d != 1:
        return f"{value.numerator}/{value.denominator}"
    text = format(Decimal(value.numerator) / Decimal(value.denominator), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def micro_epsilon(value: Fraction) -> int:
    """An epsilon as integer micro-epsilon (exact: the model refuses finer values)."""
    micro = value * MICRO
    if micro.denominator != 1:
        raise PolicyError("policy.invalid", f"epsilon {decimal_text(value)} is not a whole number of micro-epsilon")
    return int(micro)


def _number_type(check: Callable[[object], Fraction], schema: dict[str, Any]) -> Any:
    return Annotated[
        Fraction,
        BeforeValidator(check),
        PlainSerializer(decimal_text, return_type=str, when_used="json"),
        WithJsonSchema({"type": "number", **schema}),
    ]


Epsilon = _number_type(_positive_epsilon, {"exclusiveMinimum": 0})
NonNegativeEpsilon = _number_type(_epsilon, {"minimum": 0})
Delta = _number_type(_probability, {"exclusiveMinimum": 0, "exclusiveMaximum": 1})


# --- lists that are sets ---------------------------------------------------------------------------


def _duplicates(values: list[Any]) -> list[Any]:
    seen: list[Any] = []
    dups = []
    for v in values:
        if v in seen and v not in dups:
            dups.append(v)
        seen.append(v)
    return dups


def _unique_kept(values: list[T]) -> list[T]:
    """Refuse duplicates, keep the order (the order of a public domain is its display order)."""
    dups = _duplicates(values)
    if dups:
        raise ValueError(f"duplicate value {dups[0]!r}")
    return values


def _unique_sorted(values: list[T]) -> list[T]:
    """Refuse duplicates and sort: the order of a set must never change what partners sign."""
    return sorted(_unique_kept(values))  # type: ignore[type-var]


def _scalars_to_text(values: object) -> object:
    """Domain values are text; YAML's ``true``/``12`` become ``"true"``/``"12"``."""
    if not isinstance(values, list):
        return values
    return [("true" if v else "false") if isinstance(v, bool) else str(v) if isinstance(v, int) else v for v in values]


PartnerId = Annotated[str, Field(pattern=ID_PATTERN)]
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
QualifiedDataset = Annotated[str, Field(pattern=QUALIFIED_DATASET)]
QualifiedColumn = Annotated[str, Field(pattern=QUALIFIED_COLUMN)]
Month = Annotated[str, Field(pattern=MONTH_PATTERN)]


def _set_of(item: Any, min_length: int = 0) -> Any:
    return Annotated[list[item], AfterValidator(_unique_sorted), Field(min_length=min_length)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


# --- sections ------------------------------------------------------------------------------------


class MonthRange(_Frozen):
    """An inclusive range of calendar months, expanded to every ``YYYY-MM`` in it."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, serialize_by_alias=True)

    from_: Month = Field(alias="from", description="First month, YYYY-MM.")
    to: Month = Field(description="Last month, YYYY-MM (inclusive).")

    @model_validator(mode="after")
    def _ordered(self) -> MonthRange:
        if self.from_ > self.to:
            raise ValueError(f"'from' {self.from_} is after 'to' {self.to}")
        if len(self.months()) > MAX_MONTHS:
            raise ValueError(f"a month range may span at most {MAX_MONTHS} months")
        return self

    def months(self) -> list[str]:
        y, m = int(self.from_[:4]), int(self.from_[5:])
        out: list[str] = []
        while (current := f"{y:04d}-{m:02d}") <= self.to and len(out) <= MAX_MONTHS:
            out.append(current)
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
        return out


DomainList = Annotated[
    list[str],
    BeforeValidator(_scalars_to_text),
    AfterValidator(_unique_kept),
    Field(min_length=1),
    WithJsonSchema({"type": "array", "minItems": 1, "items": {"type": ["string", "boolean", "integer"]}}),
]
Domain = Annotated[
    Union[Annotated[DomainList, Tag("list")], Annotated[MonthRange, Tag("range")]],  # noqa: UP007 - Tag needs Union
    Discriminator(lambda v: "range" if isinstance(v, dict | MonthRange) else "list"),
]


class Dimension(_Frozen):
    """A groupable attribute and its PUBLIC domain: the cells every grouped result covers."""

    domain: Domain = Field(
        description="Every value a result is reported for (zeros included): a list, or {from: YYYY-MM, to: YYYY-MM} for month."
    )
    description: str = Field(default="", description="What the dimension means (free text).")

    def values(self) -> list[str]:
        return self.domain.months() if isinstance(self.domain, MonthRange) else list(self.domain)


class MeasureBounds(_Frozen):
    """Clamp bounds of a summed column: each value is clamped into [min, max] before summing."""

    min: int = Field(description="Lower clamp bound (integer, e.g. whole euros).")
    max: int = Field(description="Upper clamp bound (integer). Sensitivity of a sum grows with max(|min|, |max|).")

    @model_validator(mode="after")
    def _ordered(self) -> MeasureBounds:
        if self.min > self.max:
            raise ValueError(f"min {self.min} is greater than max {self.max}")
        return self


class Join(_Frozen):
    """Approves joining every dataset of ``left`` with every dataset of ``right`` on ``hid``."""

    name: str = Field(default="", description="A label for reviewers; not used for decisions.")
    left: _set_of(QualifiedDataset, 1) = Field(description="Qualified datasets partner.dataset.")
    right: _set_of(QualifiedDataset, 1) = Field(description="Qualified datasets partner.dataset.")
    key: str = Field(default=JOIN_KEY, description="The join column: always the keyed identifier hid.")
    roles: _set_of(Role, 1) = Field(description="Partner roles whose analysts may use these joins: brand, dealer, finance.")

    def pairs(self) -> set[tuple[str, str]]:
        """Every approved unordered pair, as (smaller, larger) names; a dataset never pairs with itself."""
        return {(min(a, b), max(a, b)) for a in self.left for b in self.right if a != b}


class TemplateRule(_Frozen):
    """Who may run a query template, under which consent, grouped by which dimensions."""

    roles: _set_of(Role, 1) = Field(description="Partner roles whose analysts may run the template.")
    consent: _set_of(str, 1) = Field(
        description="Consent purposes a person must have granted (to the partner owning each row) for the row to count."
    )
    dimensions: _set_of(Name) = Field(default_factory=list, description="Dimensions the template may group by.")
    recipients: _set_of(PartnerId, 1) = Field(
        description="Partners that may receive this template's results (a result goes to its caller only, if listed)."
    )


class Privacy(_Frozen):
    """Thresholds, epsilon limits, budgets and contribution bounds."""

    min_threshold: int = Field(ge=1, description="Cells whose noisy person count is below this are suppressed.")
    max_epsilon_per_query: Epsilon = Field(description="Largest epsilon one query may spend.")
    monthly_budget_per_partner: Epsilon = Field(description="Epsilon each partner's analysts may spend per calendar month (UTC).")
    collaboration_monthly_cap: Epsilon = Field(description="Epsilon all partners together may spend per calendar month.")
    report_reservation: NonNegativeEpsilon = Field(
        description="Epsilon held back each month from the collaboration cap for the monthly report (charged once, to no partner)."
    )
    mechanism: Literal["laplace", "gaussian"] = Field(
        default="laplace", description="laplace: pure epsilon-DP; gaussian: discrete Gaussian under zCDP, needs delta."
    )
    delta: Delta | None = Field(default=None, description="Only with mechanism gaussian: the (epsilon, delta) target's delta.")
    max_groups_per_person: int = Field(default=4, ge=1, description="Cells one person may add to, per released vector.")
    max_rows_per_person: int = Field(default=50, ge=1, description="Rows one person may contribute per dataset.")

    @model_validator(mode="after")
    def _mechanism_delta(self) -> Privacy:
        if self.mechanism == "gaussian" and self.delta is None:
            raise ValueError("mechanism gaussian needs a delta (e.g. delta: 1.0e-7)")
        if self.mechanism == "laplace" and self.delta is not None:
            raise ValueError("delta applies only to mechanism gaussian; laplace is pure epsilon-DP")
        return self


class ReportSection(_Frozen):
    """One release of the monthly report."""

    name: Name = Field(description="Section id, e.g. funnel_by_month.")
    template: str = Field(description="The template this section runs.")
    epsilon: Epsilon = Field(description="Epsilon this section spends (charged to the report reservation).")
    dimensions: _set_of(Name) = Field(default_factory=list, description="Dimensions the section groups by.")
    params: dict[str, JsonValue] = Field(default_factory=dict, description="Template parameters, passed unchanged.")
    title: str | None = Field(default=None, description="A heading for the section in the report (default: its name).")
    recipients: _set_of(PartnerId) | None = Field(
        default=None,
        description="Partners that receive this section (a subset of the report's recipients; default: all of them). "
        "A recipient may receive a section its analysts could not run ad hoc: the report block is the permission.",
    )


class Report(_Frozen):
    """The monthly report: who receives it and what it releases."""

    recipients: _set_of(PartnerId, 1) = Field(description="Partners that receive the monthly report.")
    sections: list[ReportSection] = Field(min_length=1, description="Releases, in report order.")

    def epsilon_needed(self) -> Fraction:
        return sum((s.epsilon for s in self.sections), Fraction(0))

    def section(self, name: str) -> ReportSection | None:
        return next((s for s in self.sections if s.name == name), None)

    def recipients_of(self, section: ReportSection) -> list[str]:
        """Who receives ``section``: its own list, else every report recipient."""
        return list(section.recipients) if section.recipients is not None else list(self.recipients)


def _sorted_joins(joins: list[Join]) -> list[Join]:
    return sorted(joins, key=lambda j: (j.left, j.right, j.roles, j.key, j.name))


# --- the policy ----------------------------------------------------------------------------------


class Policy(_Frozen):
    """One collaboration's signed agreement. Cross-checks against partners/ live in ``checks``."""

    format: Literal[1] = Field(default=1, description="Policy file format version.")
    collaboration: PartnerId = Field(description="Collaboration id; the file is policies/<collaboration>.yaml.")
    title: str = Field(default="", description="Human title.")
    valid_from: Annotated[date, Strict(False)] = Field(description="First day (UTC) the policy may be used.")
    valid_until: Annotated[date, Strict(False)] = Field(description="Last day (UTC, inclusive) the policy may be used.")
    partners: _set_of(PartnerId, 1) = Field(description="Participating partners; every one must sign.")
    datasets: _set_of(QualifiedDataset, 1) = Field(description="Datasets in scope, as partner.dataset.")
    consent_purposes: _set_of(Name, 1) = Field(description="Consent purposes known to this collaboration.")
    joins: Annotated[list[Join], AfterValidator(_sorted_joins)] = Field(default_factory=list, description="Approved joins.")
    dimensions: dict[Name, Dimension] = Field(description="Groupable dimensions with their public domains.")
    measures: dict[QualifiedColumn, MeasureBounds] = Field(default_factory=dict, description="Summable columns and clamp bounds.")
    filterable: _set_of(Name) = Field(default_factory=list, description="Columns that may be compared to literals in filters.")
    templates: dict[str, TemplateRule] = Field(description="Allowed query templates: funnel, attribution, overlap, lifecycle, sql.")
    privacy: Privacy
    report: Report | None = Field(default=None, description="The monthly report; omit for none.")

    # -- helpers the gateway and engine call -------------------------------------------------------

    def template_rule(self, template: str) -> TemplateRule:
        """The rule for ``template``; refuses a template the policy does not allow at all."""
        if template not in KNOWN_TEMPLATES:
            raise QueryError("query.unknown_template", f"no template {template!r} (known: {', '.join(KNOWN_TEMPLATES)})")
        if template not in self.templates:
            raise PolicyError("policy.template_not_allowed", f"policy {self.collaboration} does not allow template {template!r}")
        return self.templates[template]

    def templates_for(self, role: str) -> list[str]:
        return sorted(t for t, rule in self.templates.items() if role in rule.roles)

    def join_approved(self, a: str, b: str, role: str) -> bool:
        """True when ``role`` may join datasets ``a`` and ``b`` (on hid). Not a join: ``a == b`` in scope."""
        if a == b:
            return a in self.datasets
        pair = (min(a, b), max(a, b))
        return any(role in j.roles and pair in j.pairs() for j in self.joins)

    def joins_for(self, role: str) -> frozenset[frozenset[str]]:
        """Every dataset pair ``role`` may join (the shape ``engine.Scope.approved_joins`` takes)."""
        return frozenset(frozenset(pair) for j in self.joins if role in j.roles for pair in j.pairs())

    def approved_joins(self) -> set[tuple[str, str, str]]:
        """Every (dataset, dataset, role) triple the policy approves, datasets in sorted order."""
        return {(a, b, role) for j in self.joins for a, b in j.pairs() for role in j.roles}

    def domain(self, dimension: str) -> list[str]:
        """The public domain of ``dimension`` (month ranges expanded to every YYYY-MM)."""
        if dimension not in self.dimensions:
            known = ", ".join(sorted(self.dimensions))
            raise PolicyError("policy.dimension_not_allowed", f"{dimension!r} has no public domain in the policy (groupable: {known})")
        return self.dimensions[dimension].values()

    def measure_bounds(self, qualified_column: str) -> tuple[int, int]:
        """Clamp bounds of ``partner.dataset.column``; refuses a column without bounds."""
        bounds = self.measures.get(qualified_column)
        if bounds is None:
            known = ", ".join(sorted(self.measures)) or "none"
            raise PolicyError("policy.measure_not_allowed", f"{qualified_column!r} is not a measure with clamp bounds (measures: {known})")
        return bounds.min, bounds.max

    def in_scope(self, dataset: str) -> bool:
        return dataset in self.datasets

    def require_in_scope(self, dataset: str) -> None:
        if dataset not in self.datasets:
            raise PolicyError("policy.dataset_not_in_scope", f"{dataset!r} is not in the scope of {self.collaboration}")

    def is_filterable(self, column: str) -> bool:
        return column in self.filterable and column != JOIN_KEY

    def valid_on(self, day: date) -> bool:
        return self.valid_from <= day <= self.valid_until


MODEL_FIELD_NAMES: frozenset[str] = frozenset(
    name
    for model in (Policy, Privacy, TemplateRule, Join, MeasureBounds, Dimension, MonthRange, Report, ReportSection)
    for name in model.model_fields
) - {"from_"} | {"from"}

__all__ = [
    "DERIVED_DIMENSIONS",
    "KNOWN_TEMPLATES",
    "MICRO",
    "Dimension",
    "Join",
    "MeasureBounds",
    "MonthRange",
    "Policy",
    "Privacy",
    "Report",
    "ReportSection",
    "TemplateRule",
    "decimal_text",
    "micro_epsilon",
]
