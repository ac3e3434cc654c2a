"""The passes every template shares: consented + row-bounded sources, dimensions, filters, joins.

A template asks the :class:`Builder` for sources; the builder adds the owning partner's consent
set (once per partner) and the per-person row bound, and records every dataset read and every
join made, so the compiled query can state exactly what it touched. Templates never write a
``FROM <view>`` themselves: that is what guarantees every read is consent-filtered and bounded.
With ``scope.consent_applied`` the consent filter has already been applied by the store (its
views hold consented rows only, see docs/explanation/storage.md) and the builder omits it.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from cleanroom.engine._sql import Cte, ident, indent, lit, lit_list
from cleanroom.engine.compiled import CompiledQuery, PartSpec, release_statement
from cleanroom.engine.consent import consent_cte, consent_predicate, consent_qualified
from cleanroom.engine.scope import DatasetRef, Scope
from cleanroom.engine.views import PERSON
from cleanroom.errors import PolicyError, QueryError

DERIVED_DIMENSIONS = ("month", "dealer_group")


class Params(BaseModel):
    """Base of every template's parameters: frozen, and unknown fields are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")


P = TypeVar("P", bound=Params)


def parse_params(model: type[P], template: str, params: dict[str, Any]) -> P:
    """Validate raw parameters; the error names the first bad field and what is wrong with it."""
    if not isinstance(params, dict):
        raise QueryError("query.invalid_params", f"{template}: parameters must be an object")
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        err = exc.errors()[0]
        # Union members appear in ``loc`` as type names ("list[str]"): not fields, so dropped.
        loc = ".".join(str(p) for p in err["loc"] if not (isinstance(p, str) and "[" in p)) or "(parameters)"
        raise QueryError("query.invalid_params", f"{template}: {loc}: {err['msg']}", field=loc) from None


def dim_expr(ref: DatasetRef, dim: str) -> str | None:
    """SQL for a dimension's value on a row of ``ref`` (VARCHAR), or None if ``ref`` lacks it.

    ``month`` is the YYYY-MM of the event time; ``dealer_group`` is the dealer partner's id.
    """
    if dim == "month":
        return f"strftime({ident(ref.event_time)}, '%Y-%m')"
    if dim == "dealer_group":
        return lit(ref.partner) if ref.partner_role == "dealer" else None
    if ref.columns.get(dim) == "dimension":
        return f"CAST({ident(dim)} AS VARCHAR)"
    return None


def check_filters(scope: Scope, filters: dict[str, list[str]], template: str) -> None:
    """Filter values must come from the dimension's public domain (unknown values are typos)."""
    for dim, wanted in filters.items():
        domain = scope.domain(dim, template)
        unknown = [v for v in wanted if v not in domain]
        if unknown:
            raise QueryError(
                "query.invalid_params", f"{template}: filters.{dim}: {unknown} not in the public domain {domain}", field=f"filters.{dim}"
            )


def filter_predicates(scope: Scope, ref: DatasetRef, filters: dict[str, list[str]], template: str) -> list[str] | None:
    """``expr IN (...)`` per filter, or None when ``ref`` lacks a filtered dimension."""
    preds = []
    for dim, wanted in filters.items():
        expr = dim_expr(ref, dim)
        if expr is None:
            return None
        if not scope.is_filterable(dim, ref.qualified):
            raise PolicyError(
                "policy.filter_not_allowed",
                f"{template}: the policy does not allow filtering {ref.qualified} on {dim!r}",
                column=f"{ref.qualified}.{dim}",
            )
        preds.append(f"{expr} IN {lit_list(wanted)}")
    return preds


