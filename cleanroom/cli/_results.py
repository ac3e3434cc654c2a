"""How a released result reads on a terminal: ``value ±half-interval``, never a bare 0 for a suppressed cell.

Shared by ``cleanroom query`` and ``cleanroom demo`` so both show results the same way. A value
column ``x`` whose interval is released as ``x_ci95 = [low, high]`` becomes one cell ``x [low–high]``
(intervals of small shown counts are not symmetric); a suppressed value (listed in the row's
``suppressed_values``) reads ``suppressed`` and a value with no meaning here (the first stage's
conversion) reads ``-``.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table


def display_columns(columns: list[str]) -> list[str]:
    """The columns a person reads: values and dimensions (intervals fold into their value)."""
    return [c for c in columns if not c.endswith("_ci95") and c not in ("suppressed", "suppressed_values")]


def display_rows(columns: list[str], rows: list[list[Any]]) -> list[tuple[dict[str, Any], list[str]]]:
    """Each row as (record by column, its display cells)."""
    shown = display_columns(columns)
    out = []
    for row in rows:
        record = dict(zip(columns, row, strict=True))
        hidden = set(record.get("suppressed_values") or [])
        out.append((record, [cell(record.get(c), record.get(f"{c}_ci95"), c in hidden) for c in shown]))
    return out


def cell(value: Any, interval: Any, suppressed: bool) -> str:
    """One value; a missing one is ``suppressed`` when it was, else ``-`` (not applicable)."""
    if value is None:
        return "suppressed" if suppressed else "-"
    if isinstance(interval, list) and len(interval) == 2:
        low, high = interval
        if high is None:
            return f"{num(value)} (≥{num(low)})"
        return f"{num(value)} [{num(low)}–{num(high)}]"
    return num(value) if isinstance(value, int | float) and not isinstance(value, bool) else str(value)


def num(value: Any) -> str:
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.3f}" if abs(value) < 1 else f"{value:.1f}" if abs(value) < 100 else f"{value:,.0f}"
    return f"{int(value):,}" if isinstance(value, int | float) and not isinstance(value, bool) else str(value)


def table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    t = Table(title=title, title_justify="left")
    for c in columns:
        t.add_column(c, justify="left" if c in ("stage", "partner", "dataset", "dataset_a", "dataset_b") else "right")
    for r in rows:
        t.add_row(*["" if v is None else str(v) for v in r])
    return t
