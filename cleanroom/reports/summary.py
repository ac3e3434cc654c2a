"""Page one in plain words: what is missing, the headline KPIs, what moved, what the noise means.

Why this page is built from the by-month funnel: it is the only section that compares one month
with the month before on the same footing (cohorts by month of entry, each followed for the same
window; the newest is the latest cohort whose window closed by the end of the report month). The three numbers
that moved most are ranked by relative size of the change, and each says whether the change is
larger than the noise (see :mod:`cleanroom.reports.noise` for the rule), because a manager's
first question about a big move is whether it is real.
"""

from __future__ import annotations

from cleanroom.reports.attribution import AttributionGroup, credit_label
from cleanroom.reports.document import Block, Callout, Kpi, Kpis, Mover, Movers, Paragraph
from cleanroom.reports.funnel import Funnel, Group, changes, month_long, stage_label
from cleanroom.reports.model import Report
from cleanroom.reports.noise import RULE_TEXT, Change
from cleanroom.reports.results import Measure, Results

NOISE_LINES: tuple[str, ...] = (
    "Every number in this report is deliberately blurred with a little random noise, so that no single "
    "person can be singled out, not even by comparing reports.",
    "The range in brackets after a number is its 95 % interval: it holds the true value 95 times out of 100.",
    "“suppressed” means too few people to show the number safely. It is not zero.",
    "“n/a” means the number cannot be computed, for example the conversion of a cohort's first stage.",
)


def headline_funnel(funnels: list[Funnel]) -> Funnel | None:
    """The funnel for page one: by month, starting as early in the journey as possible."""
    monthly = [f for f in funnels if f.is_monthly and f.entry != "application"]
    order = ("configurator", "lead")
    monthly.sort(key=lambda f: order.index(f.entry) if f.entry in order else len(order))
    if monthly:
        return monthly[0]
    return next((f for f in funnels if not f.section.dimensions and f.entry != "application"), None)


def _kpi(label: str, m: Measure | None, note: str) -> Kpi:
    if m is None:
        return Kpi(label, "not in this report", "", note)
    if m.suppressed:
        return Kpi(label, "suppressed", "", note, m.key)
    return Kpi(label, m.value_text, m.interval_text, note, m.key)


def latest(funnel: Funnel | None) -> Group | None:
    """The cohort page one speaks about: the newest month of a by-month funnel (the gateway sends
    the latest cohort whose window has closed, which may be the month before the report month),
    or the only group of an ungrouped funnel."""
    if funnel is None or not funnel.groups:
        return None
    return funnel.groups[-1] if funnel.is_monthly else funnel.groups[0] if not funnel.section.dimensions else None


def _window(funnel: Funnel | None) -> str:
    days = funnel.section.params.get("window_days") if funnel else None
    return f" within its {days}-day window" if days else ""


def kpis(report: Report, funnel: Funnel | None, attribution: list[AttributionGroup], results: Results) -> Kpis:
    """Cohort size, entry -> sale conversion, financed share of sales; each with its interval."""
    group = latest(funnel)
    when = month_long(group.label) if funnel is not None and group is not None and funnel.is_monthly else month_long(report.month)
    entry = stage_label(funnel.entry).lower() if funnel else "entry"
    cohort = funnel.measure(results, group, funnel.entry, "persons") if funnel and group else None
    to_sale = funnel.measure(results, group, "sale", "cumulative_conversion") if funnel and group else None
    financed = funnel.measure(results, group, "financed", "conversion") if funnel and group else None
    financed_note = f"sales of the {when} cohort financed by the captive finance company"
    if financed is None:
        for g in attribution:
            for s in g.sections:
                total = g.record(s, "total")
                found = results.of(s, total, "financed_share") if total is not None else None
                if found is not None:
                    financed = found
                    model = s.params.get("model")
                    financed_note = f"of all sales in {month_long(report.month)} (attribution total{', ' + credit_label(str(model)).lower() if model else ''})"
                    break
            if financed is not None:
                break
    return Kpis(
        (
            _kpi("Cohort size", cohort, f"persons at the {entry} stage who entered in {when}"),
            _kpi(f"{stage_label(funnel.entry) if funnel else 'Entry'} → sale", to_sale, f"share of the {when} cohort that bought{_window(funnel)}"),
            _kpi("Financed share of sales", financed, financed_note),
        )
    )


def movers(report: Report, funnel: Funnel | None, results: Results, count: int = 3) -> Movers:
    """The ``count`` numbers that moved most (relative change) between the two newest cohort months."""
    title = "What moved most since last month"
    if funnel is None or not funnel.is_monthly:
        return Movers(title, (), RULE_TEXT, "This report has no funnel by month, so there is no month-over-month comparison.")
    months = [g.label for g in funnel.groups]
    if len(months) < 2:
        return Movers(title, (), RULE_TEXT, "The funnel by month holds a single cohort month: nothing to compare it with.")
    before, after = months[-2], months[-1]
    title = f"What moved most: {month_long(after)} cohort against {month_long(before)}"
    candidates: list[tuple[str, Change]] = []
    for label, _, found in changes(funnel, results):
        c = found[-1]
        if c is not None and c.relative is not None:
            candidates.append((label, c))
    candidates.sort(key=lambda lc: -abs(lc[1].relative or 0.0))
    items = []
    for label, c in candidates[:count]:
        direction = "up" if c.diff > 0 else "down" if c.diff < 0 else "unchanged"
        items.append(
            Mover(
                title=f"{label}: {direction} {c.text.lstrip('+-±')}" if direction != "unchanged" else f"{label}: unchanged",
                detail=f"{c.before.text} in {month_long(before)} → {c.after.text} in {month_long(after)}",
                change=c.text,
                beyond_noise=c.beyond_noise,
            )
        )
    empty = "" if items else "No number can be compared between the two months (suppressed or not released)."
    note = f" Cohorts are counted by the month people entered and followed{_window(funnel).replace(' its', ' their')}."
    if after != report.month:
        note += f" The newest cohort shown is the latest whose window had closed by the end of {month_long(report.month)}."
    return Movers(title, tuple(items), RULE_TEXT + note, empty)


def page_one(report: Report, funnels: list[Funnel], attribution: list[AttributionGroup], results: Results, issues: list[str]) -> list[Block]:
    """Missing data first (it changes how to read everything else), then KPIs, movers and noise."""
    blocks: list[Block] = []
    if report.missing:
        blocks.append(
            Callout(
                "alert",
                "Missing from this report",
                (*report.missing, "Numbers that depend on missing data are incomplete; read them with care."),
            )
        )
    funnel = headline_funnel(funnels)
    blocks.append(kpis(report, funnel, attribution, results))
    blocks.append(movers(report, funnel, results))
    if issues:
        blocks.append(Callout("warn", "Data not up to date", (*issues, "Details under “Data freshness and coverage”.")))
    blocks.append(Callout("info", "How to read the numbers", NOISE_LINES))
    if report.withheld:
        blocks.append(Paragraph(f"Sections not included for your role ({report.recipient_role}): {', '.join(report.withheld)}.", small=True))
    return blocks


__all__ = ["NOISE_LINES", "headline_funnel", "kpis", "latest", "movers", "page_one"]
