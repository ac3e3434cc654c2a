"""CLI command: ``cleanroom prepare`` (runs on the partner's machine)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cleanroom.cli._common import JsonOpt, PartnersOpt, console, emit_json, err_console, handle_errors, paths
from cleanroom.crypto import read_signing_key
from cleanroom.keys import load_salt
from cleanroom.partners import get_partner
from cleanroom.prepare import DEFAULT_REGION, PrepareSummary, prepare_partner


def _print_summary(summary: PrepareSummary, out: Path) -> None:
    table = Table(title=f"{summary.partner}: prepared into {out}")
    for col in ("dataset", "rows in", "rows out", "by email", "by phone", "no identity"):
        table.add_column(col, justify="left" if col == "dataset" else "right")
    for d in summary.datasets.values():
        i = d.identity
        table.add_row(d.dataset, f"{d.rows_in:,}", f"{d.rows_out:,}", f"{i.keyed_by_email:,}", f"{i.keyed_by_phone:,}", f"{i.rows_without_identity:,}")
    console.print(table)
    console.print(
        f"{summary.rows_in:,} rows in {summary.seconds:.2f} s ({summary.identifiers_per_second:,.0f} identifiers/s, "
        f"{summary.workers} worker(s)); salt fingerprint {summary.salt_fingerprint}; details in {out / 'summary.json'}",
        highlight=False,
    )
    if summary.allow_shrink:
        console.print("--allow-shrink: the manifests allow the gateway to replace a dataset with a much smaller (or empty) version", highlight=False)


def _run(
    partner_id: str, salt_file: Path, key: Path, raw: Path, out: Path, partners: Path | None, region: str, workers: int, allow_shrink: bool, quiet: bool
) -> PrepareSummary:
    partner = get_partner(paths(partners=partners).partners, partner_id)
    salt, signing_key = load_salt(salt_file), read_signing_key(key)
    if quiet:
        return prepare_partner(partner, salt, raw, out, signing_key, region=region, workers=workers, allow_shrink=allow_shrink)
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task(f"preparing {partner_id}", total=None)

        def progress(description: str, done: int, total: int) -> None:
            bar.update(task, description=description, completed=done, total=total)

        return prepare_partner(partner, salt, raw, out, signing_key, region=region, workers=workers, progress=progress, allow_shrink=allow_shrink)


@handle_errors
def prepare(
    partner: Annotated[str, typer.Option("--partner", help="Your partner id (partners/<id>.toml declares your datasets).")],
    salt_file: Annotated[Path, typer.Option("--salt-file", help="The collaboration salt (from `cleanroom keys salt`, 0600).")],
    key: Annotated[Path, typer.Option("--key", help="Your uploader private key (from `cleanroom keys signing --role uploader`).")],
    raw: Annotated[Path, typer.Option("--in", help="Raw folder: RAW/<partner>/<dataset>.csv, or your own folder RAW/<dataset>.csv.")],
    out: Annotated[Path, typer.Option("--out", help="Output folder for <dataset>.arrow, <dataset>.manifest.json and summary.json.")],
    partners: PartnersOpt = None,
    region: Annotated[str, typer.Option("--region", help="Default region for national phone numbers (ISO 3166).")] = DEFAULT_REGION,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Processes used to key large files.")] = 2,
    allow_shrink: Annotated[
        bool,
        typer.Option(
            "--allow-shrink",
            help="Sign that these files may be empty or less than half the size of the gateway's current version "
            "(for every dataset of this run); without it the gateway refuses such an upload.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Key identifiers with the salt, drop every undeclared column, and sign the result for upload.

    Rows without a valid email or phone are dropped and counted by reason. Only the .arrow
    files and their .manifest.json (in the output folder) leave your machine.
    """
    summary = _run(partner, salt_file, key, raw, out, partners, region, workers, allow_shrink, quiet=as_json)
    if as_json:
        emit_json(summary.model_dump(mode="json"))
    else:
        _print_summary(summary, out)


def register(app: typer.Typer) -> None:
    """Add the ``prepare`` command to the main app."""
    app.command("prepare")(prepare)
