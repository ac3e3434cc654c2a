"""CLI commands: ``cleanroom upload`` (validated ingest) and ``cleanroom datasets`` (active versions).

Both open the store themselves, so they fail with ``store.locked`` while a gateway holds it; a
running gateway takes uploads over HTTP (``POST /v1/datasets/{name}/uploads``) with the same code.
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cleanroom.audit import AuditLog
from cleanroom.cli._common import JsonOpt, KeysFileOpt, PartnersOpt, StoreOpt, console, emit_json, err_console, handle_errors, paths
from cleanroom.ingest import IngestResult, UploadPair, find_uploads, ingest_upload
from cleanroom.settings import GatewaySecrets
from cleanroom.store import DatasetVersion, Store

AUDIT_FILE = "audit.jsonl"


def _actor() -> str:
    """Who ran the command, as recorded in the catalog and the audit log."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def _upload_all(store: Store, partners_dir: Path, partner: str, pairs: list[UploadPair], audit: AuditLog, quiet: bool) -> list[IngestResult]:
    results: list[IngestResult] = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=True, disable=quiet) as bar:
        task = bar.add_task(f"uploading for {partner}", total=len(pairs))
        for pair in pairs:
            bar.update(task, description=f"validating {pair.arrow.name}")
            results.append(ingest_upload(store, partners_dir, partner, pair.arrow, pair.manifest, actor=_actor(), audit=audit))
            bar.advance(task)
    return results


def _print_results(results: list[IngestResult]) -> None:
    table = Table(title="uploaded", box=box.SIMPLE_HEAD)
    for col in ("dataset", "version", "rows", "new persons", "seconds"):
        table.add_column(col, justify="left" if col == "dataset" else "right")
    for r in results:
        table.add_row(f"{r.partner}.{r.dataset}", str(r.version), f"{r.rows:,}", f"{r.new_persons:,}", f"{r.seconds:.2f}")
    console.print(table)


@handle_errors
def upload(
    path: Annotated[Path, typer.Argument(help="A prepared folder (every *.manifest.json in it), or one .arrow / .manifest.json file.")],
    partner: Annotated[str, typer.Option("--partner", help="The partner the upload is for (its uploader key must have signed it).")],
    store: StoreOpt = None,
    keys_file: KeysFileOpt = None,
    partners: PartnersOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Validate prepared files and make each the new active version of its dataset.

    Checks signature, replay, file digest, schema, hid format and raw PII, then re-keys every hid with the gateway's pepper.

    A rejected file leaves the previous version active. The command stops at the first rejection (earlier files stay uploaded).
    """
    where = paths(store=store, partners=partners)
    pairs = find_uploads(path)
    secrets = GatewaySecrets.load(keys_file)
    with Store.open(where.store, secrets) as opened:
        results = _upload_all(opened, where.partners, partner, pairs, AuditLog(where.store / AUDIT_FILE), quiet=as_json)
    if as_json:
        emit_json([r.model_dump() for r in results])
    else:
        _print_results(results)


def _print_versions(versions: dict[str, DatasetVersion]) -> None:
    if not versions:
        console.print("no datasets uploaded yet")
        return
    table = Table(title="active dataset versions", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("dataset", "version", "rows", "uploaded (UTC)", "sha256"):
        table.add_column(col, justify="right" if col in ("version", "rows") else "left", no_wrap=True)
    for name in sorted(versions):
        v = versions[name]
        table.add_row(name, str(v.version), f"{v.rows:,}", v.uploaded_at.strftime("%Y-%m-%d %H:%M"), v.sha256[:8])
    console.print(table)


@handle_errors
def datasets(store: StoreOpt = None, keys_file: KeysFileOpt = None, as_json: JsonOpt = False) -> None:
    """List the active version of every uploaded dataset (names, versions and row counts; no data)."""
    with Store.open(paths(store=store).store, GatewaySecrets.load(keys_file)) as opened:
        versions = opened.active_versions()
    if as_json:
        emit_json({name: v.model_dump(mode="json") for name, v in sorted(versions.items())})
    else:
        _print_versions(versions)


def register(app: typer.Typer) -> None:
    """Add the ``upload`` and ``datasets`` commands to the main app."""
    app.command("upload")(upload)
    app.command("datasets")(datasets)
