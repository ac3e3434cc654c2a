"""Rows of one dataset as columns of numpy arrays, before any identifier or string exists.

The generator keeps business values as small integer codes into the public domains and times as
int64 seconds (dates as day numbers) until the very end, where :mod:`cleanroom.synth.writer`
turns them into Arrow columns. ``pid`` is the internal person id: it decides which identifiers a
row gets and never leaves the generator.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pyarrow as pa


@dataclass(frozen=True)
class Coded:
    """A string column as codes into a fixed list of values (a public domain)."""

    codes: np.ndarray
    values: tuple[str, ...]

    def take(self, index: np.ndarray) -> Coded:
        return Coded(self.codes[index], self.values)

    def arrow(self) -> pa.Array:
        return pa.array(self.values, pa.string()).take(pa.array(self.codes.astype(np.int32)))


Column = Coded | np.ndarray | pa.Array


def _take(column: Column, index: np.ndarray) -> Column:
    if isinstance(column, pa.Array):
        return column.take(pa.array(index))
    if isinstance(column, Coded):
        return column.take(index)
    return column[index]


def _concat(parts: list[Column]) -> Column:
    first = parts[0]
    if isinstance(first, Coded):
        return Coded(np.concatenate([p.codes for p in parts]), first.values)  # type: ignore[union-attr]
    if isinstance(first, pa.Array):
        return pa.concat_arrays(parts)  # type: ignore[arg-type]
    return np.concatenate(parts)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Rows:
    """One dataset's rows. ``phone_only`` marks rows that carry a phone but no email."""

    pid: np.ndarray
    columns: dict[str, Column]
    phone_only: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    def __post_init__(self) -> None:
        if len(self.phone_only) != len(self.pid):
            object.__setattr__(self, "phone_only", np.zeros(len(self.pid), dtype=bool))

    def __len__(self) -> int:
        return len(self.pid)

    def take(self, index: np.ndarray) -> Rows:
        cols = {k: _take(v, index) for k, v in self.columns.items()}
        return Rows(self.pid[index], cols, self.phone_only[index])

    def with_phone_only(self, mask: np.ndarray) -> Rows:
        return replace(self, phone_only=mask)

    @staticmethod
    def concat(parts: list[Rows]) -> Rows:
        names = list(parts[0].columns)
        cols = {k: _concat([p.columns[k] for p in parts]) for k in names}
        return Rows(np.concatenate([p.pid for p in parts]), cols, np.concatenate([p.phone_only for p in parts]))