class Builder:
    """Collects the CTEs of one statement; records every dataset read and join made."""

    def __init__(self, scope: Scope, template: str) -> None:
        self.scope = scope
        self.template = template
        self._consent: dict[str, Cte] = {}
        self._ctes: list[Cte] = []
        self.datasets: set[str] = set()
        self.joins: set[tuple[str, str]] = set()

    def source(self, name: str, ref: DatasetRef, select: list[str], where: list[str] | None = None, bound_rows: bool = True) -> str:
        """Consented rows of one dataset, at most ``max_rows_per_person`` per person (earliest first).

        The row bound comes before any grouping or joining, over a total order (event time,
        then every other column), so which rows survive is deterministic. Ranking every row is
        the costly part (a sort of the whole dataset), so only persons above the bound are
        ranked; everyone else's rows pass unchanged, which gives the same rows several times faster.
        Consent is a per-person filter and commutes with the per-person bound. The bound is left
        out where it cannot remove a row (:meth:`bound_is_identity`).
        """
        self.datasets.add(ref.qualified)
        view, cols = ident(ref.view), ", ".join(select)
        filters = list(where or [])
        if bound_rows and not self.bound_is_identity(ref):
            rows = self._bounded_rows(name, ref, cols, filters)
        else:
            rows = f"SELECT {cols}\nFROM {view}" + ("\nWHERE " + "\n  AND ".join(filters) if filters else "")
        consent = self._consent_for(ref) if self.scope.consent_purposes else None
        if consent is not None:
            rows = f"SELECT *\nFROM (\n{indent(rows)}\n)\nWHERE {consent}"
        cap = f", at most {self.scope.max_rows_per_person} per person" if bound_rows else ""
        self.add(Cte(name, rows, comment=f"{ref.qualified}: consented rows{cap}"))
        return name

    def bound_is_identity(self, ref: DatasetRef) -> bool:
        """True when no person in the stored version has more rows than the bound keeps.

        The bound keeps at most k rows per person; when the store recorded at publish time that
        no person in this version has more than k rows, applying it is the identity, so the
        released function f(bounded(D)) is unchanged and skipping it only saves time. Filters and
        consent select subsets of the version's rows (the consented views too), so the recorded
        maximum bounds them as well. The decision uses a fact recorded at ingest, never a count
        made at query time, and it changes only timing, which the gateway does not expose
        precisely. The bounds declared to dp (the sensitivity) still come from the policy's k.
        Unknown (None) keeps the bound.
        """
        most = ref.max_rows_per_person
        return most is not None and most <= self.scope.max_rows_per_person

    def _bounded_rows(self, name: str, ref: DatasetRef, cols: str, filters: list[str]) -> str:
        view, cap = ident(ref.view), self.scope.max_rows_per_person
        heavy = f"{name}_heavy"
        body = f"SELECT {PERSON}\nFROM {view}\nGROUP BY {PERSON}\nHAVING count(*) > {cap}"
        self.add(Cte(heavy, body, comment=f"{ref.qualified}: persons with more than {cap} rows", materialized=True))
        order = ", ".join(ident(c) for c in ref.order_columns())

        def where(extra: str) -> str:
            return "\nWHERE " + "\n  AND ".join([*filters, extra])

        light = f"SELECT {cols}\nFROM {view}{where(f'{PERSON} NOT IN (SELECT {PERSON} FROM {heavy})')}"
        capped = (
            f"SELECT {cols}\nFROM {view}{where(f'{PERSON} IN (SELECT {PERSON} FROM {heavy})')}\n"
            f"QUALIFY row_number() OVER (PARTITION BY {PERSON} ORDER BY {order}) <= {cap}"
        )
        return f"(\n{indent(light)}\n)\nUNION ALL\n(\n{indent(capped)}\n)"

    def _consent_for(self, ref: DatasetRef) -> str | None:
        """The consent predicate of ``ref``'s rows, or None when the views already hold consented rows only.

        The consent CTE is built either way: it checks that the owner's consent dataset is in
        scope (a missing one is an error, never "nobody consented"), and the dataset is recorded as
        read because the answer depends on it. With ``consent_applied`` the CTE is not emitted.
        """
        if ref.partner not in self._consent:
            self._consent[ref.partner] = consent_cte(self.scope, ref.partner, needed_by=f"{self.template} over {ref.qualified}")
            self.datasets.add(consent_qualified(ref.partner))
        return None if self.scope.consent_applied else consent_predicate(ref.partner)

    def join(self, a: str, b: str, why: str) -> None:
        self.scope.require_join(a, b, f"{self.template}: {why}")
        if a != b:
            self.joins.add((min(a, b), max(a, b)))

    def add(self, cte: Cte) -> None:
        self._ctes.append(cte)

    def compiled(self, params: Params, dimensions: list[str], specs: list[PartSpec], meta: dict[str, Any]) -> CompiledQuery:
        consent = [] if self.scope.consent_applied else [self._consent[p] for p in sorted(self._consent)]
        return CompiledQuery(
            template=self.template,
            params=params.model_dump(mode="json"),
            dimensions=dimensions,
            sql=release_statement(consent + self._ctes, specs),
            parts=[s.plan for s in specs],
            datasets=sorted(self.datasets),
            joins=sorted(self.joins),
            meta=meta,
        )


__all__ = ["DERIVED_DIMENSIONS", "Builder", "Params", "check_filters", "dim_expr", "filter_predicates", "parse_params"]
