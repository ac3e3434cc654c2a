"""Operator commands on the store itself: ``cleanroom admin ingest`` and ``cleanroom datasets``.

``admin ingest`` opens the store directly (validated ingest, the same code as the gateway's upload
endpoint), so it fails with ``store.locked`` while a gateway holds the store; partners upload over
HTTP from their own machines with ``cleanroom upload --gateway`` (cli/upload.py).

``datasets list`` shows every version of every dataset and which one is active; ``datasets
rollback`` makes an earlier, retained version active again (audited ``dataset.rollback``), over
HTTP with a compliance key when a gateway is given, else on the store directly.
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cleanroom.audit import AuditLog
from cleanroom.cli._common import JsonOpt, KeysFileOpt, PartnersOpt, StoreOpt, console, emit_json, err_console, handle_errors, paths
from cleanroom.errors import CleanroomError, ConfigError
from cleanroom.ingest import IngestResult, UploadPair, find_uploads, ingest_upload
from cleanroom.settings import GatewaySecrets
from cleanroom.store import Store, StoredVersion

AUDIT_FILE = "audit.jsonl"

admin_app = typer.Typer(
    help="Operator commands that open the store directly (stop the gateway first; partners use `cleanroom upload --gateway`).",
    no_args_is_help=True,
)
datasets_app = typer.Typer(
    help="Dataset versions: list them (which is active) and roll back to an earlier one.",
    invoke_without_command=True,
)

GatewayOpt = Annotated[str | None, typer.Option("--gateway", envvar="CLEANROOM_GATEWAY", help="Gateway URL (else $CLEANROOM_GATEWAY); without it the store is opened directly.")]
ApiKeyFileOpt = Annotated[Path | None, typer.Option("--api-key-file", help="File holding the API key (else $CLEANROOM_API_KEY).")]


def _actor() -> str:
    """Who ran the command, as recorded in the catalog and the audit log."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def print_warnings(name: str, warnings: Any) -> None:
    """Ingest warnings (accepted, but the uploader should know) on stderr."""
    for warning in warnings:
        err_console.print(f"[yellow]warning[/] {escape(name)}: {escape(warning)}", highlight=False)


def outcome(replayed: bool, rolled_back_from: int | None) -> str:
    """How an accepted upload is described: a new version, the same upload again, or a rollback."""
    if rolled_back_from is not None:
        return f"rolled back from v{rolled_back_from}"
    return "already active (same upload)" if replayed else "new version"


# --- admin ingest -------------------------------------------------------------------------------


def _ingest_all(store: Store, partners_dir: Path, partner: str, pairs: list[UploadPair], audit: AuditLog, quiet: bool) -> list[IngestResult]:
    results: list[IngestResult] = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=True, disable=quiet) as bar:
        task = bar.add_task(f"ingesting for {partner}", total=len(pairs))
        for pair in pairs:
            bar.update(task, description=f"validating {pair.arrow.name}")
            result = ingest_upload(store, partners_dir, partner, pair.arrow, pair.manifest, actor=_actor(), audit=audit)
            results.append(result)
            print_warnings(pair.arrow.name, result.warnings)
            bar.advance(task)
    return results


def _print_results(results: list[IngestResult]) -> None:
    table = Table(title="ingested", box=box.SIMPLE_HEAD)
    for col in ("dataset", "version", "rows", "new persons", "outcome", "seconds"):
        table.add_column(col, justify="left" if col in ("dataset", "outcome") else "right")
    for r in results:
        table.add_row(f"{r.partner}.{r.dataset}", str(r.version), f"{r.rows:,}", f"{r.new_persons:,}", outcome(r.replayed, r.rolled_back_from),
                      f"{r.seconds:.2f}")
    console.print(table)


