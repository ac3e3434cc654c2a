"""CLI command: ``cleanroom synth``, synthetic partner files with PII and their ground truth."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cleanroom.cli._common import JsonOpt, PartnersOpt, console, emit_json, err_console, handle_errors, paths
from cleanroom.synth import STEPS, SynthSummary, generate
from cleanroom.synth.domains import DEFAULT_END_DATE

CustomersOpt = Annotated[int, typer.Option("--customers", min=1, help="Number of synthetic customers (persons) to generate.")]
SeedOpt = Annotated[int, typer.Option("--seed", min=0, help="Random seed; the same seed writes the same bytes.")]
OutOpt = Annotated[Path, typer.Option("--out", help="Output directory: <partner>/<dataset>.csv and ground_truth.json.")]
EndDateOpt = Annotated[
    datetime,
    typer.Option("--end-date", formats=["%Y-%m-%d"], show_default="2026-10-31", help="Last day of the twelve-month data period (YYYY-MM-DD)."),
]


@contextmanager
def _progress(enabled: bool) -> Iterator[Progress | None]:
    """A progress bar on stderr (so ``--json`` output on stdout stays clean)."""
    if not enabled:
        yield None
        return
    bar = Progress(TextColumn("{task.description:<12}"), BarColumn(), TimeElapsedColumn(), console=err_console, transient=True)
    with bar:
        yield bar


def _run(customers: int, seed: int, out: Path, end: datetime, partners: Path, show: bool) -> SynthSummary:
    with _progress(show) as bar:
        task = bar.add_task(STEPS[0], total=len(STEPS)) if bar else None

        def report(step: str, done: int, total: int) -> None:
            if bar is not None and task is not None:
                nxt = STEPS[done] if done < len(STEPS) else "done"
                bar.update(task, completed=done, description=nxt)

        return generate(customers, seed, out, end.date(), partners, progress=report)


def _print(summary: SynthSummary) -> None:
    table = Table(title=f"synthetic data in {summary.out}", show_edge=False)
    table.add_column("file")
    table.add_column("rows", justify="right")
    for name, rows in summary.files.items():
        table.add_row(name, f"{rows:,}")
    console.print(table)
    console.print(
        f"{summary.customers:,} customers (seed {summary.seed}) -> {summary.rows:,} rows, "
        f"{summary.persons:,} keyed persons; ground truth: {summary.ground_truth} ({summary.seconds:.1f} s)"
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""

    @app.command("synth")
    @handle_errors
    def synth(
        out: OutOpt = Path("synthetic"),
        customers: CustomersOpt = 20_000,
        seed: SeedOpt = 42,
        end_date: EndDateOpt = datetime.combine(DEFAULT_END_DATE, datetime.min.time()),
        partners: PartnersOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Generate raw partner files (with messy PII) and their exact ground truth.

        Writes OUT/<partner>/<dataset>.csv for every dataset the partner files declare, as the partners really hold them (names, emails, phones, CRM ids), and OUT/ground_truth.json with every metric computed exactly on the identities `cleanroom prepare` will derive. See docs/guides/synthetic-data.md.
        """
        summary = _run(customers, seed, out, end_date, paths(partners=partners).partners, show=not as_json)
        if as_json:
            emit_json(summary.model_dump(mode="json"))
        else:
            _print(summary)
