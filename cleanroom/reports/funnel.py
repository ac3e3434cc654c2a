"""Funnel sections: stages in order, tables, charts and month-over-month changes.

Why it is read by columns and params, never by section name: the report job may send the funnel
by month, by model, by dealer group or ungrouped, starting at the configurator, the lead or the
finance application, and a dealer's copy may lack the ``financed`` stage. Groups are the rows'
dimension values in the order the section gives them; stages are ordered by the known journeys.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from cleanroom.reports.charts import Bars, Chart, Lines, Point, Series, color
from cleanroom.reports.document import Block, Cell, Figure, Paragraph, Row, Table
from cleanroom.reports.noise import RULE_SHORT, Change
from cleanroom.reports.results import Measure, Results, label_text
from cleanroom.reports.model import Section

JOURNEYS: dict[str, tuple[str, ...]] = {
    "configurator": ("configurator", "lead", "test_drive", "sale", "financed"),
    "lead": ("lead", "test_drive", "sale", "financed"),
    "application": ("application", "approved", "contract"),
}
STAGE_LABELS: dict[str, str] = {
    "configurator": "Configurator",
    "lead": "Lead",
    "test_drive": "Test drive",
    "sale": "Sale",
    "financed": "Financed (captive)",
    "application": "Application",
    "approved": "Approved",
    "contract": "Contract",
}
PERSONS_LABELS: dict[str, str] = {
    "configurator": "Configurator visitors",
    "lead": "Leads",
    "test_drive": "Test drives",
    "sale": "Buyers",
    "financed": "Buyers financed (captive)",
    "application": "Applicants",
    "approved": "Approved applicants",
    "contract": "Contracts signed",
}
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
MONTH_NAMES = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


def stage_label(stage: str) -> str:
    return STAGE_LABELS.get(stage, stage.replace("_", " ").capitalize())


def persons_label(stage: str) -> str:
    """What the persons at a stage are called in a sentence: 'Test drives', 'Buyers'."""
    return PERSONS_LABELS.get(stage, f"{stage_label(stage)} (persons)")


def step_label(before: str, stage: str) -> str:
    """'Lead → Test drive'; the financed step is named for what it is: the share of sales."""
    if stage == "financed":
        return "Financed share of sales"
    return f"{stage_label(before)} → {stage_label(stage)}"


def month_long(month: str) -> str:
    """'2026-10' -> 'October 2026' (fixed English names: output must not depend on the locale)."""
    year, m = month.split("-")
    return f"{MONTH_NAMES[int(m) - 1]} {year}"


def month_short(month: str) -> str:
    """'2026-10' -> 'Oct 26' for chart axes."""
    try:
        year, m = month.split("-")
        return f"{MONTHS[int(m) - 1]} {year[2:]}"
    except (ValueError, IndexError):
        return month


def previous_month(month: str) -> str:
    year, m = (int(x) for x in month.split("-"))
    return f"{year - 1}-12" if m == 1 else f"{year}-{m - 1:02d}"


@dataclass(frozen=True)
class Group:
    """One cohort of a funnel: its label ('2026-09', 'aster', 'all') and its rows by stage."""

    label: str
    stages: tuple[tuple[str, dict[str, Any]], ...]

    def record(self, stage: str) -> dict[str, Any] | None:
        return next((r for s, r in self.stages if s == stage), None)

    @property
    def display(self) -> str:
        """How people read the label: a month as 'October 2026', anything else as it is."""
        return month_long(self.label) if re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", self.label) else self.label


@dataclass(frozen=True)
class Funnel:
    """A funnel section read once: stage order, groups, and where its measures live."""

    section: Section
    stages: tuple[str, ...]
    groups: tuple[Group, ...]

    @property
    def by(self) -> str:
        """The grouping dimension ('' for an ungrouped funnel)."""
        return "/".join(self.section.dimensions)

    @property
    def entry(self) -> str:
        return self.stages[0] if self.stages else ""

    @property
    def is_monthly(self) -> bool:
        return self.section.dimensions == ["month"]

    def measure(self, results: Results, group: Group, stage: str, name: str) -> Measure | None:
        record = group.record(stage)
        return None if record is None else results.of(self.section, record, name)

    def steps(self) -> list[tuple[str, str]]:
        """(previous stage, stage) pairs after the cohort."""
        return list(zip(self.stages, self.stages[1:], strict=False))


def read_funnel(section: Section) -> Funnel:
    """Group the rows by their dimension values and order the stages by the known journey."""
    records = section.records()
    present = list(dict.fromkeys(str(r.get("stage")) for r in records))
    entry = str(section.params.get("entry") or "")
    journey = JOURNEYS.get(entry) or next((j for j in JOURNEYS.values() if present and present[0] == j[0]), ())
    stages = [s for s in journey if s in present] + [s for s in present if s not in journey]
    groups: dict[tuple[str, ...], list[tuple[str, dict[str, Any]]]] = {}
    for r in records:
        key = tuple(label_text(r.get(d)) for d in section.dimensions)
        groups.setdefault(key, []).append((str(r.get("stage")), r))
    ordered = [
        Group(" / ".join(key) or "all", tuple(sorted(rows, key=lambda sr: stages.index(sr[0]))))
        for key, rows in groups.items()
    ]
    if section.dimensions == ["month"]:
        ordered.sort(key=lambda g: g.label)
    return Funnel(section, tuple(stages), tuple(ordered))


def point(m: Measure | None) -> Point:
    """A chart point in display units from a measure (percent for rates)."""
    if m is None or m.value is None:
        return Point(None, suppressed=bool(m and m.suppressed))
    return Point(
        float(m.value),
        float(m.low) if m.low is not None else None,
        float(m.high) if m.high is not None else None,
    )


# --- tables -----------------------------------------------------------------------------------


def funnel_table(funnel: Funnel, results: Results, title: str) -> Table:
    """Stage rows under a header row per cohort: persons, step conversion, share of the cohort."""
    rows: list[Row] = []
    grouped = bool(funnel.section.dimensions)
    for group in funnel.groups:
        if grouped:
            rows.append(Row((Cell(f"{group.display} cohort" if funnel.is_monthly else group.display),), style="group"))
        for stage, _ in group.stages:
            step = Cell.of(funnel.measure(results, group, stage, "conversion"))
            if stage == "financed" and step.kind == "value":
                step = Cell(step.text, "value", step.interval, "share of sales", step.key)
            rows.append(
                Row(
                    (
                        Cell(stage_label(stage)),
                        Cell.of(funnel.measure(results, group, stage, "persons")),
                        step,
                        Cell.of(funnel.measure(results, group, stage, "cumulative_conversion")),
                    )
                )
            )
    return Table(
        title=title,
        header=("Stage", "Persons", "Conversion from previous stage", "Share of cohort"),
        rows=tuple(rows),
        widths=(1.3, 1.5, 1.9, 1.6),
        note="Persons are distinct people reaching the stage; the cohort is the first stage. "
        "For the financed stage, the conversion is the share of sales financed by the captive finance company.",
    )


def changes(funnel: Funnel, results: Results) -> list[tuple[str, str, list[Change | None]]]:
    """Month-over-month changes: (label, unit, one Change per consecutive month pair) per measure.

    Only for a funnel grouped by month; measures: persons at each stage, then each step's
    conversion, then each stage's share of the cohort.
    """
    out: list[tuple[str, str, list[Change | None]]] = []
    pairs = list(zip(funnel.groups, funnel.groups[1:], strict=False))

    def series(stage: str, name: str) -> list[Change | None]:
        found = []
        for a, b in pairs:
            ma, mb = funnel.measure(results, a, stage, name), funnel.measure(results, b, stage, name)
            found.append(Change(ma, mb) if ma is not None and mb is not None else None)
        return found

    for stage in funnel.stages:
        out.append((persons_label(stage), "persons", series(stage, "persons")))
    for before, stage in funnel.steps():
        out.append((f"{step_label(before, stage)}", "percent", series(stage, "conversion")))
    for stage in funnel.stages[1:]:
        if stage != "financed":
            out.append((f"Share of cohort reaching {stage_label(stage).lower()}", "percent", series(stage, "cumulative_conversion")))
    return out


def change_cell(change: Change | None) -> Cell:
    """A derived change: its size, bold with a marker when it is larger than the noise."""
    if change is None:
        return Cell("n/a", kind="na")
    if not change.comparable:
        hidden = change.before.suppressed or change.after.suppressed
        return Cell("suppressed" if hidden else "n/a", kind="suppressed" if hidden else "na")
    if change.beyond_noise:
        return Cell(change.text, kind="derived", flag="up" if change.diff > 0 else "down")
    return Cell(change.text, kind="muted", note="" if change.beyond_noise is False else "interval open")


MAX_CHANGE_COLUMNS = 6


def changes_table(funnel: Funnel, results: Results) -> Table | None:
    """The month-over-month table (the last few months), each change marked if beyond the noise."""
    if len(funnel.groups) < 2:
        return None
    rows_in = changes(funnel, results)
    months = [g.label for g in funnel.groups]
    pairs = [f"{month_short(a)} → {month_short(b)}" for a, b in zip(months, months[1:], strict=False)]
    keep = min(len(pairs), MAX_CHANGE_COLUMNS)
    rows = tuple(Row((Cell(label), *(change_cell(c) for c in found[-keep:]))) for label, _, found in rows_in)
    shown = "" if keep == len(pairs) else f" Only the last {keep} month pairs are shown."
    return Table(
        title="Month-over-month change",
        header=("Measure", *pairs[-keep:]),
        rows=rows,
        widths=(2.6, *([1.0] * keep)),
        note=f"Counts change in percent of the earlier month, rates in percentage points (pts). {RULE_SHORT}.{shown}",
    )


# --- charts -----------------------------------------------------------------------------------


def monthly_chart(funnel: Funnel, results: Results) -> Chart:
    """Persons per stage over the months (one small panel per stage: scales differ a lot)."""
    months = tuple(month_short(g.label) for g in funnel.groups)
    emphasis = tuple(i == len(funnel.groups) - 1 for i in range(len(funnel.groups)))  # the newest cohort
    panels = tuple(
        Bars(
            stage_label(stage),
            months,
            (Series("persons", tuple(point(funnel.measure(results, g, stage, "persons")) for g in funnel.groups), color(0), emphasis),),
            "persons",
        )
        for stage in funnel.stages
    )
    ncols = 3 if len(panels) > 3 else len(panels)
    return Chart(panels, ncols=max(ncols, 1), row_height=2.15, legend=False)


def monthly_conversion_chart(funnel: Funnel, results: Results) -> Chart:
    """Each step's conversion over the months, one line per step."""
    months = tuple(month_short(g.label) for g in funnel.groups)
    series = tuple(
        Series(step_label(before, stage), tuple(point(funnel.measure(results, g, stage, "conversion")) for g in funnel.groups), color(i))
        for i, (before, stage) in enumerate(funnel.steps())
    )
    return Chart((Lines("Conversion from the previous stage, by cohort month", months, series, "percent"),), row_height=2.9)


