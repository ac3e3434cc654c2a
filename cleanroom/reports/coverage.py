"""Data freshness and coverage, and the methods footer (epsilon, query ids, policy, time).

Why the report says this about itself: a number is only as good as the data behind it. A partner
whose upload is missing or stale changes what the numbers mean, so the reader must see it named in
words, not only as a status code; and the privacy cost (epsilon per section) and the query ids
let an auditor tie every section to the gateway's audit log.
"""

from __future__ import annotations

from datetime import UTC, datetime
from fractions import Fraction

from cleanroom.reports.document import Block, Callout, Cell, Paragraph, Row, Table
from cleanroom.reports.model import Freshness, Report
from cleanroom.reports.results import params_json

STATUS_WORDS = {
    "missing": "is missing",
    "stale": "is stale (not updated for this month)",
    "empty": "was uploaded empty",
}


def utc_text(moment: datetime | None) -> str:
    """'2026-11-01 06:00 UTC' (a naive time is taken as UTC)."""
    if moment is None:
        return "—"
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def freshness_issue(f: Freshness) -> str:
    """One not-ok dataset in a sentence: 'lakeside-autos sales is missing: no upload for 2026-10.'"""
    words = STATUS_WORDS.get(f.status, f"has status {f.status}")
    detail = f": {f.detail}" if f.detail else ""
    return f"{f.partner} {f.dataset} {words}{detail}."


def issues(report: Report) -> list[str]:
    return [freshness_issue(f) for f in report.freshness if f.status != "ok"]


def freshness_blocks(report: Report) -> list[Block]:
    """The freshness table (not-ok rows stand out) with the issues named in words above it."""
    blocks: list[Block] = []
    found = issues(report)
    if found:
        blocks.append(Callout("warn", "Not up to date", tuple(found)))
    else:
        blocks.append(Paragraph("Every partner dataset the report reads was up to date when the report ran."))
    rows = tuple(
        Row(
            (
                Cell(f.partner),
                Cell(f.dataset),
                Cell(str(f.version) if f.version is not None else "—"),
                Cell(utc_text(f.uploaded_at)),
                Cell(f.status.upper() if f.status != "ok" else "ok", kind="label"),
                Cell(f.detail or ""),
            ),
            style="" if f.status == "ok" else "alert",
        )
        for f in report.freshness
    )
    blocks.append(
        Table(
            title="Partner datasets",
            header=("Partner", "Dataset", "Version", "Uploaded at", "Status", "Detail"),
            rows=rows,
            widths=(1.5, 1.2, 0.7, 1.5, 0.8, 2.3),
            numeric_from=99,
        )
    )
    return blocks


def epsilon_texts(epsilon: str) -> tuple[str, str]:
    """('1/2', '0.5'): the exact fraction and its decimal (6 places, marked ≈ when rounded)."""
    try:
        value = Fraction(epsilon)
    except (ValueError, ZeroDivisionError):
        return epsilon, "—"
    fraction = f"{value.numerator}/{value.denominator}" if value.denominator != 1 else str(value.numerator)
    scaled = value * 10**6
    decimal = f"{float(value):.6f}".rstrip("0").rstrip(".")
    return fraction, decimal if scaled.denominator == 1 else f"≈ {decimal}"


def methods_blocks(report: Report) -> list[Block]:
    """Epsilon per section (exact and decimal), query ids, policy hash, generated time, withheld."""
    rows = []
    total = Fraction(0)
    for s in report.sections:
        fraction, decimal = epsilon_texts(s.epsilon)
        try:
            total += Fraction(s.epsilon)
        except (ValueError, ZeroDivisionError):
            pass
        params = params_json(s.params) if s.params else "—"
        cached = " (cached)" if s.cached else ""
        rows.append(Row((Cell(s.name), Cell(f"{s.template} {params}"), Cell(fraction), Cell(decimal), Cell(s.query_id + cached))))
    t_fraction, t_decimal = epsilon_texts(str(total))
    rows.append(Row((Cell("total"), Cell(""), Cell(t_fraction), Cell(t_decimal), Cell("")), style="total"))
    blocks: list[Block] = [
        Table(
            title="Privacy cost and provenance per section",
            header=("Section", "Template and parameters", "ε (exact)", "ε (decimal)", "Query id"),
            rows=tuple(rows),
            widths=(2.5, 2.6, 0.7, 0.9, 1.2),
            numeric_from=99,
        ),
        Paragraph(
            f"Policy hash {report.policy_hash}. Generated {utc_text(report.generated_at)} for {report.recipient} "
            f"({report.recipient_role}). Every number is a released, differentially private value exactly as the "
            "gateway returned it; rounding for display follows results.csv. A cached section was released "
            "earlier and re-read without spending epsilon again."
        ),
    ]
    if report.withheld:
        blocks.append(Paragraph("Not included for your role: " + ", ".join(report.withheld) + "."))
    return blocks


__all__ = ["epsilon_texts", "freshness_blocks", "freshness_issue", "issues", "methods_blocks", "utc_text"]
