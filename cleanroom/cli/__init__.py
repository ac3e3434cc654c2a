"""The ``cleanroom`` command line: typer commands that parse, call and print. No logic of their own."""
