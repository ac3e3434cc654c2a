"""What every command shares: common options, error printing and ``--json`` output."""

from __future__ import annotations

import os
import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from cleanroom.errors import CleanroomError, ConfigError
from cleanroom.settings import Paths

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])

StoreOpt = Annotated[Path | None, typer.Option("--store", help="Store directory (else $CLEANROOM_STORE, else ./.cleanroom).")]
PartnersOpt = Annotated[Path | None, typer.Option("--partners", help="Partner files directory (else $CLEANROOM_PARTNERS, else ./partners).")]
PoliciesOpt = Annotated[Path | None, typer.Option("--policies", help="Policy directory (else $CLEANROOM_POLICIES, else ./policies).")]
KeysFileOpt = Annotated[Path | None, typer.Option("--keys-file", help="Gateway key file (else $CLEANROOM_KEYS_FILE or $CLEANROOM_PEPPER + $CLEANROOM_DB_KEY).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of text.")]


def paths(store: Path | None = None, partners: Path | None = None, policies: Path | None = None) -> Paths:
    return Paths.resolve(store=store, partners=partners, policies=policies)


def handle_errors(fn: F) -> F:
    """Turn a CleanroomError into one clear line on stderr (code first) and exit code 2.

    A storage fault that reaches here unconverted (a full disk, a read-only or unreadable store,
    a damaged file: see :func:`cleanroom.store.faults.storage_fault`) is printed the same way as
    its ``store.*`` error: an operator's problem gets one line, never a traceback.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except CleanroomError as exc:
            fail(exc, as_json=bool(kwargs.get("as_json")))
        except Exception as exc:
            from cleanroom.store.faults import storage_fault

            fault = storage_fault(exc)
            if fault is None:
                raise
            fail(fault, as_json=bool(kwargs.get("as_json")))

    return wrapper  # type: ignore[return-value]


def fail(exc: CleanroomError, *, as_json: bool = False) -> NoReturn:
    """Print ``exc`` as one line (``error [code] message``, or JSON) and exit with code 2."""
    if as_json:
        print(json.dumps({"error": exc.to_dict()}), file=sys.stdout)
    else:
        err_console.print(f"[bold red]error[/] {escape(f'[{exc.code}]')} {escape(exc.message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(2) from None


def emit_json(data: Any) -> None:
    """Print JSON for machines (dates and paths as strings)."""
    print(json.dumps(data, indent=2, default=str))


def endpoint(gateway: str | None, api_key_file: Path | None, what: str = "API key") -> tuple[str, str]:
    """The gateway URL and the API key, from options or the environment (never from argv: keys stay out of `ps`)."""
    if not gateway:
        raise ConfigError("config.invalid", "no gateway: pass --gateway URL or set CLEANROOM_GATEWAY")
    if api_key_file is not None:
        try:
            key = api_key_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError("config.invalid", f"cannot read the API key file {api_key_file}: {exc.strerror}") from None
    else:
        key = os.environ.get("CLEANROOM_API_KEY", "").strip()
    if not key:
        raise ConfigError("config.invalid", f"no {what}: pass --api-key-file FILE or set CLEANROOM_API_KEY")
    return gateway, key
