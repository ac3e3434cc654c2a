"""Attribution sections: sales credited to campaigns or channels, credit models side by side.

Why sections are grouped by their ``by`` parameter and lined up by ``model``: the report may
release the same attribution under several credit models (last touch, linear, position based...);
a manager learns most by seeing them next to each other, because where the models agree the
credit is robust, and where they disagree it depends on an assumption.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cleanroom.reports.charts import Bars, Chart, Series, color
from cleanroom.reports.document import Block, Cell, Figure, Row, Table
from cleanroom.reports.funnel import point
from cleanroom.reports.model import Section
from cleanroom.reports.results import Results, label_text

CREDIT_MODELS: tuple[str, ...] = ("first_touch", "last_touch", "linear", "time_decay", "position_based")
CREDIT_LABELS: dict[str, str] = {
    "first_touch": "First touch",
    "last_touch": "Last touch",
    "linear": "Linear",
    "time_decay": "Time decay",
    "position_based": "Position based",
}
SPECIAL_ROWS = ("unattributed", "total")


def credit_label(model: str) -> str:
    return CREDIT_LABELS.get(model, model.replace("_", " ").capitalize())


def by_of(section: Section) -> str:
    """What the section credits: its ``by`` parameter, else its first dimension."""
    return str(section.params.get("by") or (section.dimensions[0] if section.dimensions else "key"))


@dataclass(frozen=True)
class AttributionGroup:
    """Attribution sections that credit the same thing (``by``), one per credit model."""

    by: str
    sections: tuple[Section, ...]

    @property
    def labels(self) -> list[str]:
        """Row labels in first-seen order, with 'unattributed' and 'total' last."""
        seen: dict[str, None] = {}
        for s in self.sections:
            for r in s.records():
                seen.setdefault(label_text(r.get(self.by)), None)
        plain_rows = [k for k in seen if k not in SPECIAL_ROWS]
        return plain_rows + [k for k in SPECIAL_ROWS if k in seen]

    def record(self, section: Section, label: str) -> dict[str, Any] | None:
        return next((r for r in section.records() if label_text(r.get(self.by)) == label), None)

    def column_title(self, section: Section) -> str:
        model = section.params.get("model")
        return credit_label(str(model)) if model else section.title


def group_attribution(sections: list[Section]) -> list[AttributionGroup]:
    """Group by ``by`` (campaign, channel, ... in first-seen order); credit models in a fixed order."""
    groups: dict[str, list[Section]] = {}
    for s in sections:
        groups.setdefault(by_of(s), []).append(s)

    def model_rank(s: Section) -> tuple[int, str]:
        m = str(s.params.get("model", ""))
        return (CREDIT_MODELS.index(m) if m in CREDIT_MODELS else len(CREDIT_MODELS), m)

    return [AttributionGroup(by, tuple(sorted(ss, key=model_rank))) for by, ss in groups.items()]


def measure_table(group: AttributionGroup, results: Results, measure: str, title: str, note: str) -> Table:
    """Rows: campaigns (or channels); columns: credit models; cells: ``measure`` with its interval."""
    rows = []
    for label in group.labels:
        cells = [Cell(label.replace("_", " "))]
        for s in group.sections:
            record = group.record(s, label)
            cells.append(Cell.of(results.of(s, record, measure)) if record is not None else Cell("n/a", "na", note="not released"))
        rows.append(Row(tuple(cells), style="total" if label == "total" else ""))
    return Table(
        title=title,
        header=(group.by.capitalize(), *(group.column_title(s) for s in group.sections)),
        rows=tuple(rows),
        widths=(1.5, *([1.6] * len(group.sections))),
        note=note,
    )


def credit_chart(group: AttributionGroup, results: Results) -> Chart:
    """Grouped bars: one group per campaign/channel (plus unattributed), one bar per credit model."""
    labels = [label for label in group.labels if label != "total"]
    series = []
    for i, s in enumerate(group.sections):
        points = []
        for label in labels:
            record = group.record(s, label)
            points.append(point(results.of(s, record, "credited_sales") if record is not None else None))
        series.append(Series(group.column_title(s), tuple(points), color(i)))
    bars = Bars(f"Credited sales by {group.by}", tuple(label.replace("_", " ") for label in labels), tuple(series), "sales")
    return Chart((bars,), row_height=3.3)


def attribution_blocks(group: AttributionGroup, results: Results) -> list[Block]:
    models = ", ".join(group.column_title(s).lower() for s in group.sections)
    blocks: list[Block] = [
        Figure(
            f"attr-{group.by}",
            credit_chart(group, results),
            f"Sales credited to each {group.by} under each credit model ({models}). Whiskers show the 95 % interval; "
            "hatched slots are suppressed cells. Where the models agree, the credit does not hinge on how touches are weighted.",
        ),
        measure_table(
            group, results, "credited_sales", f"Credited sales by {group.by}",
            "Credits are fractional sales; 'unattributed' holds sales without a recorded touch; 'total' is the released count of sales.",
        ),
        measure_table(
            group, results, "credited_financed_sales", f"Credited financed sales by {group.by}",
            "The same credit, counting only sales financed by the captive finance company.",
        ),
    ]  # fmt: skip
    return blocks


__all__ = ["AttributionGroup", "attribution_blocks", "by_of", "credit_label", "group_attribution", "measure_table"]
