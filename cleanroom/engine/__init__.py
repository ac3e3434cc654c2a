"""The query engine: compile a template (or restricted SQL) into ONE bounded DuckDB statement,
run it, and return exact aggregates; plus the post-processing of a noisy result for people.

    scope = Scope(...)                          # built by the gateway from the active policy
    compiled = compile_query("funnel", {"dimensions": ["model"]}, scope)
    exact = execute(compiled, cursor)           # ExactResult: server-internal, never released
    ...                                          # cleanroom.dp adds noise -> NoisyResult
    table = present(noisy)                       # rows for the analyst

The engine never adds noise, never looks at noisy values to decide anything, and never returns
a row: every statement it writes ends in an aggregate over a public domain. The passes every
template shares (consent, row bound, groups bound, clamping, full domain) live in ``builder``,
``consent`` and ``compiled``; each template is one module under ``templates``.
"""

from __future__ import annotations

from typing import Any

from cleanroom.engine.compiled import CompiledQuery, PartPlan, execute, timed_execute
from cleanroom.engine.present import Presented, present
from cleanroom.engine.restricted_sql import compile_sql
from cleanroom.engine.scope import DatasetRef, Scope
from cleanroom.engine.templates import TEMPLATES
from cleanroom.engine.views import view_name, views_for
from cleanroom.errors import QueryError

TEMPLATE_NAMES: tuple[str, ...] = (*TEMPLATES, "sql")


def compile_query(template: str, params: dict[str, Any], scope: Scope) -> CompiledQuery:
    """Validate ``params`` against the template and ``scope``; return the bounded statement.

    ``template="sql"`` takes ``{"sql": "SELECT ..."}`` (restricted SQL). Unknown template:
    ``query.unknown_template``; bad parameters: ``query.invalid_params``; a dimension, join or
    filter the scope does not allow: the matching ``policy.*`` code.
    """
    if template == "sql":
        return compile_sql(params, scope)
    try:
        compiler = TEMPLATES[template]
    except KeyError:
        raise QueryError(
            "query.unknown_template", f"no template {template!r} (known: {', '.join(TEMPLATE_NAMES)})", template=template
        ) from None
    return compiler(params, scope)


__all__ = [
    "TEMPLATE_NAMES",
    "CompiledQuery",
    "DatasetRef",
    "PartPlan",
    "Presented",
    "Scope",
    "compile_query",
    "execute",
    "present",
    "timed_execute",
    "view_name",
    "views_for",
]
