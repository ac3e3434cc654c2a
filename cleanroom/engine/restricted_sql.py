"""Restricted SQL: the long tail of questions, as one allow-listed aggregate shape.

The caller's text never reaches DuckDB. It is parsed with ``sqlglot.parse`` (never
``parse_one``: ``SELECT 1; COPY ...`` parses as two statements there and as a ``Block`` in
``parse_one``), checked node by node against an allow-list, and then re-written by the same
builder as the templates (consent, row bound, groups-per-person bound, clamping, full public
domain). What is allowed, and nothing else:

    SELECT <dimension>..., COUNT(DISTINCT pid) [AS a], SUM(<measure>) [AS b] ...
    FROM <entitled view> [AS x] [JOIN <entitled view> [AS y] USING (pid)]...
    [WHERE <filterable column> = 'literal' | <filterable column> IN ('a', 'b') [AND ...]]
    [GROUP BY <dimension>, ...]

Views are the scope's (no catalog or schema qualifier, no table function, no consent dataset),
every pair of joined views must be an approved join, grouped columns need a public domain, each
SUM needs clamp bounds. Anything else is ``query.sql_rejected`` naming the construct.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import sqlglot
from sqlglot import exp

from cleanroom.aggregate import Bounds
from cleanroom.engine._sql import Cte, ident, lit_list, position
from cleanroom.engine.builder import Builder, Params, parse_params
from cleanroom.engine.compiled import CompiledQuery, PartPlan, PartSpec, axis, cross_cells
from cleanroom.engine.scope import DatasetRef, Scope
from cleanroom.engine.views import PERSON, views_for
from cleanroom.errors import PolicyError, QueryError

TEMPLATE = "sql"
MAX_SQL_CHARS = 10_000
MAX_SQL_TOKENS = 2_000
MAX_SQL_DEPTH = 16  # nested parentheses, or operators such as NOT chained without them
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_SELECT_ARGS = {"expressions", "from_", "joins", "where", "group"}


class SqlParams(Params):
    sql: str


def reject(construct: str, message: str) -> QueryError:
    return QueryError("query.sql_rejected", f"restricted SQL: {message}", construct=construct)


@dataclass
class _Table:
    alias: str
    ref: DatasetRef
    groups: list[tuple[int, str]] = field(default_factory=list)  # (group index, column)
    measures: list[tuple[int, str]] = field(default_factory=list)  # (aggregate index, column)
    filters: list[tuple[str, list[str]]] = field(default_factory=list)


@dataclass
class _Agg:
    name: str
    table: str | None = None  # None: COUNT(DISTINCT pid)
    column: str | None = None


@dataclass
class _Query:
    tables: dict[str, _Table]
    groups: list[tuple[str, str]] = field(default_factory=list)  # (table alias, column)
    aggs: list[_Agg] = field(default_factory=list)


def compile_sql(raw: dict[str, Any], scope: Scope) -> CompiledQuery:
    """Compile ``{"sql": "..."}`` into the same bounded form as a template."""
    params = parse_params(SqlParams, TEMPLATE, raw)
    query = analyze(params.sql, scope)
    return _rewrite(query, params, scope)


# --- parse and allow-list -----------------------------------------------------------------


def parse_select(sql: str) -> exp.Select:
    """Exactly one statement, and it is a plain SELECT (trailing ``;`` and comments are fine)."""
    if len(sql) > MAX_SQL_CHARS:
        raise reject("length", f"the query exceeds {MAX_SQL_CHARS} characters")
    _check_shape(sql)
    try:
        trees = sqlglot.parse(sql, read="duckdb")
    except sqlglot.errors.SqlglotError as exc:
        raise reject("syntax", f"cannot parse: {str(exc).splitlines()[0]}") from None
    except RecursionError:  # unreachable after _check_shape; never a 500 if it is not
        raise reject("depth", f"the query nests deeper than {MAX_SQL_DEPTH} levels") from None
    trees = [t for t in trees if t is not None and not isinstance(t, exp.Semicolon)]
    if len(trees) != 1:
        raise reject("statements", f"exactly one statement is allowed, found {len(trees)}")
    tree = trees[0]
    if not isinstance(tree, exp.Select):
        raise reject(type(tree).__name__, f"only SELECT is allowed, not {type(tree).__name__.upper()}")
    for key, value in tree.args.items():
        if key not in _SELECT_ARGS and value not in (None, False, []):
            raise reject(key.rstrip("_"), f"{key.rstrip('_').upper()} is not allowed")
    return tree


def _check_shape(sql: str) -> None:
    """Bound tokens and nesting on the flat token stream, before the recursive parser sees them.

    Why: the parser and the allow-list walk recurse once per nesting level, so ``((((...))))`` or
    ``NOT NOT NOT ...`` 45 levels deep ended in a RecursionError (a 500 with a 3,000-line trace).
    The tokenizer is iterative; counting on its output costs nothing and refuses such input cleanly.
    """
    try:
        tokens = sqlglot.tokenize(sql, read="duckdb")
    except sqlglot.errors.SqlglotError as exc:
        raise reject("syntax", f"cannot parse: {str(exc).splitlines()[0]}") from None
    if len(tokens) > MAX_SQL_TOKENS:
        raise reject("length", f"the query has {len(tokens)} tokens; at most {MAX_SQL_TOKENS} are allowed")
    depth = deepest = chain = 0
    for token in tokens:
        kind = token.token_type.name
        depth += 1 if kind == "L_PAREN" else -1 if kind == "R_PAREN" else 0
        chain = chain + 1 if kind in ("NOT", "DASH", "PLUS", "TILDA") else 0
        deepest = max(deepest, depth + chain)
        if deepest > MAX_SQL_DEPTH:
            raise reject("depth", f"the query nests deeper than {MAX_SQL_DEPTH} levels (parentheses or chained operators)")


def analyze(sql: str, scope: Scope) -> _Query:
    tree = parse_select(sql)
    query = _Query(tables=_tables(tree, scope))
    _group_by(tree, query, scope)
    _select_list(tree, query, scope)
    _where(tree, query, scope)
    return query


def _tables(tree: exp.Select, scope: Scope) -> dict[str, _Table]:
    source = tree.args.get("from_")
    if source is None:
        raise reject("from", "a FROM clause naming an entitled view is required")
    views = views_for(scope)
    tables: dict[str, _Table] = {}
    for node in [source.this] + [_join(j) for j in tree.args.get("joins") or []]:
        table = _table(node, views, scope)
        if table.alias in tables or table.ref.qualified in {t.ref.qualified for t in tables.values()}:
            raise reject("self_join", f"{table.ref.view!r} or its alias {table.alias!r} appears twice; each view may be used once")
        tables[table.alias] = table
    qualified = [t.ref.qualified for t in tables.values()]
    for i, a in enumerate(qualified):
        for c in qualified[i + 1 :]:
            scope.require_join(a, c, "restricted SQL")
    return tables


def _join(node: exp.Join) -> exp.Expression:
    if node.args.get("on") is not None or node.side or (node.kind or "").upper() not in ("", "INNER") or node.args.get("method"):
        raise reject("join", "only [INNER] JOIN ... USING (pid) is allowed")
    using = node.args.get("using") or []
    if [getattr(u, "name", "").lower() for u in using] != [PERSON]:
        raise reject("join", "joins must be USING (pid)")
    return node.this


def _table(node: exp.Expression, views: dict[str, str], scope: Scope) -> _Table:
    if not isinstance(node, exp.Table) or not isinstance(node.this, exp.Identifier):
        raise reject("table", f"only entitled view names may be read, not {node.sql(dialect='duckdb')!r}")
    extra = [k for k, v in node.args.items() if k not in ("this", "alias") and v not in (None, False, [])]
    if extra:
        raise reject(extra[0], f"{node.sql(dialect='duckdb')!r}: {extra[0]} qualifiers are not allowed")
    name = node.name.lower()
    if name not in views or scope.datasets[views[name]].is_consent:
        raise reject("table", f"{name!r} is not a view this query may read")
    alias = node.args.get("alias")
    if alias is not None and alias.args.get("columns"):
        raise reject("alias", "column aliases on tables are not allowed")
    return _Table(alias=(alias.name.lower() if alias is not None else name), ref=scope.datasets[views[name]])


def _column(node: exp.Expression, query: _Query, what: str) -> tuple[str, str]:
    """Resolve a column to (table alias, column name); bare names must be unambiguous."""
    if not isinstance(node, exp.Column) or not isinstance(node.this, exp.Identifier) or node.args.get("db") or node.args.get("catalog"):
        raise reject(what, f"{what}: expected a column, got {node.sql(dialect='duckdb')!r}")
    name, table = node.name.lower(), node.table.lower()
    if name == PERSON:
        raise reject(what, f"{what}: pid may only be counted, as COUNT(DISTINCT pid)")
    if table:
        if table not in query.tables:
            raise reject(what, f"{what}: unknown table {table!r}")
        owners = [table] if name in query.tables[table].ref.columns else []
    else:
        owners = [a for a, t in query.tables.items() if name in t.ref.columns]
    if len(owners) != 1:
        raise reject(what, f"{what}: column {name!r} is {'ambiguous' if owners else 'unknown'}")
    return owners[0], name


def _group_by(tree: exp.Select, query: _Query, scope: Scope) -> None:
    group = tree.args.get("group")
    if group is None:
        return
    extra = [k for k, v in group.args.items() if k != "expressions" and v not in (None, False, [])]
    if extra:
        raise reject(extra[0], f"GROUP BY {extra[0].upper()} is not allowed")
    for node in group.expressions:
        alias, col = _column(node, query, "group by")
        table = query.tables[alias]
        if table.ref.columns[col] != "dimension":
            raise PolicyError("policy.dimension_not_allowed", f"restricted SQL: {table.ref.qualified}.{col} is not a dimension", dimension=col)
        scope.domain(col, TEMPLATE)
        if col in (c for _, c in query.groups):
            raise reject("group by", f"{col!r} is grouped twice (one column per dimension)")
        table.groups.append((len(query.groups), col))
        query.groups.append((alias, col))


def _select_list(tree: exp.Select, query: _Query, scope: Scope) -> None:
    selected: list[tuple[str, str]] = []
    for node in tree.expressions:
        name = None
        if isinstance(node, exp.Alias):
            name, node = node.alias.lower(), node.this
            if not _NAME.match(name):
                raise reject("alias", f"alias {name!r} must match {_NAME.pattern}")
        if isinstance(node, exp.Column):
            selected.append(_column(node, query, "select"))
        elif isinstance(node, exp.Count):
            query.aggs.append(_count(node, name))
        elif isinstance(node, exp.Sum):
            query.aggs.append(_sum(node, name, query, scope))
        else:
            raise reject(type(node).__name__, f"{node.sql(dialect='duckdb')!r} is not allowed; use COUNT(DISTINCT pid) or SUM(measure)")
    if set(selected) != set(query.groups) or len(selected) != len(query.groups):
        raise reject("group by", "the selected columns must be exactly the GROUP BY columns")
    if not query.aggs:
        raise reject("aggregate", "at least one COUNT(DISTINCT pid) or SUM(measure) is required")
    names = [a.name for a in query.aggs]
    if len(set(names)) != len(names):
        raise reject("alias", f"output names must be distinct, got {names}")


def _count(node: exp.Count, name: str | None) -> _Agg:
    inner = node.this
    ok = isinstance(inner, exp.Distinct) and len(inner.expressions) == 1
    col = inner.expressions[0] if ok else None
    if not (isinstance(col, exp.Column) and col.name.lower() == PERSON and not col.args.get("db")):
        raise reject("count", f"{node.sql(dialect='duckdb')!r}: only COUNT(DISTINCT pid) is allowed")
    return _Agg(name=name or "persons")


def _sum(node: exp.Sum, name: str | None, query: _Query, scope: Scope) -> _Agg:
    alias, col = _column(node.this, query, "sum")
    table = query.tables[alias]
    key = f"{table.ref.qualified}.{col}"
    if table.ref.columns[col] != "measure":
        raise reject("sum", f"SUM({col}): {table.ref.qualified}.{col} is not a measure")
    if key not in scope.measure_bounds:
        raise reject("sum", f"SUM({col}): the policy gives {key} no clamp bounds")
    table.measures.append((len(query.aggs), col))
    return _Agg(name=name or f"sum_{col}", table=alias, column=col)


def _where(tree: exp.Select, query: _Query, scope: Scope) -> None:
    where = tree.args.get("where")
    if where is None:
        return
    for pred in _conjuncts(where.this):
        if isinstance(pred, exp.EQ):
            column, literals = (pred.this, [pred.expression]) if isinstance(pred.this, exp.Column) else (pred.expression, [pred.this])
        elif isinstance(pred, exp.In) and not pred.args.get("query") and not pred.args.get("unnest") and not pred.args.get("field"):
            column, literals = pred.this, pred.expressions
        else:
            raise reject("where", f"{pred.sql(dialect='duckdb')!r}: only column = 'literal' and column IN ('a', ...) joined by AND")
        alias, col = _column(column, query, "where")
        _add_filter(query.tables[alias], col, [_literal(x) for x in literals], scope)


def _conjuncts(node: exp.Expression) -> list[exp.Expression]:
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.And):
        return _conjuncts(node.this) + _conjuncts(node.expression)
    return [node]


def _literal(node: exp.Expression) -> str:
    if not isinstance(node, exp.Literal) or not node.is_string:
        raise reject("literal", f"{node.sql(dialect='duckdb')!r}: filters compare with string literals only")
    return str(node.this)


def _add_filter(table: _Table, col: str, values_: list[str], scope: Scope) -> None:
    q = table.ref.qualified
    if table.ref.columns[col] != "dimension" or not scope.is_filterable(col, q):
        raise PolicyError("policy.filter_not_allowed", f"restricted SQL: the policy does not allow filtering {q} on {col!r}", column=f"{q}.{col}")
    domain = scope.domains.get(col)
    unknown = [v for v in values_ if domain is not None and v not in domain]
    if unknown:
        raise reject("literal", f"{col} {unknown} not in its public domain")
    table.filters.append((col, values_))


# --- rewrite into the bounded form ---------------------------------------------------------


def _rewrite(query: _Query, params: SqlParams, scope: Scope) -> CompiledQuery:
    b = Builder(scope, TEMPLATE)
    tables = list(query.tables.values())
    domains = [scope.domain(col, TEMPLATE) for _, col in query.groups]
    for i, t in enumerate(tables):
        b.source(f"t{i}", t.ref, _source_columns(t, domains, scope), [f"CAST({ident(c)} AS VARCHAR) IN {lit_list(v)}" for c, v in t.filters])
    g = [f"g{j}" for j in range(len(query.groups))]
    b.add(Cte("joined", _joined_sql(tables, query, g)))
    _cells(b, g, tables, scope.max_groups_per_person)
    axes = [axis(d) for d in domains]
    cells = cross_cells(axes)
    reach = min(scope.max_groups_per_person, len(cells))
    specs = _count_spec(b, query, g, axes, cells, reach)
    guard = specs[0].plan.name
    for k, agg in enumerate(query.aggs):
        if agg.column is not None:
            lo, hi = scope.measure_bounds[f"{query.tables[agg.table or ''].ref.qualified}.{agg.column}"]
            bounds = Bounds(kind="sum", max_cells_per_person=reach, max_rows_per_cell=scope.max_rows_per_person, lower=lo, upper=hi)
            specs.append(_sum_spec(b, (agg.name, k), g, axes, len(tables), bounds, guard))
    specs = _ordered(specs, query)
    meta = {"columns": [c for _, c in query.groups] + [a.name for a in query.aggs], "weights": {s.plan.name: s.plan.weight for s in specs}}
    return b.compiled(params, [c for _, c in query.groups], specs, meta)


def _source_columns(t: _Table, domains: list[list[str]], scope: Scope) -> list[str]:
    cols = [PERSON, f"CAST({ident(t.ref.event_time)} AS TIMESTAMP) AS ts"]
    cols += [f"{position(domains[j], f'CAST({ident(c)} AS VARCHAR)')} AS g{j}" for j, c in t.groups]
    for k, c in t.measures:
        lo, hi = scope.measure_bounds[f"{t.ref.qualified}.{c}"]
        cols.append(f"least(greatest({ident(c)}, {lo}), {hi}) AS m{k}")
    return cols


def _joined_sql(tables: list[_Table], query: _Query, g: list[str]) -> str:
    owner = {j: f"t{i}" for i, t in enumerate(tables) for j, _ in t.groups}
    measures = [f"t{i}.m{k}" for i, t in enumerate(tables) for k, _ in t.measures]
    cols = [f"t0.{PERSON}"] + [f"t{i}.ts AS ts{i}" for i in range(len(tables))] + [f"{owner[j]}.g{j}" for j in range(len(g))] + measures
    joins = "".join(f"\nJOIN t{i} USING ({PERSON})" for i in range(1, len(tables)))
    known = ("\nWHERE " + " AND ".join(f"{x} IS NOT NULL" for x in g)) if g else ""
    return f"SELECT {', '.join(cols)}\nFROM t0{joins}{known}"


def _cells(b: Builder, g: list[str], tables: list[_Table], groups: int) -> None:
    """Each person's cells, at most ``groups`` of them (earliest first)."""
    if not g:
        b.add(Cte("cells", f"SELECT DISTINCT {PERSON}\nFROM joined"))
        return
    keys = ", ".join([PERSON, *g])
    order = ", ".join(["min(ts0)", *g])
    body = f"SELECT {keys}\nFROM joined\nGROUP BY {keys}\nQUALIFY row_number() OVER (PARTITION BY {PERSON} ORDER BY {order}) <= {groups}"
    b.add(Cte("cells", body, materialized=True))


