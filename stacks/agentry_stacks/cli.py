"""The ``agentry`` command line: offline plan and policy check, the local environment, bench."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="agentry",
    help="Agentry: plan, check and run the agent platform offline.",
    no_args_is_help=True,
    add_completion=False,
)
local_app = typer.Typer(help="The embedded local environment (moto + in-process functions).")
app.add_typer(local_app, name="local")


@app.command()
def check(
    stack: Annotated[str, typer.Argument(help="The stack to check (dev, prod...).")],
    graph: Annotated[
        Path | None,
        typer.Option("--graph", help="Check this graph file (agentry plan --json), not a plan."),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    project_dir: Annotated[
        Path | None,
        typer.Option("--project-dir", help="The project root (holds Pulumi.yaml, policies/)."),
    ] = None,
) -> None:
    """Run the policy pack's rules over STACK's resource graph: exit 1 on a mandatory violation."""
    # Imported late so other commands do not pay for the policy pack's IAM database.
    from rich.console import Console

    from agentry_stacks.check import CheckError, check_stack, render_report

    try:
        report = check_stack(stack, graph_file=graph, project_dir=project_dir)
    except CheckError as exc:
        typer.echo(f"agentry check: {exc}", err=True)
        raise typer.Exit(2) from None
    if json_output:
        typer.echo(report.model_dump_json(indent=2))
    else:
        render_report(report, Console())
    raise typer.Exit(1 if report.mandatory else 0)


def main() -> None:
    """Entry point of the ``agentry`` script."""
    app()
