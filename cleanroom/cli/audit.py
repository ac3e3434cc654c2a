"""CLI commands: ``cleanroom audit verify | show`` and ``cleanroom budget show``.

Read-only views for compliance officers and operators: the audit log at ``<store>/audit.jsonl``
and the budget ledger at ``<store>/budget.sqlite``. Nothing here writes to either; only
``audit anchor --adopt`` writes the integrity anchor ``<store>/anchor.json``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cleanroom.audit import AuditLog, Entry, VerifyReport
from cleanroom.budget import BudgetSummary, Ledger, MonthSummary, summarize
from cleanroom.cli._common import JsonOpt, KeysFileOpt, StoreOpt, console, emit_json, handle_errors, paths
from cleanroom.errors import ConfigError
from cleanroom.integrity import ANCHOR_FILE, Anchor, AnchorFile, AnchorState, peek
from cleanroom.settings import GatewaySecrets

AUDIT_FILE = "audit.jsonl"
LEDGER_FILE = "budget.sqlite"
DETAILS_WIDTH = 80

audit_app = typer.Typer(name="audit", help="Check and read the hash-chained audit log.", no_args_is_help=True)
budget_app = typer.Typer(name="budget", help="Read the privacy-budget ledger.", no_args_is_help=True)


def _month(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", value):
        raise typer.BadParameter(f"{value!r} is not a month YYYY-MM")
    return value


# --- audit ---------------------------------------------------------------------------------------


@audit_app.command("verify")
@handle_errors
def verify(
    store: StoreOpt = None,
    expected_head: Annotated[str | None, typer.Option("--expected-head", help="Head hash recorded elsewhere; detects a cut-off tail.")] = None,
    keys_file: KeysFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Walk the hash chain; report the first edited, dropped or reordered entry. Exit 1 if broken.

    When the store has an integrity anchor (written by the gateway), the log must also reach the
    anchored entry count and head: a removed last entry is reported. With the gateway keys
    (--keys-file or the environment) the anchor's MAC is checked too.
    """
    store_dir = paths(store=store).store
    log = AuditLog(store_dir / AUDIT_FILE)
    anchor, mac = _anchor(store_dir, keys_file)
    report = log.verify(expected_head=expected_head, anchored=(anchor.audit.entries, anchor.audit.head) if anchor else None)
    if as_json:
        emit_json({"path": str(log.path), **report.model_dump(), "anchor": None if anchor is None else {**anchor.audit.model_dump(), "mac": mac}})
    else:
        _print_verify(log, report)
        if anchor is not None:
            console.print(f"checked against {store_dir / ANCHOR_FILE} ({anchor.audit.entries} entries anchored; MAC {mac})", highlight=False)
    if not report.ok:
        raise typer.Exit(1)


def _anchor(store_dir: Path, keys_file: Path | None) -> tuple[AnchorState | None, str]:
    """The store's anchor and how far it was checked: 'verified' with the gateway keys, else 'not checked (no keys)'."""
    if not (store_dir / ANCHOR_FILE).exists():
        return None, "absent"
    try:
        secrets = GatewaySecrets.load(keys_file)
    except ConfigError:
        return peek(store_dir), "not checked (no gateway keys)"
    return AnchorFile(store_dir, secrets).read(), "verified"


