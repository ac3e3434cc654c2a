"""The released numbers of a report in long form, and the one display rule every output uses.

Why one module owns both: ``results.csv``/``results.parquet`` are the machine-readable copy of
what the HTML and PDF print. If the long table and the tables people read rounded differently, a
reader comparing them would find two truths. So every measure of every section becomes one
:class:`Measure` here, rounded once (with :mod:`decimal`, half-up, never through float
formatting), and the HTML/PDF print the strings this module made: the same digits as the CSV,
with only thousands separators added for reading.

Display rule: counts of persons as integers; credited sales with 1 decimal; rates (fractions in
the sections) as percent with 1 decimal, so 0.0923 -> 9.2. A suppressed measure has no value and
no interval (``suppressed=true``), never 0. A value that is null without being suppressed (a
cohort's own conversion, a ratio whose denominator was suppressed) gets a plain-words ``note``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from cleanroom.reports.model import Report, Section

UNITS: dict[str, str] = {
    "persons": "persons",
    "contracts_ending": "persons",
    "seen_again": "persons",
    "credited_sales": "sales",
    "credited_financed_sales": "sales",
    "conversion": "percent",
    "cumulative_conversion": "percent",
    "financed_share": "percent",
    "seen_again_rate": "percent",
}
"""Unit of each known measure; :func:`unit_of` guesses the rest from the name."""

CSV_COLUMNS: tuple[str, ...] = (
    "section", "template", "params", "row_key", "measure", "unit",
    "value", "ci95_low", "ci95_high", "suppressed", "epsilon", "query_id", "note",
)  # fmt: skip

_QUANTUM = {"persons": Decimal("1"), "sales": Decimal("0.1"), "percent": Decimal("0.1"), "days": Decimal("0.1")}
_CI = "_ci95"
SUPPRESSED_VALUES = "suppressed_values"
_FLAGS = ("suppressed", SUPPRESSED_VALUES)


def unit_of(measure: str) -> str:
    """The unit of a measure column: known names first, then by what the name says.

    Why guess at all: the engine may add measures (e.g. ``median_days``) before this module
    learns about them; a sensible unit beats a crash in the monthly job.
    """
    if measure in UNITS:
        return UNITS[measure]
    if measure.endswith(("rate", "conversion", "share")):
        return "percent"
    if "sales" in measure:
        return "sales"
    if "days" in measure:
        return "days"
    return "persons"


def rounded(value: float | int | None, unit: str) -> Decimal | None:
    """``value`` in display units, rounded half-up to the unit's quantum (None stays None).

    Decimal from ``repr`` so 0.0925 becomes 9.3 %, as a person would round it, not 9.2 from
    the binary float just below it.
    """
    if value is None:
        return None
    number = Decimal(repr(float(value))) if not isinstance(value, int) else Decimal(value)
    if unit == "percent":
        number *= 100
    result = number.quantize(_QUANTUM.get(unit, Decimal("0.1")), rounding=ROUND_HALF_UP)
    return result + 0  # -0 and -0.0 print as 0 and 0.0


def plain(number: Decimal | None) -> str:
    """The CSV text of a rounded number ('' for None): no thousands separator."""
    return "" if number is None else str(number)


def pretty(text: str) -> str:
    """``text`` (a CSV number) with thousands separators, for people: '12345.6' -> '12,345.6'."""
    if not text:
        return text
    sign, body = ("-", text[1:]) if text.startswith("-") else ("", text)
    whole, dot, frac = body.partition(".")
    return f"{sign}{int(whole):,}{dot}{frac}"


@dataclass(frozen=True)
class Measure:
    """One released number: a (section, row, measure) of the report, rounded for display.

    ``raw*`` keep the section's unrounded values for arithmetic on noise (month-over-month
    changes); every printed digit comes from ``value``/``low``/``high``.
    """

    section: str
    template: str
    params: str
    row_key: str
    measure: str
    unit: str
    value: Decimal | None
    low: Decimal | None
    high: Decimal | None
    suppressed: bool
    epsilon: str
    query_id: str
    note: str
    raw: float | None
    raw_low: float | None
    raw_high: float | None

    @property
    def key(self) -> str:
        """Identifies the measure across outputs (the HTML cell's ``data-key``)."""
        return f"{self.section}|{self.row_key}|{self.measure}"

    @property
    def value_text(self) -> str:
        """The value as people read it: '1,234', '12.5', '9.2%', 'suppressed' or 'n/a'."""
        if self.suppressed:
            return "suppressed"
        if self.value is None:
            return "n/a"
        return pretty(plain(self.value)) + ("%" if self.unit == "percent" else "")

    @property
    def interval_text(self) -> str:
        """The 95 % interval as '(1,180–1,290)'; '' when there is no value to qualify."""
        if self.value is None or (self.low is None and self.high is None):
            return ""
        low = pretty(plain(self.low)) if self.low is not None else "n/a"
        high = pretty(plain(self.high)) if self.high is not None else "n/a"
        return f"({low}–{high})"

    @property
    def text(self) -> str:
        """Value and interval together, e.g. '1,234 (1,180–1,290)'."""
        return f"{self.value_text} {self.interval_text}".strip()

    def csv_row(self) -> list[str]:
        return [
            self.section, self.template, self.params, self.row_key, self.measure, self.unit,
            plain(self.value), plain(self.low), plain(self.high),
            "true" if self.suppressed else "false", self.epsilon, self.query_id, self.note,
        ]  # fmt: skip


def measure_columns(section: Section) -> list[str]:
    """The section's released-number columns: every ``x`` that has an ``x_ci95`` companion."""
    names = set(section.columns)
    return [c for c in section.columns if not c.endswith(_CI) and f"{c}{_CI}" in names]


def label_columns(section: Section) -> list[str]:
    """The columns that name a row (dimensions, stage, campaign...), in column order."""
    measures = set(measure_columns(section))
    return [c for c in section.columns if c not in measures and not c.endswith(_CI) and c not in _FLAGS]


def is_suppressed(record: dict[str, Any], measure: str) -> bool:
    """Whether one measure of a row is suppressed (too few persons), as opposed to not computable.

    The engine lists a row's suppressed measures in ``suppressed_values``; a share whose count
    was suppressed is listed too, while a cohort's own conversion (never computed) is not. A
    section without that column falls back to: null value in a row flagged ``suppressed``.
    """
    listed = record.get(SUPPRESSED_VALUES)
    if isinstance(listed, list | tuple):
        return measure in listed
    return record.get(measure) is None and bool(record.get("suppressed"))


def label_text(value: Any) -> str:
    """A row label as text: booleans as true/false, None as 'null', the rest as str()."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


def row_key(section: Section, record: dict[str, Any]) -> str:
    """'month=2026-09|stage=lead': the row's labels in column order."""
    return "|".join(f"{c}={label_text(record.get(c))}" for c in label_columns(section))


def params_json(params: dict[str, Any]) -> str:
    """Params as compact, key-sorted JSON so the same section always gives the same text."""
    return json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)