def group_conversion_chart(funnel: Funnel, results: Results) -> Chart:
    """Step conversions compared across groups (x: step, one bar per group), plus cohort sizes."""
    steps = funnel.steps()
    conv = Bars(
        "Conversion from the previous stage",
        tuple(step_label(b, s).replace("Financed share of sales", "Financed / sales") for b, s in steps),
        tuple(
            Series(g.label, tuple(point(funnel.measure(results, g, s, "conversion")) for _, s in steps), color(i))
            for i, g in enumerate(funnel.groups)
        ),
        "percent",
    )
    cohort = Bars(
        f"Cohort ({stage_label(funnel.entry).lower()})",
        tuple(g.label for g in funnel.groups),
        (
            Series(
                "",
                tuple(point(funnel.measure(results, g, funnel.entry, "persons")) for g in funnel.groups),
                colors=tuple(color(i) for i in range(len(funnel.groups))),
            ),
        ),
        "persons",
    )
    return Chart((cohort, conv), ncols=2, row_height=3.1, width_ratios=(1.0, 2.6))


def ungrouped_chart(funnel: Funnel, results: Results) -> Chart:
    """An ungrouped funnel: persons per stage."""
    group = funnel.groups[0]
    return Chart(
        (
            Bars(
                "Persons per stage",
                tuple(stage_label(s) for s in funnel.stages),
                (Series("persons", tuple(point(funnel.measure(results, group, s, "persons")) for s in funnel.stages), color(0)),),
                "persons",
            ),
        ),
        row_height=2.6,
        legend=False,
    )