@audit_app.command("anchor")
@handle_errors
def anchor(
    store: StoreOpt = None,
    keys_file: KeysFileOpt = None,
    adopt: Annotated[bool, typer.Option("--adopt", help="Anchor the ledger and audit log AS THEY ARE NOW (after an upgrade, or a restore you accept).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show the integrity anchor (MAC checked with the gateway keys), or --adopt the store as it is.

    Adopting accepts the current ledger and log as the truth: a ledger restored from an older copy
    then gives back the budget spent since. The audit chain must verify and every charge it
    records must be in the ledger.
    """
    store_dir = paths(store=store).store
    guard = Anchor(store_dir, Ledger(store_dir / LEDGER_FILE), AuditLog(store_dir / AUDIT_FILE), GatewaySecrets.load(keys_file))
    state = guard.adopt() if adopt else guard.read()
    if as_json:
        emit_json({"path": str(guard.path), "adopted": adopt, "anchor": None if state is None else state.model_dump()})
    elif state is None:
        console.print(f"no anchor at {guard.path} (the gateway writes one at its first start)", highlight=False)
    else:
        verb = "adopted" if adopt else "anchor verified"
        console.print(f"{verb}: {guard.path}: ledger {state.ledger.charges} charges ({state.ledger.micro / 1e6:g} epsilon, "
                      f"{state.ledger.results} cached releases), audit {state.audit.entries} entries, head {state.audit.head}", highlight=False)


def _print_verify(log: AuditLog, report: VerifyReport) -> None:
    if report.ok:
        console.print(f"[green]audit log intact[/]: {report.entries} entries in {log.path}", highlight=False)
        console.print(f"head {report.head}", highlight=False)
        return
    console.print(f"[bold red]audit log broken[/] at {log.path}:{report.first_bad_line}", highlight=False)
    console.print(f"{report.problem}", highlight=False)
    console.print(f"{report.entries} entries before it verify; last good head {report.head}", highlight=False)


@audit_app.command("show")
@handle_errors
def show(
    store: StoreOpt = None,
    event: Annotated[str | None, typer.Option("--event", help="Only entries of this event (e.g. query, upload, policy.activate).")] = None,
    last: Annotated[int | None, typer.Option("--last", min=1, help="Only the last N matching entries.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List audit entries, oldest first (use `audit verify` to check they were not tampered with)."""
    log = AuditLog(paths(store=store).store / AUDIT_FILE)
    entries = [e for e in log.entries() if event is None or e.event == event]
    entries = entries[-last:] if last else entries
    if as_json:
        emit_json([e.model_dump() for e in entries])
        return
    _print_entries(entries)


def _print_entries(entries: list[Entry]) -> None:
    table = Table("seq", "at", "event", "actor", "details")
    for e in entries:
        details = json.dumps(e.details, sort_keys=True, default=str)
        table.add_row(str(e.seq), e.at, e.event, e.actor, details if len(details) <= DETAILS_WIDTH else details[: DETAILS_WIDTH - 1] + "…")
    console.print(table)
    console.print(f"{len(entries)} entries", highlight=False)


# --- budget --------------------------------------------------------------------------------------


@budget_app.command("show")
@handle_errors
def budget_show(
    collaboration: Annotated[str, typer.Option("--collaboration", help="Collaboration id (e.g. aurora-2026).")],
    month: Annotated[str | None, typer.Option("--month", callback=_month, help="Only this month, YYYY-MM (default: every month with charges).")] = None,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Epsilon spent and remaining per partner and month, and the collaboration's lifetime total.

    Remaining budgets use the limits recorded with each partner's latest charge of the month.
    """
    summary = summarize(paths(store=store).store / LEDGER_FILE, collaboration, month)
    if as_json:
        emit_json(summary.model_dump(mode="json"))
        return
    _print_summary(summary)


def _print_summary(summary: BudgetSummary) -> None:
    if not summary.months:
        console.print(f"no budget charges for {summary.collaboration}", highlight=False)
    for m in summary.months:
        console.print(_month_table(m))
    console.print(f"lifetime epsilon for {summary.collaboration}: {summary.lifetime}", highlight=False)


def _month_table(m: MonthSummary) -> Table:
    title = f"{m.month}: spent {m.spent} of cap {m.collaboration_cap}; {m.collaboration_remaining_queries} left for queries overall"
    table = Table(title=title)
    table.add_column("partner", no_wrap=True)
    for header in ("spent (queries)", "spent (reports)", "budget", "report reserve", "left for queries", "left for reports"):
        table.add_column(header, justify="right")
    for p in m.partners:
        table.add_row(p.partner, str(p.spent_queries), str(p.spent_reports), str(p.limits.partner_budget), str(p.limits.report_reserve), str(p.remaining_queries), str(p.remaining_reports))
    return table


def register(app: typer.Typer) -> None:
    """Add the ``audit`` and ``budget`` command groups to the main app."""
    app.add_typer(audit_app, name="audit")
    app.add_typer(budget_app, name="budget")