def _count_spec(b: Builder, query: _Query, g: list[str], axes: list[Any], cells: list[Any], reach: int) -> list[PartSpec]:
    """The distinct-person count: asked for, or added as the guard of the sums."""
    asked = [a for a in query.aggs if a.column is None]
    taken = {a.name for a in query.aggs}
    name = asked[0].name if asked else ("persons" if "persons" not in taken else "persons_guard")
    keys = ", ".join(f"{x} AS k{j}" for j, x in enumerate(g))
    group = f"\nGROUP BY {', '.join(g)}" if g else ""
    b.add(Cte("agg_count", f"SELECT {keys + ', ' if g else ''}count(*) AS n\nFROM cells{group}"))
    plan = PartPlan(name=name, cells=cells, bounds=Bounds(kind="count", max_cells_per_person=reach), weight=1)
    specs = [PartSpec(plan=plan, agg="agg_count", axes=axes)]
    for extra in asked[1:]:
        specs.append(PartSpec(plan=plan.model_copy(update={"name": extra.name}), agg="agg_count", axes=axes))
    return specs


def _sum_spec(b: Builder, measure: tuple[str, int], g: list[str], axes: list[Any], n_tables: int, bounds: Bounds, guard: str) -> PartSpec:
    """A clamped sum: only the person's bounded cells, at most ``max_rows_per_cell`` rows each."""
    name, k = measure
    cells = cross_cells(axes)
    order = ", ".join([f"ts{i}" for i in range(n_tables)] + [f"m{k}"])
    part = ", ".join([PERSON, *g])
    using = f"\nJOIN cells USING ({part})" if g else ""
    rows = f"SELECT *\nFROM joined{using}\nQUALIFY row_number() OVER (PARTITION BY {part} ORDER BY {order}) <= {bounds.max_rows_per_cell}"
    keys = ", ".join(f"{x} AS k{j}" for j, x in enumerate(g))
    group = f"\nGROUP BY {', '.join(g)}" if g else ""
    b.add(Cte(f"rows_m{k}", rows))
    b.add(Cte(f"agg_m{k}", f"SELECT {keys + ', ' if g else ''}sum(m{k}) AS n\nFROM rows_m{k}{group}"))
    plan = PartPlan(name=name, cells=cells, bounds=bounds, weight=1, guard=guard, guard_cells=list(range(len(cells))))
    return PartSpec(plan=plan, agg=f"agg_m{k}", axes=axes)


def _ordered(specs: list[PartSpec], query: _Query) -> list[PartSpec]:
    """Parts in the order the caller wrote the aggregates; an added guard goes first."""
    rank = {a.name: i for i, a in enumerate(query.aggs)}
    return sorted(specs, key=lambda s: rank.get(s.plan.name, -1))


__all__ = ["MAX_SQL_CHARS", "SqlParams", "analyze", "compile_sql", "parse_select"]
