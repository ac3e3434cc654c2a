"""CLI commands: ``cleanroom keys salt | signing | gateway`` (create secrets, never print them)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from cleanroom.cli._common import JsonOpt, PartnersOpt, console, emit_json, handle_errors, paths
from cleanroom.keys import CreatedKey, create_gateway_keys, create_salt, create_signing_key

keys_app = typer.Typer(
    name="keys",
    help="Create keys: the partners' shared salt, partner signing keys, the gateway's secrets.",
    no_args_is_help=True,
)

OutOpt = Annotated[Path, typer.Option("--out", help="File to create (0600); an existing file is never overwritten.")]


class RoleChoice(str, Enum):
    uploader = "uploader"
    compliance = "compliance"


def _show(created: CreatedKey, as_json: bool, lines: list[str]) -> None:
    if as_json:
        emit_json(created.model_dump(exclude_none=True))
        return
    for line in lines:
        console.print(line, highlight=False)


@keys_app.command("salt")
@handle_errors
def salt(out: OutOpt, as_json: JsonOpt = False) -> None:
    """Create the collaboration salt (32 random bytes, hex) that every partner keys identifiers with.

    Share it with the other partners out of band; never give it to the gateway operator.
    """
    created = create_salt(out)
    _show(created, as_json, [f"salt written to {out} (0600)", f"fingerprint {created.fingerprint} (compare with the other partners)"])


@keys_app.command("signing")
@handle_errors
def signing(
    partner: Annotated[str, typer.Option("--partner", help="Partner id (the partners/<id>.toml file).")],
    role: Annotated[RoleChoice, typer.Option("--role", help="Which key: uploader signs manifests, compliance signs policies.")],
    out: OutOpt,
    partners: PartnersOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an Ed25519 key pair: private key to --out, public key registered in the partner file."""
    created = create_signing_key(paths(partners=partners).partners, partner, role.value, out)
    _show(
        created,
        as_json,
        [
            f"private {role.value} key written to {out} (0600); keep it on this machine",
            f"public key registered in {created.partner_file}:",
            str(created.public_key),
        ],
    )


@keys_app.command("gateway")
@handle_errors
def gateway(out: OutOpt, as_json: JsonOpt = False) -> None:
    """Create the gateway's pepper and database key (a key file for --keys-file / $CLEANROOM_KEYS_FILE).

    Only the gateway operator holds this file; losing it makes the store unreadable.
    """
    created = create_gateway_keys(out)
    _show(created, as_json, [f"gateway key file written to {out} (0600)", "use it with --keys-file or CLEANROOM_KEYS_FILE"])


def register(app: typer.Typer) -> None:
    """Add the ``keys`` command group to the main app."""
    app.add_typer(keys_app, name="keys")
