"""SQL text building blocks: quoting, CTE assembly, and the full-public-domain part select.

Every literal and identifier the engine writes passes through :func:`lit` or :func:`ident`, so a
domain value or a filter value can never close a string or smuggle SQL. The engine builds SQL as
text (not sqlglot trees) because the golden fixtures are meant to be read by a reviewer: the SQL
here is formatted for people first.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone

from cleanroom.errors import InternalError

_IDENT = re.compile(r"^[a-z][a-z0-9_]{0,62}$")

# DuckDB 1.5.5 reserved keywords (``duckdb_keywords()`` category 'reserved'): an identifier equal
# to one of them must be double-quoted.
_RESERVED = frozenset(
    "all analyse analyze and any array as asc asymmetric both case cast check collate column "
    "constraint create default deferrable desc describe distinct do else end except false fetch "
    "for foreign from group having in initially intersect into lambda lateral leading limit not "
    "null offset on only or order pivot pivot_longer pivot_wider placing primary qualify "
    "references returning select show some summarize symmetric table then to trailing true union "
    "unique unpivot using variadic when where window with".split()
)

INDENT = "  "


def ident(name: str) -> str:
    """An identifier from a partner file or the engine itself (validated, quoted if reserved)."""
    if not _IDENT.match(name):
        raise InternalError("internal.invariant", f"refusing to write identifier {name!r} into SQL")
    return f'"{name}"' if name in _RESERVED else name


def lit(value: str) -> str:
    """A SQL string literal; the only quote character in DuckDB string literals is ``'``."""
    if "\x00" in value:
        raise InternalError("internal.invariant", "refusing to write a NUL byte into SQL")
    return "'" + value.replace("'", "''") + "'"


def lit_list(values: Sequence[str]) -> str:
    return "(" + ", ".join(lit(v) for v in values) + ")"


def ts_lit(moment: datetime) -> str:
    """A TIMESTAMP literal in UTC; stored timestamps are naive UTC microseconds."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return f"TIMESTAMP '{moment.isoformat(sep=' ')}'"


def date_lit(day: date) -> str:
    return f"DATE '{day.isoformat()}'"


def indent(text: str, depth: int = 1) -> str:
    pad = INDENT * depth
    return "\n".join(pad + line if line else line for line in text.splitlines())


@dataclass(frozen=True)
class Cte:
    """One named step of a statement. ``materialized`` for steps read by several parts."""

    name: str
    body: str
    comment: str = ""
    materialized: bool = False


def with_query(ctes: Sequence[Cte], final: str) -> str:
    """Assemble ``WITH a AS (...), b AS (...) <final>`` with one CTE per block."""
    names = [c.name for c in ctes]
    if len(set(names)) != len(names):
        raise InternalError("internal.invariant", f"duplicate CTE names in {names}")
    blocks = []
    for cte in ctes:
        head = f"-- {cte.comment}\n" if cte.comment else ""
        mat = " MATERIALIZED" if cte.materialized else ""
        blocks.append(f"{head}{ident(cte.name)} AS{mat} (\n{indent(cte.body)}\n)")
    return "WITH\n" + ",\n".join(blocks) + "\n" + final


def union_all(selects: Sequence[str]) -> str:
    return "\nUNION ALL\n".join(selects)


def values(rows: Sequence[Sequence[int | str]]) -> str:
    """A VALUES list; ints are written bare, strings as literals."""
    def one(v: int | str) -> str:
        return str(v) if isinstance(v, int) else lit(v)

    return "(VALUES " + ", ".join("(" + ", ".join(one(v) for v in row) + ")" for row in rows) + ")"


def str_list(values_: Sequence[str]) -> str:
    """A DuckDB list literal of strings: ``['a', 'b']``."""
    return "[" + ", ".join(lit(v) for v in values_) + "]"


def position(domain: Sequence[str], expr: str) -> str:
    """The 1-based ordinal of ``expr`` in a public domain, NULL when outside it."""
    return f"list_position({str_list(domain)}, {expr})"
