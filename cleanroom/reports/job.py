"""The unattended monthly report job: plan, release each section once, write every recipient's files.

Why over HTTP: the job holds a ``report`` API key and nothing else (no store, no secrets), so it
can run on any machine; every number it writes came out of the gateway's one release path.

Why a temporary directory renamed at the end: a run that fails halfway (gateway gone, disk full,
a bug in a renderer) leaves no half-written report, and a re-run simply starts again. A month's
sections are released once per collaboration: a re-run gets the stored releases back (same
numbers, same query ids, no new charge), so its files differ only in the generated time.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from cleanroom.errors import CleanroomError, QueryError, ReportError
from cleanroom.reports.model import Freshness, Report, Section

if TYPE_CHECKING:
    from cleanroom.client import Client, QueryResult, ReportPlan

MANIFEST = "manifest.json"

# Exit codes a scheduler can act on (docs/guides/monthly-report.md).
EXIT_OK = 0
EXIT_FAILED = 1  # anything not listed below: read the message
EXIT_USAGE = 2  # bad arguments, or a month that is not complete yet
EXIT_INCOMPLETE = 3  # a partner's data is missing, empty or not uploaded since the month ended
EXIT_BUDGET = 4  # the report reservation does not cover a section
EXIT_GATEWAY = 5  # the gateway is unreachable, or the key is unknown, revoked or not a report key
EXIT_POLICY = 6  # no active, valid, fully signed policy (or it has no report block)


class IncompleteData(ReportError):
    """Raised (before anything is released) when a partner's data for the month is missing."""

    def __init__(self, gaps: list[str]) -> None:
        super().__init__("report.data_incomplete", "data for the month is incomplete: " + "; ".join(gaps), gaps=gaps)
        self.gaps = gaps


def exit_code(exc: BaseException) -> int:
    """The documented exit code for an error (the scheduler's view of what went wrong)."""
    if isinstance(exc, IncompleteData):
        return EXIT_INCOMPLETE
    code = getattr(exc, "code", "")
    if code.startswith("budget."):
        return EXIT_BUDGET
    if code.startswith("auth.") or code == "config.invalid":
        return EXIT_GATEWAY
    if code.startswith("policy."):
        return EXIT_POLICY
    if code in ("query.invalid_params", "query.invalid"):
        return EXIT_USAGE
    return EXIT_FAILED


@dataclass
class RunResult:
    """What one run did: where the files are, what was released now and what came from the store."""

    directory: Path
    month: str
    recipients: list[str]
    files: list[Path]
    charged: dict[str, str] = field(default_factory=dict)  # section -> epsilon charged by THIS run
    reused: list[str] = field(default_factory=list)  # sections whose stored release was returned
    missing: list[str] = field(default_factory=list)


Progress = Callable[[str, dict[str, Any]], None]


def run_monthly(client: Client, collaboration: str, month: str, out: Path, *, allow_partial: bool = False,
                progress: Progress | None = None, now: Callable[[], datetime] | None = None) -> RunResult:
    """Produce ``out/<collaboration>/<month>/<recipient>/`` for every recipient, atomically."""
    say = progress or (lambda event, data: None)
    plan = client.report_plan(collaboration, month)
    if not plan.complete:
        raise QueryError("query.invalid_params", f"{month} is not complete yet: run the report after the month ends (UTC)", field="month")
    gaps = [f.detail or f"{f.partner}.{f.dataset}: {f.status}" for f in plan.freshness if f.status != "ok"]
    if gaps and not allow_partial:
        raise IncompleteData(gaps)
    say("plan", {"sections": len(plan.sections), "recipients": len(plan.recipients), "gaps": len(gaps)})
    released: dict[str, QueryResult] = {}
    result = RunResult(directory=out / collaboration / month, month=month, recipients=[r.partner for r in plan.recipients], files=[], missing=gaps)
    for section in plan.sections:
        try:
            got = client.report_section(collaboration, month, section.name)
        except CleanroomError as exc:
            if not (allow_partial and exc.code == "query.dataset_missing"):
                raise
            gaps.append(f"section {section.title or section.name} not released: {exc.message}")
            say("section", {"section": section.name, "skipped": exc.code})
            continue
        released[section.name] = got
        if got.cached:
            result.reused.append(section.name)
        else:
            result.charged[section.name] = section.epsilon
        say("section", {"section": section.name, "epsilon": section.epsilon, "cached": got.cached})
    generated = (now or (lambda: datetime.now(UTC)))().astimezone(UTC).replace(microsecond=0)
    result.files = _write_all(plan, released, result.directory, generated, gaps, say)
    return result