def _interval(record: dict[str, Any], measure: str) -> tuple[float | None, float | None]:
    ci = record.get(f"{measure}{_CI}")
    if not isinstance(ci, Sequence) or isinstance(ci, str) or len(ci) != 2:
        return None, None
    low, high = ci
    return low, high


def _null_note(section: Section, records: list[dict[str, Any]], index: int, measure: str) -> str:
    """Why a value is null although its row was not suppressed, in plain words."""
    if section.template == "funnel" and measure in ("conversion", "cumulative_conversion"):
        record = records[index]
        dims = [d for d in section.dimensions if d in record]
        group = [i for i, r in enumerate(records) if all(r.get(d) == record.get(d) for d in dims)]
        position = group.index(index) if index in group else -1
        if position == 0:
            return "cohort"
        if measure == "conversion" and position > 0 and records[group[position - 1]].get("persons") is None:
            return "previous stage suppressed"
        if measure == "cumulative_conversion" and group and records[group[0]].get("persons") is None:
            return "cohort suppressed"
    return "not computable (see the section notes)"


def section_measures(section: Section) -> list[Measure]:
    """Every measure of every row of one section, in row then column order."""
    records = section.records()
    params = params_json(section.params)
    out: list[Measure] = []
    for index, record in enumerate(records):
        key = row_key(section, record)
        for measure in measure_columns(section):
            unit = unit_of(measure)
            suppressed = is_suppressed(record, measure)
            raw = None if suppressed else record.get(measure)  # a number flagged suppressed is not printed
            raw_low, raw_high = _interval(record, measure) if raw is not None else (None, None)
            note = "" if raw is not None or suppressed else _null_note(section, records, index, measure)
            out.append(
                Measure(
                    section=section.name, template=section.template, params=params, row_key=key,
                    measure=measure, unit=unit, value=rounded(raw, unit), low=rounded(raw_low, unit),
                    high=rounded(raw_high, unit), suppressed=suppressed, epsilon=section.epsilon,
                    query_id=section.query_id, note=note, raw=raw, raw_low=raw_low, raw_high=raw_high,
                )
            )  # fmt: skip
    return out


