"""What the report says, as plain data: headings, paragraphs, callouts, KPIs, tables, charts.

Why a document model between the report and the files: the HTML and the PDF must carry the same
content. Building it once here and letting ``html.py`` and ``pdf.py`` only lay it out means a
number, a note or a warning cannot appear in one and be forgotten in the other. Every table cell
that shows a released number carries the :class:`~cleanroom.reports.results.Measure` key, so a
test can check that the HTML prints exactly what ``results.csv`` holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from cleanroom.reports.charts import Chart
from cleanroom.reports.results import Measure

CellKind = Literal["label", "value", "suppressed", "na", "derived", "muted"]
Tone = Literal["alert", "warn", "info", "ok"]


@dataclass(frozen=True)
class Cell:
    """One table cell: a label, a released number (with its interval), or a derived change."""

    text: str
    kind: CellKind = "label"
    interval: str = ""
    note: str = ""
    key: str = ""
    flag: Literal["", "up", "down"] = ""

    @classmethod
    def of(cls, measure: Measure | None) -> Cell:
        """The cell of a released number; a missing column reads 'n/a', never blank or 0."""
        if measure is None:
            return cls("n/a", kind="na", note="not released")
        if measure.suppressed:
            return cls("suppressed", kind="suppressed", key=measure.key)
        if measure.value is None:
            return cls("n/a", kind="na", note=measure.note, key=measure.key)
        return cls(measure.value_text, kind="value", interval=measure.interval_text, key=measure.key)

    @property
    def plain(self) -> str:
        """Everything the cell says on one line (what the PDF prints)."""
        parts = [self.text, self.interval, f"({self.note})" if self.note else ""]
        return " ".join(p for p in parts if p)


@dataclass(frozen=True)
class Row:
    cells: tuple[Cell, ...]
    style: Literal["", "group", "total", "alert"] = ""


@dataclass(frozen=True)
class Table:
    """A table with one header row; ``widths`` are relative column widths for the PDF."""

    kind: ClassVar[str] = "table"
    title: str
    header: tuple[str, ...]
    rows: tuple[Row, ...]
    widths: tuple[float, ...]
    note: str = ""
    numeric_from: int = 1  # columns from this index on are right-aligned numbers


@dataclass(frozen=True)
class Paragraph:
    kind: ClassVar[str] = "paragraph"
    text: str
    small: bool = False


@dataclass(frozen=True)
class Callout:
    """A boxed message: what is missing (alert), data issues (warn), how to read noise (info)."""

    kind: ClassVar[str] = "callout"
    tone: Tone
    title: str
    lines: tuple[str, ...]


@dataclass(frozen=True)
class Kpi:
    label: str
    value: str
    interval: str
    note: str
    key: str = ""


@dataclass(frozen=True)
class Kpis:
    kind: ClassVar[str] = "kpis"
    items: tuple[Kpi, ...]


@dataclass(frozen=True)
class Mover:
    """One of the numbers that moved most, with the verdict on noise in words."""

    title: str
    detail: str
    change: str
    beyond_noise: bool | None

    @property
    def verdict(self) -> str:
        if self.beyond_noise is None:
            return "Cannot be judged: an interval is open or missing"
        return "Larger than the noise" if self.beyond_noise else "Within the noise: may be blurring alone"


@dataclass(frozen=True)
class Movers:
    kind: ClassVar[str] = "movers"
    title: str
    items: tuple[Mover, ...]
    rule: str
    empty: str = ""


@dataclass(frozen=True)
class Figure:
    """A chart with its caption; ``ident`` keeps SVG ids unique inside one HTML page."""

    kind: ClassVar[str] = "figure"
    ident: str
    chart: Chart
    caption: str


@dataclass(frozen=True)
class Heading:
    """A sub-heading inside a part (e.g. one section's title)."""

    kind: ClassVar[str] = "heading"
    text: str


Block = Table | Paragraph | Callout | Kpis | Movers | Figure | Heading


@dataclass(frozen=True)
class Part:
    """One numbered part of the report (funnel, attribution, finance...)."""

    number: int
    title: str
    anchor: str
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class Document:
    title: str
    subtitle: str
    recipient_line: str
    page_one: tuple[Block, ...]
    parts: tuple[Part, ...] = field(default_factory=tuple)
    footer: str = ""


__all__ = [
    "Block", "Callout", "Cell", "Document", "Figure", "Heading", "Kpi", "Kpis", "Mover",
    "Movers", "Paragraph", "Part", "Row", "Table",
]  # fmt: skip
