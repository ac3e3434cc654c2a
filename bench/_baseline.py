"""The questions of the performance record, and the plain-DuckDB baseline that answers them.

The baseline is an in-memory DuckDB database (same settings as the store: 2 threads, 2 GB) holding
the **consented rows** the engine reads (``_export.py``), queried with the hand-written statements
of ``peers/cohort.py``. Each case knows how to turn the baseline's rows and the engine's exact
cells into one ``{cell: value}`` form, so the record can show that both answer the same question.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from peers import cohort

Cells = dict[tuple[str, ...], int]


@dataclass(frozen=True)
class Case:
    """One benchmarked question: the template call, its plain SQL and how to compare the answers."""

    name: str
    template: str
    params: dict[str, Any]
    tables: str  # the export set (consent purposes) the baseline reads
    sql: str
    from_rows: Callable[[list[tuple[Any, ...]]], Cells]
    scale: int = 1  # engine value = baseline value * scale (attribution counts milli-credits)


def _keyed(rows: list[tuple[Any, ...]]) -> Cells:
    return {tuple(str(v) for v in row[:-1]): int(row[-1]) for row in rows}


def _overlap(rows: list[tuple[Any, ...]]) -> Cells:
    a, b = (f"{v.split('__')[0].replace('_', '-')}.{v.split('__')[1]}" for v in cohort.OVERLAP)
    return {(a, b, str(region)): int(n) for region, n in rows}


HEADLINE = "funnel/model"


def cases() -> list[Case]:
    start, end = cohort.LIFECYCLE_WINDOW
    return [
        Case(HEADLINE, "funnel", {"dimensions": ["model"]}, "measurement", cohort.funnel_sql(True), _keyed),
        Case("funnel", "funnel", {}, "measurement", cohort.funnel_sql(False), lambda rows: {(str(r[0]),): int(r[-1]) for r in rows}),
        Case("attribution", "attribution", {"model": "last_touch", "by": "campaign"}, "attribution+measurement", cohort.attribution_sql(), _keyed,
             scale=1000),
        Case("lifecycle", "lifecycle", {"window_start": start, "window_end": end, "by": "product"}, "measurement", cohort.lifecycle_sql(), _keyed),
        Case("overlap", "overlap", {"datasets": ["aurora-motors.web_sessions", "northside-dealers.leads"]}, "measurement", cohort.overlap_sql(),
             _overlap),
    ]


def engine_cells(exact: Any) -> Cells:
    """The engine's exact result as ``{cell: value}`` (one part per template in these cases)."""
    out: Cells = {}
    for part in exact.parts:
        out.update({tuple(str(v) for v in cell): int(value) for cell, value in zip(part.cells, part.values, strict=True)})
    return out


def compare(case: Case, baseline_rows: list[tuple[Any, ...]], exact: Any) -> dict[str, Any]:
    """Same answer? Every engine cell against the baseline (cells the baseline lacks are 0)."""
    mine = case.from_rows(baseline_rows)
    theirs = engine_cells(exact)
    diffs = [(cell, mine.get(cell, 0) * case.scale, value) for cell, value in theirs.items() if mine.get(cell, 0) * case.scale != value]
    extra = [cell for cell in mine if cell not in theirs and mine[cell]]
    return {"same": not diffs and not extra, "cells": len(theirs), "differing": len(diffs) + len(extra),
            "example": [list(map(str, d)) for d in diffs[:3]] + [list(c) for c in extra[:3]]}


def connect(parquet: Path, threads: int = 2, memory_limit: str = "2GB") -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with every exported table loaded as a schema per consent-purpose set."""
    con = duckdb.connect(":memory:", config={"threads": threads, "memory_limit": memory_limit})
    for folder in sorted(p for p in parquet.iterdir() if p.is_dir()):
        schema = "s_" + folder.name.replace("+", "_")
        con.execute(f"CREATE SCHEMA {schema}")
        for file in sorted(folder.glob("*.parquet")):
            con.execute(f"CREATE TABLE {schema}.{file.stem} AS SELECT * FROM read_parquet('{file}')")
    return con


def runner(con: duckdb.DuckDBPyConnection, case: Case) -> Callable[[], list[tuple[Any, ...]]]:
    """A callable that runs the case's statement on its export set (one cursor per case)."""
    cur = con.cursor()
    cur.execute(f"SET schema = 's_{case.tables.replace('+', '_')}'")
    return lambda: cur.execute(case.sql).fetchall()


__all__ = ["HEADLINE", "Case", "Cells", "cases", "compare", "connect", "engine_cells", "runner"]
