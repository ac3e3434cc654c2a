"""Names of the views the engine reads, and which views one request needs.

The store creates one connection-local ``TEMP VIEW`` per entitled dataset, named by
:func:`view_name`; in a view the person column is ``pid BIGINT`` (the store's dense person id in
place of ``hid``) and every other declared column keeps its name and type. The engine only ever
writes SQL over these names, so a dataset the scope does not entitle cannot be referenced.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from cleanroom.errors import InternalError, QueryError

if TYPE_CHECKING:
    from cleanroom.engine.scope import Scope

_QUALIFIED = re.compile(r"^([a-z][a-z0-9-]{1,62})\.([a-z][a-z0-9_]{0,62})$")

PERSON = "pid"


def split_qualified(qualified: str) -> tuple[str, str]:
    """``"northside-dealers.leads"`` -> ``("northside-dealers", "leads")``."""
    match = _QUALIFIED.match(qualified)
    if not match:
        raise QueryError("query.invalid", f"{qualified!r} is not a qualified dataset name 'partner.dataset'", dataset=qualified)
    return match.group(1), match.group(2)


def view_name(qualified: str) -> str:
    """``"northside-dealers.leads"`` -> ``"northside_dealers__leads"`` (a plain SQL identifier)."""
    partner, dataset = split_qualified(qualified)
    return f"{partner.replace('-', '_')}__{dataset}"


def views_for(scope: Scope) -> dict[str, str]:
    """view name -> qualified dataset, for exactly the datasets in ``scope``.

    Two datasets mapping to one view name (possible only with odd ids such as ``a--b``) would
    let one stand in for the other, so that is refused as a bug in the caller's configuration.
    """
    out: dict[str, str] = {}
    for qualified in scope.datasets:
        name = view_name(qualified)
        if name in out:
            raise InternalError("internal.invariant", f"datasets {out[name]!r} and {qualified!r} share view name {name!r}")
        out[name] = qualified
    return out


__all__ = ["PERSON", "split_qualified", "view_name", "views_for"]
