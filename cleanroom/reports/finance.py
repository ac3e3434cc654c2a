"""Captive penetration: the share of sales financed by the captive finance company.

Why a part of its own although the numbers also sit in the funnel and attribution tables: it is a
headline KPI for the brand and the finance company, and it is read across sources (cohort
funnels, credited sales by campaign/channel). Gathering it in one place answers "how much of what
we sell do we finance, and where" without hunting through other tables.
"""

from __future__ import annotations

from cleanroom.reports.attribution import AttributionGroup, measure_table
from cleanroom.reports.charts import Bars, Chart, Lines, Panel, Series, color
from cleanroom.reports.document import Block, Cell, Figure, Row, Table
from cleanroom.reports.funnel import Funnel, month_short, point
from cleanroom.reports.results import Results


def has_financed(funnel: Funnel) -> bool:
    return "financed" in funnel.stages and "sale" in funnel.stages


def penetration_table(funnel: Funnel, results: Results) -> Table:
    """Per cohort: sales, financed sales and the financed share (all released numbers)."""
    by = funnel.by.replace("_", " ") or "cohort"
    rows = tuple(
        Row(
            (
                Cell(g.display),
                Cell.of(funnel.measure(results, g, "sale", "persons")),
                Cell.of(funnel.measure(results, g, "financed", "persons")),
                Cell.of(funnel.measure(results, g, "financed", "conversion")),
            )
        )
        for g in funnel.groups
    )
    return Table(
        title=f"Financed share of sales by {by} ({funnel.section.title})",
        header=(by.capitalize(), "Sales", "Financed sales", "Financed share"),
        rows=rows,
        widths=(1.4, 1.6, 1.6, 1.6),
    )


def penetration_chart(funnels: list[Funnel], results: Results) -> Chart | None:
    """Financed share over the months (line) and across groups (bars), side by side."""
    panels: list[Panel] = []
    for f in funnels:
        pts = tuple(point(f.measure(results, g, "financed", "conversion")) for g in f.groups)
        if f.is_monthly:
            panels.append(Lines("By cohort month", tuple(month_short(g.label) for g in f.groups), (Series("financed share", pts, color(2)),), "percent"))
        elif f.section.dimensions:
            labels = tuple(g.label for g in f.groups)
            panels.append(Bars(f"By {f.by.replace('_', ' ')}", labels, (Series("financed share", pts, color(2)),), "percent"))
    if not panels:
        return None
    panels = panels[:3]
    return Chart(tuple(panels), ncols=len(panels), row_height=2.6, legend=False)


def finance_blocks(funnels: list[Funnel], attribution: list[AttributionGroup], results: Results) -> list[Block]:
    """The financed share from every funnel that has a financed stage, then from attribution."""
    blocks: list[Block] = []
    with_financed = [f for f in funnels if has_financed(f)]
    chart = penetration_chart(with_financed, results)
    if chart is not None:
        blocks.append(
            Figure(
                "penetration",
                chart,
                "Share of sales financed by the captive finance company, from the cohort funnels. "
                "Whiskers show the 95 % interval; suppressed values are marked, not drawn.",
            )
        )
    blocks.extend(penetration_table(f, results) for f in with_financed)
    for group in attribution:
        if any("financed_share" in s.columns for s in group.sections):
            blocks.append(
                measure_table(
                    group, results, "financed_share", f"Financed share of credited sales by {group.by}",
                    "Credited financed sales divided by credited sales, per credit model.",
                )
            )  # fmt: skip
    return blocks


__all__ = ["finance_blocks", "has_financed", "penetration_chart", "penetration_table"]
