"""Cross-checks against partners/: partners, datasets, joins, dimensions, measures, filters.

Every name a policy uses must exist in a partner file and carry the right semantic tag, because
the tag is what the engine trusts: a ``measure`` is summed within bounds, a ``dimension`` is
grouped over a public domain, and ``hid`` is the only column two datasets may meet on.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator

from cleanroom.partners import JOIN_KEY
from cleanroom.policy.checks.context import Context, check
from cleanroom.policy.issues import Issue, KeyPath
from cleanroom.policy.model import DERIVED_DIMENSIONS, MONTH_PATTERN, Join

FILTERABLE_TAGS = ("dimension", "timestamp", "measure")


def _suggest(value: str, known: list[str]) -> str:
    close = difflib.get_close_matches(value, known, n=1)
    return f"did you mean {close[0]!r}? " if close else ""


@check("partners")
def partners_known(ctx: Context) -> Iterator[Issue]:
    known = sorted(ctx.partners)
    for pid in ctx["partners"]:
        if pid not in ctx.partners:
            hint = _suggest(pid, known) + f"partners with a file in partners/: {', '.join(known)}"
            yield ctx.error("unknown-partner", ctx.item(("partners",), pid), f'unknown partner "{pid}"', hint)


def dataset_problem(ctx: Context, qualified: str) -> tuple[str, str, str] | None:
    """(check, message, hint) when ``qualified`` is not a known, participating dataset."""
    owner, _, name = qualified.partition(".")
    if owner not in ctx.sections.get("partners", []):
        return "unknown-partner", f'dataset "{qualified}" belongs to "{owner}", which is not a participating partner', "add the partner to partners: or remove the dataset"
    partner = ctx.partners.get(owner)
    if partner is None:
        return "unknown-partner", f'dataset "{qualified}" belongs to unknown partner "{owner}"', "every partner needs a file in partners/"
    if name not in partner.datasets:
        known = sorted(partner.datasets)
        return "unknown-dataset", f'unknown dataset "{qualified}": {owner} declares no dataset "{name}"', _suggest(name, known) + f"{owner} declares: {', '.join(known)}"
    return None


@check("partners", "datasets")
def datasets_known(ctx: Context) -> Iterator[Issue]:
    for qualified in ctx["datasets"]:
        problem = dataset_problem(ctx, qualified)
        if problem:
            yield ctx.error(problem[0], ctx.item(("datasets",), qualified), problem[1], problem[2])


@check("partners", "datasets")
def scope_covers_partners(ctx: Context) -> Iterator[Issue]:
    for pid in ctx["partners"]:
        owned = [d for d in ctx["datasets"] if d.partition(".")[0] == pid]
        path = ctx.item(("partners",), pid)
        if not owned:
            yield ctx.warning("scope", path, f"partner {pid} has no dataset in scope", "list its datasets under datasets: or drop the partner")
        elif f"{pid}.consent" not in owned and pid in ctx.partners and "consent" in ctx.partners[pid].datasets:
            msg = f"{pid}.consent is not in scope: none of {pid}'s rows can count for a template that requires consent"
            yield ctx.warning("scope", path, msg, f"add {pid}.consent to datasets:")


def _scope_issue(ctx: Context, qualified: str, path: KeyPath) -> Issue | None:
    problem = dataset_problem(ctx, qualified)
    if problem:
        return ctx.error(problem[0], path, problem[1], problem[2])
    if qualified not in ctx["datasets"]:
        return ctx.error("not-in-scope", path, f'"{qualified}" is not in scope (datasets:)', "add it to datasets: first")
    return None


@check("partners", "datasets", "joins")
def joins_in_scope_on_key(ctx: Context) -> Iterator[Issue]:
    for index, raw in enumerate(ctx.raw(("joins",)) or []):
        try:
            join = Join.model_validate(raw)
        except ValueError:
            continue
        for side in ("left", "right"):
            for qualified in getattr(join, side):
                path = ctx.item(("joins", index, side), qualified)
                if (issue := _scope_issue(ctx, qualified, path)) is not None:
                    yield issue
        yield from _join_key(ctx, join, ("joins", index, "key"))


def _join_key(ctx: Context, join: Join, path: KeyPath) -> Iterator[Issue]:
    if join.key == JOIN_KEY:
        return
    tags = sorted({ds.columns[join.key].tag for q in (*join.left, *join.right) if (ds := ctx.dataset(q)) and join.key in ds.columns})
    found = f"tagged {', '.join(tags)}" if tags else "no joined dataset has it"
    msg = f'join on non-key column "{join.key}" ({found}); datasets meet only on the join key {JOIN_KEY}'
    yield ctx.error("join-key", path, msg, f"remove key: or set key: {JOIN_KEY}")


@check("partners", "datasets", "dimensions")
def dimensions_are_tagged(ctx: Context) -> Iterator[Issue]:
    for name, dim in ctx["dimensions"].items():
        path: KeyPath = ("dimensions", name)
        if name in DERIVED_DIMENSIONS:
            yield from _derived_domain(ctx, name, dim.values(), path)
            continue
        yield from _column_tag(ctx, name, "dimension", path, "dimension")


def _column_tag(ctx: Context, column: str, wanted: str, path: KeyPath, what: str) -> Iterator[Issue]:
    found = ctx.columns_named(column)
    if not found:
        known = sorted({c for _, ds in ctx.scoped() for c in ds.columns_tagged(wanted)})
        hint = _suggest(column, known) + f"{wanted} columns in scope: {', '.join(known)}"
        if what == "dimension":
            hint += f"; derived: {', '.join(DERIVED_DIMENSIONS)}"
        yield ctx.error("unknown-column", path, f'unknown column "{column}": no dataset in scope has it', hint)
    elif all(tag != wanted for _, tag in found):
        where = ", ".join(f"{q} ({tag})" for q, tag in found)
        yield ctx.error("wrong-tag", path, f'column "{column}" is not tagged {wanted} in any dataset in scope: {where}', f"only {wanted} columns can be a {what}")


def _derived_domain(ctx: Context, name: str, values: list[str], path: KeyPath) -> Iterator[Issue]:
    if name == "month":
        bad = [v for v in values if not re.match(MONTH_PATTERN, v)]
        if bad:
            yield ctx.error("domain", (*path, "domain"), f'month domain values must be YYYY-MM, got "{bad[0]}"', "use domain: {from: 2025-11, to: 2026-10}")
        return
    dealers = ctx.dealer_partners()
    for value in values:
        if value not in dealers:
            msg = f'dealer_group value "{value}" is not a participating dealer partner (dealers: {", ".join(dealers) or "none"})'
            yield ctx.error("domain", ctx.item((*path, "domain"), value), msg)
    for dealer in dealers:
        if dealer not in values:
            yield ctx.warning("domain", (*path, "domain"), f"dealer {dealer} is missing from the dealer_group domain: its rows fall outside every cell")


@check("partners", "datasets", "measures")
def measures_are_tagged(ctx: Context) -> Iterator[Issue]:
    for qualified_column in ctx["measures"]:
        qualified, _, column = qualified_column.rpartition(".")
        path: KeyPath = ("measures", qualified_column)
        if (issue := _scope_issue(ctx, qualified, path)) is not None:
            yield issue
            continue
        ds = ctx.dataset(qualified)
        if ds is not None and column not in ds.columns:
            known = ds.columns_tagged("measure")
            hint = _suggest(column, list(ds.columns)) + f"measures of {qualified}: {', '.join(known) or 'none'}"
            yield ctx.error("unknown-column", path, f'unknown column "{column}" in {qualified}', hint)
        elif ds is not None and ds.columns[column].tag != "measure":
            yield ctx.error("wrong-tag", path, f"{qualified_column} is tagged {ds.columns[column].tag}, not measure", "only measure columns can be summed")


@check("partners", "datasets", "measures")
def measures_have_bounds(ctx: Context) -> Iterator[Issue]:
    if "measures" in ctx.salvaged:
        return  # some entries failed validation and were reported; absence here proves nothing
    for qualified, ds in ctx.scoped():
        for column in ds.columns_tagged("measure"):
            if f"{qualified}.{column}" not in ctx["measures"]:
                msg = f"measure {qualified}.{column} has no clamp bounds, so it can never be summed"
                yield ctx.warning("measure-bounds", ctx.item(("datasets",), qualified), msg, f"add measures: {qualified}.{column}: {{min: 0, max: ...}}")


@check("partners", "datasets", "filterable")
def filterable_columns(ctx: Context) -> Iterator[Issue]:
    for column in ctx["filterable"]:
        path = ctx.item(("filterable",), column)
        if column in DERIVED_DIMENSIONS:
            continue
        found = ctx.columns_named(column)
        if not found:
            yield ctx.error("unknown-column", path, f'unknown column "{column}": no dataset in scope has it')
        elif any(tag == "join_key" for _, tag in found):
            yield ctx.error("join-key-filter", path, f'"{column}" is the join key: a join key is never filterable', "remove it from filterable:")
        elif bad := [f"{q} ({t})" for q, t in found if t not in FILTERABLE_TAGS]:
            yield ctx.error("wrong-tag", path, f'"{column}" may not be filtered on: {", ".join(bad)}', f"only {', '.join(FILTERABLE_TAGS)} columns are filterable")


__all__ = ["dataset_problem"]