class Results:
    """All measures of a report, with lookup by (section, row, measure) for the renderers."""

    def __init__(self, report: Report) -> None:
        self.measures: list[Measure] = [m for s in report.sections for m in section_measures(s)]
        self._by_key: dict[str, Measure] = {m.key: m for m in self.measures}

    def get(self, section: str, row_key: str, measure: str) -> Measure | None:
        return self._by_key.get(f"{section}|{row_key}|{measure}")

    def of(self, section: Section, record: dict[str, Any], measure: str) -> Measure | None:
        """The measure of one record of ``section`` (None when the column does not exist)."""
        return self.get(section.name, row_key(section, record), measure)


def write_csv(measures: Iterable[Measure], path: Path) -> None:
    """UTF-8, comma-separated, '\\n' line ends, a header row: opens anywhere, diffs cleanly."""
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        writer.writerows(m.csv_row() for m in measures)


def write_parquet(measures: Iterable[Measure], path: Path) -> None:
    """The same rows as the CSV with a fixed schema, so pyarrow writes identical bytes each time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = list(measures)
    text = pa.string()
    schema = pa.schema(
        [
            ("section", text), ("template", text), ("params", text), ("row_key", text),
            ("measure", text), ("unit", text), ("value", pa.float64()), ("ci95_low", pa.float64()),
            ("ci95_high", pa.float64()), ("suppressed", pa.bool_()), ("epsilon", text),
            ("query_id", text), ("note", text),
        ]
    )  # fmt: skip

    def num(d: Decimal | None) -> float | None:
        return None if d is None else float(d)

    columns: list[list[Any]] = [
        [m.section for m in rows], [m.template for m in rows], [m.params for m in rows],
        [m.row_key for m in rows], [m.measure for m in rows], [m.unit for m in rows],
        [num(m.value) for m in rows], [num(m.low) for m in rows], [num(m.high) for m in rows],
        [m.suppressed for m in rows], [m.epsilon for m in rows], [m.query_id for m in rows],
        [m.note for m in rows],
    ]  # fmt: skip
    table = pa.Table.from_arrays([pa.array(c, type=f.type) for c, f in zip(columns, schema, strict=True)], schema=schema)
    pq.write_table(table, path, compression="zstd")


__all__ = [
    "CSV_COLUMNS", "SUPPRESSED_VALUES", "Measure", "Results", "is_suppressed", "label_columns", "label_text", "measure_columns",
    "params_json", "plain", "pretty", "rounded", "row_key", "section_measures", "unit_of",
    "write_csv", "write_parquet",
]  # fmt: skip
