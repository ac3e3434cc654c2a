"""The report's outline: which section goes in which part, in which order, under which heading.

Why sections are placed by template, params and dimensions rather than by name: the report job
decides which sections exist and a recipient's copy omits what their role may not see. Placing by
shape means a new funnel or another credit model lands in the right part without code changes;
names only decide the order inside a part (known names first, then the report's own order).
Parts without content are left out and the rest numbered consecutively.
"""

from __future__ import annotations

from cleanroom.reports.attribution import attribution_blocks, group_attribution
from cleanroom.reports.coverage import freshness_blocks, issues, methods_blocks, utc_text
from cleanroom.reports.document import Block, Cell, Document, Heading, Paragraph, Part, Row, Table
from cleanroom.reports.finance import finance_blocks
from cleanroom.reports.funnel import Funnel, funnel_blocks, month_long, read_funnel
from cleanroom.reports.lifecycle import lifecycle_blocks
from cleanroom.reports.model import Report, Section
from cleanroom.reports.results import Results, label_columns, label_text, measure_columns
from cleanroom.reports.summary import page_one

KNOWN_ORDER: tuple[str, ...] = (
    "funnel_by_month", "funnel_by_model", "funnel_by_dealer_group", "finance_funnel",
    "attribution_campaign_last_touch", "attribution_campaign_linear", "attribution_campaign_position_based",
    "attribution_channel_last_touch", "attribution_channel_linear", "attribution_channel_position_based",
    "contracts_ending_by_product",
)  # fmt: skip


def ordered(report: Report) -> list[Section]:
    """Known section names first in their usual order, then the others as the report lists them."""
    position = {s.name: i for i, s in enumerate(report.sections)}

    def key(s: Section) -> tuple[int, int]:
        return (KNOWN_ORDER.index(s.name) if s.name in KNOWN_ORDER else len(KNOWN_ORDER), position[s.name])

    return sorted(report.sections, key=key)


def _notes(section: Section) -> list[Block]:
    return [Paragraph(" ".join(section.notes), small=True)] if section.notes else []


def generic_blocks(section: Section, results: Results) -> list[Block]:
    """Any other template: its rows as a table, every released number with its interval."""
    labels, measures = label_columns(section), measure_columns(section)
    rows = tuple(
        Row((*(Cell(label_text(r.get(c))) for c in labels), *(Cell.of(results.of(section, r, m)) for m in measures)))
        for r in section.records()
    )
    return [
        Table(
            title=section.title,
            header=(*(c.replace("_", " ") for c in labels), *(m.replace("_", " ") for m in measures)),
            rows=rows,
            widths=(*([1.2] * len(labels)), *([1.6] * len(measures))),
            numeric_from=len(labels),
        )
    ]


def _funnel_part(funnels: list[Funnel], results: Results) -> list[Block]:
    blocks: list[Block] = []
    for f in funnels:
        blocks.append(Heading(f.section.title))
        blocks.extend(funnel_blocks(f, results))
        blocks.extend(_notes(f.section))
    return blocks


def build_document(report: Report, results: Results) -> Document:
    """The whole report as a :class:`Document`: page one, then the numbered parts."""
    sections = ordered(report)
    funnels = [read_funnel(s) for s in sections if s.template == "funnel"]
    journey = [f for f in funnels if f.entry != "application" and "dealer_group" not in f.section.dimensions]
    dealers = [f for f in funnels if f.entry != "application" and "dealer_group" in f.section.dimensions]
    applications = [f for f in funnels if f.entry == "application"]
    attribution = group_attribution([s for s in sections if s.template == "attribution"])
    lifecycle = [s for s in sections if s.template == "lifecycle"]
    others = [s for s in sections if s.template not in ("funnel", "attribution", "lifecycle")]
    found_issues = issues(report)

    planned: list[tuple[str, str, list[Block]]] = []
    planned.append(("Customer journey funnel", "funnel", _funnel_part(journey, results)))
    attr_blocks: list[Block] = []
    for g in attribution:
        attr_blocks.append(Heading(f"Attribution by {g.by}"))
        attr_blocks.extend(attribution_blocks(g, results))
        notes = dict.fromkeys(n for s in g.sections for n in s.notes)  # the same words once, not per credit model
        if notes:
            attr_blocks.append(Paragraph(" ".join(notes), small=True))
    planned.append(("Attribution: campaigns and channels", "attribution", attr_blocks))
    fin = finance_blocks(journey + dealers, attribution, results)
    if fin:
        fin = [Heading("Financed share of sales (captive penetration)"), *fin]
    fin.extend(_funnel_part(applications, results))
    planned.append(("Captive finance", "finance", fin))
    planned.append(("Dealer-group comparison", "dealers", _funnel_part(dealers, results)))
    life: list[Block] = []
    for s in lifecycle:
        life.extend([*lifecycle_blocks(s, results), *_notes(s)])
    planned.append(("Contracts ending in the next quarter", "lifecycle", life))
    other: list[Block] = []
    for s in others:
        other.extend([Heading(s.title), *generic_blocks(s, results), *_notes(s)])
    planned.append(("Other sections", "other", other))
    planned.append(("Data freshness and coverage", "freshness", freshness_blocks(report)))
    planned.append(("Methods", "methods", methods_blocks(report)))

    parts = [(title, anchor, blocks) for title, anchor, blocks in planned if blocks]
    when = month_long(report.month)
    return Document(
        title=f"Monthly attribution report · {when}",
        subtitle=f"Collaboration {report.collaboration}",
        recipient_line=f"Prepared for {report.recipient} ({report.recipient_role}) · generated {utc_text(report.generated_at)}",
        page_one=tuple(page_one(report, funnels, attribution, results, found_issues)),
        parts=tuple(Part(i, title, anchor, tuple(blocks)) for i, (title, anchor, blocks) in enumerate(parts, start=2)),
        footer=f"{report.collaboration} · {report.month} · {report.recipient} · policy {report.policy_hash[:12]}",
    )


__all__ = ["KNOWN_ORDER", "build_document", "generic_blocks", "ordered"]