def _write_all(plan: ReportPlan, released: dict[str, QueryResult], final: Path, generated: datetime, gaps: list[str],
               say: Progress) -> list[Path]:
    """Render every recipient into a temporary sibling directory, then swap it in with one rename."""
    from cleanroom.reports.render import write_report_files

    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        written: list[Path] = []
        for recipient in plan.recipients:
            report = build_report(plan, released, recipient.partner, recipient.role, generated, gaps)
            folder = staging / recipient.partner
            folder.mkdir()
            hashes = write_report_files(report, folder)
            manifest = _manifest(plan, released, report, generated, hashes)
            (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            written += [final / recipient.partner / name for name in [*sorted(hashes), MANIFEST]]
            say("recipient", {"recipient": recipient.partner, "sections": len(report.sections)})
        _swap(staging, final)
        return written
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _swap(staging: Path, final: Path) -> None:
    """Replace ``final`` by ``staging``: the old report stays whole until the new one is complete."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
    staging.rename(final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def build_report(plan: ReportPlan, released: dict[str, QueryResult], recipient: str, role: str, generated: datetime,
                 gaps: list[str]) -> Report:
    """One recipient's report: only the sections the policy names it for, in policy order."""
    sections, withheld = [], []
    for s in plan.sections:
        if recipient not in s.recipients:
            withheld.append(s.name)
            continue
        if s.name not in released:  # not released for lack of data: named in `gaps`
            continue
        got = released[s.name]
        sections.append(Section(name=s.name, title=s.title, template=s.template, params=s.params, dimensions=s.dimensions,
                                columns=list(got.columns), rows=[list(r) for r in got.rows], notes=list(got.notes), epsilon=s.epsilon,
                                query_id=got.query_id))
    freshness = [Freshness(partner=f.partner, dataset=f.dataset, version=f.version, uploaded_at=f.uploaded_at, status=f.status, detail=f.detail)
                 for f in plan.freshness]
    return Report(collaboration=plan.collaboration, month=plan.month, recipient=recipient, recipient_role=role, generated_at=generated,
                  policy_hash=plan.policy_hash, sections=sections, freshness=freshness, missing=gaps, withheld=withheld)


def _manifest(plan: ReportPlan, released: dict[str, QueryResult], report: Report, generated: datetime, hashes: dict[str, str]) -> dict[str, Any]:
    data: dict[str, dict[str, Any]] = {}
    for f in plan.freshness:
        data.setdefault(f.partner, {})[f.dataset] = {"version": f.version, "uploaded_at": f.uploaded_at.isoformat() if f.uploaded_at else None,
                                                    "status": f.status}
    return {
        "collaboration": plan.collaboration,
        "month": plan.month,
        "recipient": report.recipient,
        "policy_hash": plan.policy_hash,
        "generated_at": generated.isoformat(),
        "sections": [{"name": s.name, "template": s.template, "epsilon": s.epsilon, "query_id": s.query_id} for s in report.sections],
        "withheld_sections": report.withheld,
        "epsilon_total": str(sum((Decimal(s.epsilon) for s in report.sections), start=Decimal("0"))),
        "data": data,
        "missing": report.missing,
        "files": {name: {"sha256": digest} for name, digest in sorted(hashes.items())},
    }


__all__ = ["EXIT_BUDGET", "EXIT_FAILED", "EXIT_GATEWAY", "EXIT_INCOMPLETE", "EXIT_OK", "EXIT_POLICY", "EXIT_USAGE", "IncompleteData", "RunResult",
           "build_report", "exit_code", "run_monthly"]
