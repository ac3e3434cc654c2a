"""Turn one recipient's monthly :class:`Report` into its four files; nothing else.

Why this is the only entry point: the report job (fetching sections, choosing recipients) and
the rendering live apart, so rendering can be tested with hand-built reports and never touches
HTTP, a gateway or a store. All four files come from one :class:`Results` (the rounded numbers)
and one :class:`Document` (the content), so the CSV, the Parquet, the HTML and the PDF cannot
disagree. Same report (same ``generated_at``) -> byte-identical files, so a re-run can be checked
by hash and a recipient can verify what was sent.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from cleanroom.reports.html import render_html
from cleanroom.reports.model import Report
from cleanroom.reports.outline import build_document
from cleanroom.reports.pdf import render_pdf
from cleanroom.reports.results import Results, write_csv, write_parquet

FILES: tuple[str, ...] = ("report.html", "report.pdf", "results.csv", "results.parquet")


def write_report_files(report: Report, directory: Path) -> dict[str, str]:
    """Write report.html, report.pdf, results.csv, results.parquet into `directory` (which exists and is empty); return {file name: sha256 hex}."""
    results = Results(report)
    document = build_document(report, results)
    (directory / "report.html").write_text(render_html(document), encoding="utf-8", newline="\n")
    (directory / "report.pdf").write_bytes(render_pdf(document, report.generated_at))
    write_csv(results.measures, directory / "results.csv")
    write_parquet(results.measures, directory / "results.parquet")
    return {name: hashlib.sha256((directory / name).read_bytes()).hexdigest() for name in FILES}


__all__ = ["FILES", "write_report_files"]
