"""Lifecycle sections: contracts ending soon, and how many of those customers came back.

Why it matters to the reader: a contract that ends is the next sale or the next loss; the share
of those customers already seen again at the brand or a dealer says where to act first.
"""

from __future__ import annotations

from cleanroom.reports.charts import Bars, Chart, Series, color
from cleanroom.reports.document import Block, Cell, Figure, Row, Table
from cleanroom.reports.funnel import point
from cleanroom.reports.model import Section
from cleanroom.reports.results import Results, label_text


def lifecycle_blocks(section: Section, results: Results) -> list[Block]:
    """A chart of contracts ending vs seen again per group, and the table with the rate."""
    by = section.dimensions[0] if section.dimensions else "product"
    records = section.records()
    labels = tuple(label_text(r.get(by)) for r in records)
    ending = tuple(point(results.of(section, r, "contracts_ending")) for r in records)
    seen = tuple(point(results.of(section, r, "seen_again")) for r in records)
    chart = Chart(
        (
            Bars(
                f"Contracts ending next quarter, by {by}",
                labels,
                (Series("contracts ending", ending, color(0)), Series("seen again", seen, color(1))),
                "persons",
            ),
        ),
        row_height=2.8,
    )
    rows = tuple(
        Row(
            (
                Cell(label),
                Cell.of(results.of(section, r, "contracts_ending")),
                Cell.of(results.of(section, r, "seen_again")),
                Cell.of(results.of(section, r, "seen_again_rate")),
            )
        )
        for label, r in zip(labels, records, strict=True)
    )
    table = Table(
        title=section.title,
        header=(by.capitalize(), "Contracts ending", "Seen again", "Seen-again rate"),
        rows=rows,
        widths=(1.4, 1.6, 1.6, 1.6),
        note="Contracts ending: persons whose contract ends in the next quarter. Seen again: of those, persons seen at the brand or a dealer again.",
    )
    caption = "Whiskers show the 95 % interval; hatched slots are suppressed cells."
    return [Figure(f"{section.name}-chart", chart, caption), table]


__all__ = ["lifecycle_blocks"]
