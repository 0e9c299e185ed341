"""The ``agentry`` command line: offline plan and policy check, the local environment, bench."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="agentry",
    help="Agentry: plan, check and run the agent platform offline.",
    no_args_is_help=True,
    add_completion=False,
)
local_app = typer.Typer(help="The embedded local environment (moto + in-process functions).")
app.add_typer(local_app, name="local")


def main() -> None:
    """Entry point of the ``agentry`` script."""
    app()