@admin_app.command("ingest")
@handle_errors
def ingest(
    path: Annotated[Path, typer.Argument(help="A prepared folder (every *.manifest.json in it), or one .arrow / .manifest.json file.")],
    partner: Annotated[str, typer.Option("--partner", help="The partner the upload is for (its uploader key must have signed it).")],
    store: StoreOpt = None,
    keys_file: KeysFileOpt = None,
    partners: PartnersOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Ingest prepared files on the store directly (gateway stopped): each becomes the active version of its dataset.

    Checks signature, replay, file digest, schema, hid format and raw PII, then re-keys every hid with the gateway's pepper.
    The same signed upload again changes nothing (or makes its older version active again: a rollback).

    A rejected file leaves the previous version active. The command stops at the first rejection (earlier files stay ingested).
    """
    where = paths(store=store, partners=partners)
    pairs = find_uploads(path)
    secrets = GatewaySecrets.load(keys_file)
    with Store.open(where.store, secrets) as opened:
        results = _ingest_all(opened, where.partners, partner, pairs, AuditLog(where.store / AUDIT_FILE), quiet=as_json)
    if as_json:
        emit_json([r.model_dump() for r in results])
    else:
        _print_results(results)


# --- datasets list ------------------------------------------------------------------------------


def _print_versions(versions: list[StoredVersion]) -> None:
    if not versions:
        console.print("no datasets uploaded yet")
        return
    table = Table(title="dataset versions (* active)", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("dataset", "version", "rows", "uploaded (UTC)", "by", "sha256", "rows kept"):
        table.add_column(col, justify="right" if col in ("version", "rows") else "left", no_wrap=True)
    for v in versions:
        table.add_row(v.qualified_name, f"{'*' if v.active else ''}{v.version}", f"{v.rows:,}", v.uploaded_at.strftime("%Y-%m-%d %H:%M"),
                      v.uploaded_by, v.sha256[:8], "yes" if v.retained else "no (dropped)")
    console.print(table)


def _versions_json(versions: list[StoredVersion]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for v in versions:
        entry = out.setdefault(v.qualified_name, {"active": None, "versions": []})
        if v.active:
            entry["active"] = v.version
        entry["versions"].append(v.model_dump(mode="json"))
    return out


def _split(name: str) -> tuple[str, str]:
    partner, sep, dataset = name.partition(".")
    if not sep or not partner or not dataset:
        raise ConfigError("config.invalid", f"name the dataset as PARTNER.DATASET, e.g. northside-dealers.sales (got {name!r})")
    return partner, dataset


def _list(name: str | None, store: Path | None, keys_file: Path | None, gateway: str | None, api_key_file: Path | None, as_json: bool) -> None:
    if gateway:
        from cleanroom.cli._common import endpoint
        from cleanroom.client import Client

        if name is None:
            raise ConfigError("config.invalid", "over a gateway, name the dataset: cleanroom datasets list PARTNER.DATASET --gateway URL")
        partner, dataset = _split(name)
        url, key = endpoint(gateway, api_key_file)
        with Client(url, key) as client:
            listed = client.dataset_versions(partner, dataset)
        versions = [StoredVersion(partner=partner, dataset=dataset, table="", max_rows_per_person=None, **v.model_dump()) for v in listed.versions]
    else:
        with Store.open(paths(store=store).store, GatewaySecrets.load(keys_file)) as opened:
            versions = opened.versions(name)
    if as_json:
        emit_json(_versions_json(versions))
    else:
        _print_versions(versions)


@datasets_app.callback()
def datasets_default(
    ctx: typer.Context,
    store: StoreOpt = None,
    keys_file: KeysFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Dataset versions (metadata only, never rows). Without a subcommand: ``datasets list``."""
    if ctx.invoked_subcommand is None:
        handle_errors(_list)(None, store, keys_file, None, None, as_json=as_json)


@datasets_app.command("list")
@handle_errors
def list_versions(
    name: Annotated[str | None, typer.Argument(help="PARTNER.DATASET (default: every dataset).")] = None,
    store: StoreOpt = None,
    keys_file: KeysFileOpt = None,
    gateway: Annotated[str | None, typer.Option("--gateway", help="Ask a gateway (with a compliance key) instead of opening the store.")] = None,
    api_key_file: ApiKeyFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every version of every dataset (or of one): rows, upload time, who uploaded it, which is active, whether its rows are kept."""
    _list(name, store, keys_file, gateway, api_key_file, as_json)


# --- datasets rollback --------------------------------------------------------------------------


@datasets_app.command("rollback")
def rollback(
    name: Annotated[str, typer.Argument(help="PARTNER.DATASET, e.g. northside-dealers.sales.")],
    to_version: Annotated[int, typer.Option("--to-version", min=1, help="The earlier version to make active again (see `cleanroom datasets list`).")],
    gateway: GatewayOpt = None,
    api_key_file: ApiKeyFileOpt = None,
    store: StoreOpt = None,
    keys_file: KeysFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Make an earlier version of a dataset active again (audited as dataset.rollback).

    With --gateway (or $CLEANROOM_GATEWAY): over HTTP with a compliance key of the dataset's partner. Without: on the store
    directly, as the operator, while the gateway is stopped (store.locked otherwise).

    Exit codes: 0 done (or already active), 1 refused (e.g. store.not_found), 2 usage, 5 gateway unreachable or key refused.
    """
    from cleanroom.cli.upload import exit_code, print_error

    try:
        partner, dataset = _split(name)
        done = _rollback_http(gateway, api_key_file, partner, dataset, to_version) if gateway else _rollback_store(store, keys_file, partner, dataset, to_version)
    except CleanroomError as exc:
        print_error(exc, as_json)
        raise typer.Exit(exit_code(exc)) from None
    if as_json:
        emit_json(done)
    elif done["changed"]:
        console.print(f"{name}: version {done['to_version']} is active again (was {done['from_version']}); {done['rows']:,} rows", highlight=False)
    else:
        console.print(f"{name}: version {done['to_version']} was already active; nothing changed", highlight=False)


def _rollback_http(gateway: str, api_key_file: Path | None, partner: str, dataset: str, version: int) -> dict[str, Any]:
    from cleanroom.cli._common import endpoint
    from cleanroom.client import Client

    url, key = endpoint(gateway, api_key_file)
    with Client(url, key) as client:
        return client.rollback(partner, dataset, version).model_dump()


def _rollback_store(store: Path | None, keys_file: Path | None, partner: str, dataset: str, version: int) -> dict[str, Any]:
    where = paths(store=store)
    with Store.open(where.store, GatewaySecrets.load(keys_file)) as opened:
        done = opened.rollback(partner, dataset, version)
    v = done.version
    if done.rolled_back_from is not None:
        AuditLog(where.store / AUDIT_FILE).append("dataset.rollback", _actor(), {
            "partner": partner, "dataset": dataset, "from_version": done.rolled_back_from, "to_version": v.version,
            "rows": v.rows, "sha256": v.sha256, "via": "cli",
        })
    return {"partner": partner, "dataset": dataset, "from_version": done.rolled_back_from if done.rolled_back_from is not None else v.version,
            "to_version": v.version, "changed": done.rolled_back_from is not None, "rows": v.rows, "sha256": v.sha256}


def register(app: typer.Typer) -> None:
    """Add ``admin ingest`` and the ``datasets`` group to the main app."""
    app.add_typer(admin_app, name="admin")
    app.add_typer(datasets_app, name="datasets")
