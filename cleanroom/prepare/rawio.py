"""Reading a partner's raw CSV: only the columns needed, every value read as text, then cast.

Why read as text first: pyarrow's type inference would turn a dealer id ``0042`` into 42 or a
column that happens to hold only ``1``/``0`` into integers. We read strings, then cast each
declared column to its declared Arrow type, so the partner file, not the data, decides the
types. Undeclared columns (names, crm ids, anything) are never even parsed: pyarrow skips them.

A value that cannot be cast is reported with its file, column and row number, found by bisecting
the column (a few casts, whatever the size), never by looping over a million values in Python.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv as pacsv

from cleanroom.errors import PrepareError
from cleanroom.partners import ARROW_TYPES, JOIN_KEY, Column, Dataset, Partner

EMAIL_COLUMN = "email"
PHONE_COLUMN = "phone"
IDENTIFIER_COLUMNS = (EMAIL_COLUMN, PHONE_COLUMN)


def raw_file(raw_dir: Path, partner: Partner, dataset: str) -> Path:
    """``RAW/<partner>/<dataset>.csv``, or ``RAW/<dataset>.csv`` when RAW is the partner's own folder."""
    nested = raw_dir / partner.id
    path = (nested if nested.is_dir() else raw_dir) / f"{dataset}.csv"
    if not path.is_file():
        raise PrepareError(
            "prepare.input_missing",
            f"{path}: raw file for dataset {dataset!r} of partner {partner.id!r} not found",
            path=str(path),
            dataset=dataset,
        )
    return path


def business_columns(dataset: Dataset) -> list[str]:
    """The declared columns a raw file must carry: all but ``hid``, which prepare computes."""
    return [name for name in dataset.columns if name != JOIN_KEY]


def _header(path: Path) -> list[str]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            return next(csv.reader(fh), [])
    except (UnicodeDecodeError, csv.Error) as exc:
        raise PrepareError("prepare.input_invalid", f"{path}: unreadable header: {exc}", path=str(path)) from exc


def _check_header(path: Path, needed: list[str]) -> None:
    header = _header(path)
    missing = [c for c in needed if c not in header]
    if missing:
        raise PrepareError(
            "prepare.input_invalid",
            f"{path}: missing column {missing[0]!r}" + (f" (and {', '.join(missing[1:])})" if missing[1:] else ""),
            path=str(path),
            column=missing[0],
        )


def _needed(dataset: Dataset) -> list[str]:
    return business_columns(dataset) + [c for c in IDENTIFIER_COLUMNS if c not in dataset.columns]


def check_raw(path: Path, dataset: Dataset) -> None:
    """Fail fast, before anything is written, when a raw file lacks a column prepare needs."""
    _check_header(path, _needed(dataset))


def read_raw(path: Path, dataset: Dataset) -> pa.Table:
    """The declared business columns plus ``email`` and ``phone``, all as nullable strings."""
    needed = _needed(dataset)
    _check_header(path, needed)
    convert = pacsv.ConvertOptions(
        include_columns=needed,
        column_types={c: pa.string() for c in needed},
        null_values=[""],  # only an empty cell is missing: "n/a" or "NULL" is data (and a bad id)
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
    )
    try:
        return pacsv.read_csv(path, convert_options=convert)
    except (pa.ArrowInvalid, OSError) as exc:
        raise PrepareError("prepare.input_invalid", f"{path}: cannot read CSV: {exc}", path=str(path)) from exc


def _cast_or_none(values: pa.Array, target: pa.DataType) -> pa.Array | None:
    try:
        return pc.cast(values, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _first_bad_row(values: pa.Array, target: pa.DataType) -> int:
    """Index of the first value that does not cast, by bisection (the whole array is known to fail)."""
    lo, hi = 0, len(values)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _cast_or_none(values.slice(lo, mid - lo), target) is None:
            hi = mid
        else:
            lo = mid
    return lo


def _row_error(path: Path, column: str, index: int, problem: str) -> PrepareError:
    return PrepareError(
        "prepare.input_invalid",
        f"{path}: column {column!r}, row {index + 1} (line {index + 2}): {problem}",
        path=str(path),
        column=column,
        row=index + 1,
    )


def cast_column(path: Path, name: str, column: Column, raw: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Cast one raw text column to its declared type; name file, column and row on failure."""
    values = raw.combine_chunks() if isinstance(raw, pa.ChunkedArray) else raw
    target = ARROW_TYPES[column.type]
    cast = _cast_or_none(values, target)
    if cast is None:
        index = _first_bad_row(values, target)
        raise _row_error(path, name, index, f"cannot read {values[index].as_py()!r} as {column.type}")
    if not column.nullable and cast.null_count:
        index = pc.index(pc.is_null(cast), True).as_py()
        raise _row_error(path, name, index, "empty value in a column declared non-nullable")
    return cast


__all__ = [
    "EMAIL_COLUMN",
    "IDENTIFIER_COLUMNS",
    "PHONE_COLUMN",
    "business_columns",
    "cast_column",
    "check_raw",
    "raw_file",
    "read_raw",
]
