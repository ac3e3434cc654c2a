"""CLI commands: ``cleanroom serve``, ``cleanroom apikey create | revoke | list``, ``cleanroom query``.

Server modules (FastAPI, uvicorn) are imported inside the commands that need them, so the rest
of the CLI starts fast; ``query`` goes through the typed client like any other program would.
"""

from __future__ import annotations

import getpass
import logging
import ipaddress
import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from cleanroom.cli._results import display_columns, display_rows, num, table

from cleanroom.cli._common import JsonOpt, KeysFileOpt, PartnersOpt, PoliciesOpt, StoreOpt, console, emit_json, err_console, handle_errors, paths
from cleanroom.errors import CleanroomError, ConfigError, InternalError, QueryError

if TYPE_CHECKING:
    from cleanroom.client import QueryResult
    from cleanroom.gateway import ApiKeys, KeyInfo

apikey_app = typer.Typer(name="apikey", help="Mint, list and revoke the gateway's API keys (stored hashed).", no_args_is_help=True)

ROLES_HELP = "analyst | uploader | compliance | report"


# --- serve -------------------------------------------------------------------------------------


@handle_errors
def serve(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on (loopback unless --allow-remote).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8000,
    store: StoreOpt = None,
    partners: PartnersOpt = None,
    policies: PoliciesOpt = None,
    keys_file: KeysFileOpt = None,
    allow_remote: Annotated[bool, typer.Option("--allow-remote", help="Allow a non-loopback --host (put TLS in front of it).")] = False,
) -> None:
    """Run the gateway (FastAPI on uvicorn) over the store; API docs at /docs.

    Start-up problems (a read-only or unreadable store, a damaged ledger or database file, a
    missing key file, an integrity refusal) print one line ``error [code] ...`` and exit 2.
    """
    import uvicorn

    from cleanroom.gateway import GatewayConfig, create_app

    _check_host(host, allow_remote)
    try:
        app = create_app(GatewayConfig.from_paths(paths(store, partners, policies), keys_file))
    except (CleanroomError, typer.Exit):
        raise
    except Exception as exc:  # not a known fault: still one line (the traceback goes to the log at debug level)
        from cleanroom.store.faults import storage_fault

        fault = storage_fault(exc)
        if fault is not None:
            raise fault from None
        logging.getLogger("cleanroom").debug("gateway start failed", exc_info=True)
        raise InternalError("internal.invariant", f"the gateway could not start: {exc.__class__.__name__}: {exc}") from None
    console.print(f"cleanroom gateway on http://{host}:{port}  (docs: /docs)", highlight=False)
    uvicorn.run(app, host=host, port=port, server_header=False, log_level="info")


def _check_host(host: str, allow_remote: bool) -> None:
    """Refuse to expose the gateway beyond this machine unless asked to, and warn when asked."""
    if _is_loopback(host):
        return
    if not allow_remote:
        raise ConfigError(
            "config.invalid",
            f"refusing to listen on {host!r}, which is not a loopback address; pass --allow-remote to expose the gateway",
            host=host,
        )
    err_console.print(f"[bold yellow]warning[/] listening on {host}: the gateway speaks plain HTTP; put a TLS proxy in front of it")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --- apikey ------------------------------------------------------------------------------------


def _keys(store: StoreOpt, partners: PartnersOpt) -> ApiKeys:
    from cleanroom.gateway import ApiKeys
    from cleanroom.partners import load_partners

    resolved = paths(store=store, partners=partners)
    return ApiKeys(resolved.store, load_partners(resolved.partners))


def _operator() -> str:
    """The audit actor of a CLI key operation: whoever runs it on the gateway host."""
    return f"cli:{getpass.getuser()}"