def funnel_blocks(funnel: Funnel, results: Results) -> list[Block]:
    """Charts first (the shape), then the month-over-month table, then every number."""
    name = funnel.section.name
    blocks: list[Block] = []
    caption = "Bars and points are released (noisy) values; whiskers show the 95 % interval; hatched slots are suppressed cells."
    if not funnel.groups:
        return [Paragraph("No rows were released for this section.")]
    if funnel.is_monthly:
        blocks.append(Figure(f"{name}-persons", monthly_chart(funnel, results), f"Persons per stage by cohort month (the newest cohort is drawn darker). {caption}"))
        if funnel.steps():
            days = funnel.section.params.get("window_days")
            window = f"Each cohort is followed for the same {days}-day window, so the months compare fairly. " if days else ""
            blocks.append(Figure(f"{name}-conv", monthly_conversion_chart(funnel, results), f"Conversion from the previous stage by cohort month. {window}"
                                 + caption.replace("hatched slots are suppressed cells", "× marks a suppressed value")))
        mom = changes_table(funnel, results)
        if mom is not None:
            blocks.append(mom)
    elif funnel.section.dimensions:
        blocks.append(Figure(f"{name}-groups", group_conversion_chart(funnel, results), f"Cohort size and conversion from the previous stage by {funnel.by.replace('_', ' ')}. {caption}"))
    else:
        blocks.append(Figure(f"{name}-stages", ungrouped_chart(funnel, results), caption))
    blocks.append(funnel_table(funnel, results, f"All numbers: {funnel.section.title}"))
    return blocks


__all__ = [
    "Funnel", "Group", "JOURNEYS", "changes", "changes_table", "funnel_blocks", "month_long", "month_short",
    "persons_label", "point", "previous_month", "read_funnel", "stage_label", "step_label",
]  # fmt: skip
