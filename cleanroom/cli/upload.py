"""``cleanroom upload --gateway URL``: a partner uploads its prepared files over HTTP, from its own machine.

Each ``*.arrow`` + ``*.manifest.json`` pair goes through ``POST /v1/datasets/{name}/uploads`` with
the typed client, streamed, with a progress bar on stderr. Connection errors, timeouts and
502/503/504 are retried with backoff: safe, because the same signed manifest is idempotent (a
retried upload the gateway had already accepted answers ``replayed`` with the same version).

Exit codes (as ``cleanroom report monthly``): 0 every file accepted (or already active), 1 a file
was refused (its code and message are printed; the other files are still sent), 2 usage,
5 gateway unreachable, still unavailable after the retries, or the API key refused.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

from cleanroom.cli._common import JsonOpt, console, emit_json, endpoint, err_console
from cleanroom.errors import CODES, CleanroomError
from cleanroom.ingest import UploadPair, find_uploads

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_GATEWAY = 0, 1, 2, 5
DEFAULT_RETRIES = 4


def exit_code(exc: CleanroomError) -> int:
    """5 when the gateway could not be reached or used (unreachable, unavailable after retries, key refused); 1 otherwise."""
    if exc.code.startswith("auth.") or exc.code == "config.invalid":
        return EXIT_GATEWAY
    if CODES.get(exc.code, (0, ""))[0] in (502, 503, 504):
        return EXIT_GATEWAY
    return EXIT_REFUSED


def print_error(exc: CleanroomError, as_json: bool, file: str | None = None) -> None:
    if as_json:
        print(json.dumps({"error": exc.to_dict(), **({"file": file} if file else {})}), file=sys.stdout)
    else:
        where = f"{file}: " if file else ""
        err_console.print(f"[bold red]error[/] {escape(f'[{exc.code}]')} {escape(where + exc.message)}", highlight=False)


def _dataset_of(pair: UploadPair) -> str:
    from cleanroom.ingest._checks import read_manifest

    return read_manifest(pair.manifest).dataset


def _send_all(url: str, key: str, pairs: list[UploadPair], retries: int, quiet: bool, as_json: bool) -> tuple[list[dict[str, Any]], int]:
    """Upload every pair; a refused file is reported and the next one sent; an unusable gateway stops everything.

    With ``--json`` nothing is printed here: every outcome, refusals included, is in the returned list.
    """
    from cleanroom.client import Client

    results: list[dict[str, Any]] = []
    worst = EXIT_OK
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    with Client(url, key, timeout=600) as client, Progress(*columns, console=err_console, transient=True, disable=quiet) as bar:
        for pair in pairs:
            task = bar.add_task(f"uploading {pair.arrow.name}", total=pair.arrow.stat().st_size if pair.arrow.is_file() else None)

            def progress(sent: int, total: int, task: Any = task) -> None:
                bar.update(task, completed=sent, total=total)

            def on_retry(attempt: int, why: str, delay: float, name: str = pair.arrow.name) -> None:
                err_console.print(f"[yellow]retry[/] {escape(name)}: attempt {attempt} failed ({escape(why)}); again in {delay:g} s", highlight=False)

            try:
                receipt = client.upload(_dataset_of(pair), pair.arrow, pair.manifest, retries=retries, progress=progress, on_retry=on_retry)
            except CleanroomError as exc:
                if not as_json:
                    print_error(exc, as_json, pair.arrow.name)
                results.append({"file": pair.arrow.name, "status": "refused", "error": exc.to_dict()})
                if exit_code(exc) == EXIT_GATEWAY:
                    return results, EXIT_GATEWAY  # the next file would fare no better
                worst = EXIT_REFUSED
                continue
            finally:
                bar.remove_task(task)
            if not as_json:
                _warn(pair.arrow.name, receipt.warnings)
            results.append({"file": pair.arrow.name, "status": _status(receipt.replayed, receipt.rolled_back_from), **receipt.model_dump()})
    return results, worst


def _warn(name: str, warnings: list[str]) -> None:
    from cleanroom.cli.ingest import print_warnings

    print_warnings(name, warnings)


def _status(replayed: bool, rolled_back_from: int | None) -> str:
    if rolled_back_from is not None:
        return "rolled_back"
    return "already_active" if replayed else "uploaded"


def _print(results: list[dict[str, Any]]) -> None:
    from cleanroom.cli.ingest import outcome

    accepted = [r for r in results if r["status"] != "refused"]
    if not accepted:
        return
    table = Table(title="uploaded", box=box.SIMPLE_HEAD)
    for col in ("file", "dataset", "version", "outcome"):
        table.add_column(col, justify="right" if col == "version" else "left")
    for r in accepted:
        table.add_row(r["file"], f"{r['partner']}.{r['dataset']}", str(r["version"]), outcome(r["replayed"], r["rolled_back_from"]))
    console.print(table)


def upload(
    path: Annotated[Path, typer.Argument(help="A prepared folder (every *.manifest.json in it with its .arrow file), or one .arrow / .manifest.json file.")],
    gateway: Annotated[str | None, typer.Option("--gateway", envvar="CLEANROOM_GATEWAY", help="Gateway URL (else $CLEANROOM_GATEWAY).")] = None,
    api_key_file: Annotated[Path | None, typer.Option("--api-key-file", help="File holding the partner's uploader API key (else $CLEANROOM_API_KEY).")] = None,
    retries: Annotated[int, typer.Option("--retries", min=0, max=20, help="Retries per file on connection errors and 502/503/504 (backoff 1, 2, 4... s).")] = DEFAULT_RETRIES,
    as_json: JsonOpt = False,
) -> None:
    """Upload prepared files to the gateway over HTTP with an uploader key (the partner's own machine; no store access).

    The gateway validates each file (signature, replay, digest, schema, hid format, raw PII) before it becomes the active
    version; a refused file leaves the previous version active. Uploading the same prepared files again is safe: files the
    gateway already holds come back as already active (or make that older version active again).

    Exit codes: 0 all accepted, 1 a file refused (the others are still sent), 2 usage, 5 gateway unreachable or key refused.

    Operators ingesting on the store directly (gateway stopped): `cleanroom admin ingest`.
    """
    try:
        url, key = endpoint(gateway, api_key_file)
        pairs = find_uploads(path)
    except CleanroomError as exc:
        print_error(exc, as_json)
        raise typer.Exit(exit_code(exc)) from None
    results, code = _send_all(url, key, pairs, retries, quiet=as_json, as_json=as_json)
    if as_json:
        emit_json(results)
    else:
        _print(results)
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command("upload")(upload)


__all__ = ["EXIT_GATEWAY", "EXIT_OK", "EXIT_REFUSED", "endpoint", "exit_code", "print_error", "register"]