@apikey_app.command("create")
@handle_errors
def apikey_create(
    partner: Annotated[str, typer.Option("--partner", help="Partner the key speaks for (partners/<id>.toml).")],
    role: Annotated[str, typer.Option("--role", help=ROLES_HELP)],
    label: Annotated[str, typer.Option("--label", help="A note for `apikey list` (who or what uses the key).")] = "",
    store: StoreOpt = None,
    partners: PartnersOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Mint an API key. It is printed once and only its hash is stored: copy it now."""
    key_id, plaintext = _keys(store, partners).create_key(partner, role, label, actor=_operator())
    if as_json:
        emit_json({"key_id": key_id, "partner": partner, "role": role, "label": label, "api_key": plaintext})
        return
    console.print(f"created {key_id} for {partner} ({role})", highlight=False)
    console.print(plaintext, highlight=False, soft_wrap=True)
    err_console.print("[bold yellow]store this key now[/]: it is shown only once and cannot be recovered (revoke and re-create if lost)")


@apikey_app.command("revoke")
@handle_errors
def apikey_revoke(
    key_id: Annotated[str, typer.Argument(help="The key id (kid_...), as `apikey list` shows it.")],
    store: StoreOpt = None,
    partners: PartnersOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Revoke a key: it fails authentication from the next request on."""
    info = _keys(store, partners).revoke_key(key_id, actor=_operator())
    if as_json:
        emit_json(info.model_dump())
        return
    console.print(f"revoked {info.key_id} ({info.partner}, {info.role}) at {info.revoked_at}", highlight=False)


@apikey_app.command("list")
@handle_errors
def apikey_list(store: StoreOpt = None, partners: PartnersOpt = None, as_json: JsonOpt = False) -> None:
    """List every key ever minted (never the keys themselves)."""
    keys = _keys(store, partners).list_keys()
    if as_json:
        emit_json([k.model_dump() for k in keys])
        return
    console.print(_keys_table(keys))


def _keys_table(keys: list[KeyInfo]) -> Table:
    table = Table()
    for name in ("key id", "partner", "role"):
        table.add_column(name, no_wrap=True)
    for name in ("label", "created", "revoked"):
        table.add_column(name, overflow="fold")
    for k in keys:
        table.add_row(k.key_id, k.partner, k.role, k.label, k.created_at, k.revoked_at or "")
    return table


# --- query -------------------------------------------------------------------------------------


@handle_errors
def query(
    collaboration: Annotated[str, typer.Option("--collaboration", help="Collaboration id, e.g. aurora-2026.")],
    api_key: Annotated[str, typer.Option("--api-key", envvar="CLEANROOM_API_KEY", help="API key (else $CLEANROOM_API_KEY).", show_default=False)],
    template: Annotated[str | None, typer.Option("--template", help="funnel | attribution | overlap | lifecycle.")] = None,
    sql: Annotated[str | None, typer.Option("--sql", help="Restricted SQL instead of a template.")] = None,
    param: Annotated[list[str] | None, typer.Option("--param", help="Template parameter k=v (v parsed as JSON when it is JSON); repeatable.")] = None,
    params_json: Annotated[str | None, typer.Option("--params-json", help="All parameters as one JSON object.")] = None,
    epsilon: Annotated[float, typer.Option("--epsilon", help="Epsilon to spend.")] = 0.5,
    url: Annotated[str, typer.Option("--url", envvar="CLEANROOM_URL", help="Gateway URL (else $CLEANROOM_URL).")] = "http://127.0.0.1:8000",
    explain: Annotated[bool, typer.Option("--explain", help="Show the plan and the accuracy to expect; spends nothing.")] = False,
    target_ci95: Annotated[float | None, typer.Option("--target-ci95", help="With --explain: the epsilon that would give this ±95% half-width.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Ask the gateway for a differentially private result and print it (value [95% interval])."""
    from cleanroom.client import Client

    if (template is None) == (sql is None):
        raise QueryError("query.invalid", "give exactly one of --template or --sql")
    if explain:
        with Client(url, api_key) as client:
            plan = client.explain(collaboration, template, parse_params(param or [], params_json) if template else None, epsilon, sql=sql,
                                  target_ci95=target_ci95)
        if as_json:
            emit_json(plan.model_dump())
        else:
            print_explanation(plan, target_ci95)
        return
    with Client(url, api_key) as client:
        if template is not None:
            result = client.query(collaboration, template, parse_params(param or [], params_json), epsilon)
        else:
            result = client.sql(collaboration, sql or "", epsilon)
    if as_json:
        emit_json(result.model_dump())
        return
    console.print(result_table(result))
    console.print(result_footer(result), highlight=False)
    for note in result.notes:
        console.print(f"  note: {note}", style="dim", highlight=False, markup=False)


def parse_params(pairs: list[str], params_json: str | None) -> dict[str, Any]:
    """``--params-json`` first, then each ``--param k=v`` on top (``v`` as JSON if it parses)."""
    params = _json_object(params_json) if params_json else {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise QueryError("query.invalid_params", f"--param {pair!r} is not of the form key=value", param=pair)
        params[key] = _json_or_text(raw)
    return params


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise QueryError("query.invalid_params", f"--params-json is not JSON: {exc.msg} at column {exc.colno}") from None
    if not isinstance(value, dict):
        raise QueryError("query.invalid_params", "--params-json must be a JSON object")
    return value


def _json_or_text(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def result_table(result: QueryResult) -> Table:
    """Dimensions as they are; each value as ``value ±half-interval``, or ``suppressed`` (never 0)."""
    rows = [cells for _, cells in display_rows(list(result.columns), [list(r) for r in result.rows])]
    return table(f"{result.template} ({result.query_id})", display_columns(list(result.columns)), rows)


def print_explanation(plan: Any, target: float | None) -> None:
    """The plan in words, then what to expect of each kind of number (nothing was charged)."""
    console.print(f"[bold]{plan.template}[/] at epsilon {plan.epsilon:g} (nothing charged, no data read)", highlight=False)
    for line in plan.plan:
        console.print(f"  {line}", highlight=False, markup=False)
    columns = ["number", "cells summed", "expected ±95%"] + ([f"epsilon for ±{target:g}"] if target is not None else [])
    rows = []
    for e in plan.expected:
        row = [e.quantity, str(e.cells_summed), num(e.ci95)]
        if target is not None:
            row.append("-" if e.epsilon_for_target is None else num(e.epsilon_for_target))
        rows.append(row)
    console.print(table("expected accuracy", columns, rows))
    for note in plan.notes:
        console.print(f"  note: {note}", style="dim", highlight=False, markup=False)


def result_footer(result: QueryResult) -> str:
    spent = "0 (cached result)" if result.cached else f"{result.epsilon_charged:g}"
    mechanisms = ", ".join(f"{n.part}: {n.mechanism} scale {n.scale:g}" for n in result.noise)
    return (
        f"epsilon charged {spent}; budget remaining {result.budget_remaining:g}; "
        f"{result.suppressed_cells} suppressed cell(s); noise {mechanisms or 'none'}"
    )


def register(app: typer.Typer) -> None:
    """Add ``serve``, ``query`` and the ``apikey`` group to the main app."""
    app.command("serve")(serve)
    app.command("query")(query)
    app.add_typer(apikey_app)
