"""Assembles the ``cleanroom`` command from one module per command group."""

from __future__ import annotations

import typer

from cleanroom.cli import audit, demo, gateway, ingest, keys, policy, prepare, report, synth, upload

app = typer.Typer(
    name="cleanroom",
    help="A privacy-preserving data clean room for brands, dealers and captive finance companies.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

@app.command()
def version() -> None:
    """Print the cleanroom version."""
    from cleanroom import __version__

    typer.echo(__version__)


for module in (synth, keys, prepare, upload, ingest, policy, audit, gateway, report, demo):
    module.register(app)

if __name__ == "__main__":  # pragma: no cover
    app()
