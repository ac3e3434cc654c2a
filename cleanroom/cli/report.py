"""``cleanroom report monthly``: the unattended monthly attribution report, over HTTP with a report key.

Exit codes (docs/guides/monthly-report.md): 0 success, 2 usage or month not complete, 3 data
incomplete, 4 budget exhausted, 5 gateway unreachable or key refused, 6 no valid active policy,
1 anything else. On a terminal it shows a progress bar; otherwise it writes one JSON line per
step to stderr, which a scheduler's log collector can parse.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from cleanroom.cli._common import console, endpoint, err_console
from cleanroom.errors import CleanroomError

report_app = typer.Typer(help="The monthly report: funnel, attribution, captive finance and contracts ending, per recipient.", no_args_is_help=True)


@report_app.command("monthly")
def monthly(
    collaboration: Annotated[str, typer.Option("--collaboration", help="Collaboration id, e.g. aurora-2026.")],
    out: Annotated[Path, typer.Option("--out", help="Output directory; the report goes to OUT/<collaboration>/<month>/<recipient>/.")],
    month: Annotated[str | None, typer.Option("--month", help="YYYY-MM (default: the last complete calendar month, UTC).")] = None,
    gateway: Annotated[str | None, typer.Option("--gateway", envvar="CLEANROOM_GATEWAY", help="Gateway URL (else $CLEANROOM_GATEWAY).")] = None,
    api_key_file: Annotated[Path | None, typer.Option("--api-key-file", help="File holding a report API key (else $CLEANROOM_API_KEY).")] = None,
    allow_partial: Annotated[bool, typer.Option("--allow-partial", help="Write the report even if a partner's data is missing (page one says what).")] = False,
) -> None:
    """Release the month's report sections once (re-runs reuse them) and write every recipient's files."""
    from cleanroom.reports.job import EXIT_USAGE, exit_code
    from cleanroom.reports.months import last_complete_month, parse_month

    log = _Log(sys.stderr.isatty())
    try:
        month = month or last_complete_month()
        parse_month(month)
        url, key = endpoint(gateway, api_key_file, "report API key")
        result = _run(url, key, collaboration, month, out, allow_partial, log)
    except CleanroomError as exc:
        log.error(exc)
        raise typer.Exit(exit_code(exc)) from None
    except typer.BadParameter:
        raise typer.Exit(EXIT_USAGE) from None
    finally:
        log.close()
    _summary(result)


def _run(url: str, key: str, collaboration: str, month: str, out: Path, allow_partial: bool, log: _Log) -> Any:
    from cleanroom.client import Client
    from cleanroom.reports.job import run_monthly

    with Client(url, key, timeout=600) as client:
        return run_monthly(client, collaboration, month, out, allow_partial=allow_partial, progress=log.event)


def _summary(result: Any) -> None:
    charged = ", ".join(f"{name} {eps}" for name, eps in result.charged.items()) or "nothing (every section was already released)"
    console.print(f"report {result.month} written to {result.directory}", highlight=False)
    console.print(f"  recipients: {', '.join(result.recipients)}; files: {len(result.files)}", highlight=False)
    console.print(f"  epsilon charged by this run: {charged}", highlight=False)
    if result.missing:
        console.print(f"  [yellow]partial:[/] {'; '.join(result.missing)}", highlight=False)


class _Log:
    """Progress: a bar on a terminal, one JSON line per event otherwise."""

    def __init__(self, tty: bool) -> None:
        self.tty = tty
        self._progress: Any = None
        self._task: Any = None

    def event(self, name: str, data: dict[str, Any]) -> None:
        if not self.tty:
            print(json.dumps({"at": datetime.now(UTC).isoformat(timespec="seconds"), "event": name, **data}), file=sys.stderr, flush=True)
            return
        if name == "plan":
            from rich.progress import Progress

            self._progress = Progress(console=err_console, transient=True)
            self._progress.start()
            self._task = self._progress.add_task("releasing sections", total=data["sections"] + data["recipients"])
        elif self._progress is not None:
            label = f"section {data['section']}" if name == "section" else f"writing {data.get('recipient')}"
            self._progress.update(self._task, advance=1, description=label)

    def error(self, exc: CleanroomError) -> None:
        self.close()
        if self.tty:
            from rich.markup import escape

            err_console.print(f"[bold red]error[/] {escape(f'[{exc.code}]')} {escape(exc.message)}", highlight=False)
        else:
            print(json.dumps({"at": datetime.now(UTC).isoformat(timespec="seconds"), "event": "error", "code": exc.code, "message": exc.message}),
                  file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def register(app: typer.Typer) -> None:
    app.add_typer(report_app, name="report")


__all__ = ["register"]
