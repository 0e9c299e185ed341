"""The ``agentry`` command line: offline plan and policy check, the local environment, bench."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["app", "main"]

app = typer.Typer(
    name="agentry",
    help="Agentry: plan, check and run the agent platform offline.",
    no_args_is_help=True,
    add_completion=False,
)
local_app = typer.Typer(help="The embedded local environment (moto + in-process functions).")
app.add_typer(local_app, name="local")

#: ``--project-dir``, shared by every command that reads the project's files.
ProjectDir = Annotated[
    Path | None,
    typer.Option("--project-dir", help="The project root (holds Pulumi.yaml and its stacks)."),
]


@app.command()
def check(
    stack: Annotated[str, typer.Argument(help="The stack to check (dev, prod...).")],
    graph: Annotated[
        Path | None,
        typer.Option("--graph", help="Check this graph file (agentry plan --json), not a plan."),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    project_dir: ProjectDir = None,
) -> None:
    """Run the policy pack's rules over STACK's resource graph: exit 1 on a mandatory violation."""
    # Imported late so other commands do not pay for the policy pack's IAM database.
    from rich.console import Console

    from agentry_stacks.offline.check import CheckError, check_stack, render_report

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


@app.command()
def limits(
    stack: Annotated[str, typer.Argument(help="The stack to check (dev, prod...).")],
    graph: Annotated[
        Path | None,
        typer.Option("--graph", help="Check this graph file (agentry plan --json), not a plan."),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    project_dir: ProjectDir = None,
) -> None:
    """Check that STACK's limits agree across resources: exit 1 on any finding.

    Worker batch vs function and visibility timeouts, api reserved concurrency vs the stage's
    throttle, 4 KB environments, statelint, and what each principal that uses a KMS key is
    granted against what AWS documents for its path.
    """
    from agentry_stacks.deploy.config import ConfigError
    from agentry_stacks.offline.limits import LimitsError, limits_stack

    try:
        report = limits_stack(stack, graph_file=graph, project_dir=project_dir)
    except (LimitsError, ConfigError) as exc:
        typer.echo(f"agentry limits: {exc}", err=True)
        raise typer.Exit(2) from None
    if json_output:
        typer.echo(report.model_dump_json(indent=2))
    else:
        for finding in report.findings:
            typer.echo(f"{finding.check}: {finding.resource}: {finding.message}")
        examined = ", ".join(f"{name} {count}" for name, count in report.examined.items())
        verdict = "FAILED" if report.findings else "passed"
        typer.echo(
            f"{report.stack}: limits {verdict} — {len(report.findings)} finding(s) ({examined})"
        )
    raise typer.Exit(1 if report.findings else 0)


@app.command()
def lock(
    check: Annotated[
        bool, typer.Option("--check", help="Only check that the lock is current; write nothing.")
    ] = False,
) -> None:
    """Write lambdas/bundle.lock: the bundle's wheels for every target, with their sha256.

    Resolves what the runtime and every toolset require, under constraints.txt, with pip
    (needs the package index). Run it after changing a pin (make lock).
    """
    from agentry_platform.bundle import CONSTRAINTS, LAMBDAS_DIR, LOCK_FILE, PROVIDED
    from agentry_platform.bundle_lock import LockError, generate_lock
    from agentry_stacks.deploy.toolsets import shippable_requirements

    requirements = shippable_requirements(LAMBDAS_DIR)
    try:
        text = generate_lock(requirements, constraints=CONSTRAINTS, provided=PROVIDED)
    except LockError as exc:
        typer.echo(f"agentry lock: {exc}", err=True)
        raise typer.Exit(2) from None
    current = LOCK_FILE.read_text(encoding="utf-8") if LOCK_FILE.is_file() else ""
    if check:
        if text != current:
            typer.echo(f"agentry lock: {LOCK_FILE.name} is not current: run make lock", err=True)
            raise typer.Exit(1)
        typer.echo(f"{LOCK_FILE.name} is current")
        return
    LOCK_FILE.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {LOCK_FILE} ({text.count('==')} distributions)")


@app.command()
def plan(
    stack: Annotated[str, typer.Argument(help="The stack to plan (dev, prod...).")],
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the resource graph document as JSON.")
    ] = False,
    mermaid_output: Annotated[
        bool, typer.Option("--mermaid", help="Print the event flow as a mermaid flowchart.")
    ] = False,
    project_dir: ProjectDir = None,
) -> None:
    """Run STACK's program offline under recording mocks and show its resource graph."""
    # Imported late: the plan imports Pulumi and the platform, which other commands skip.
    import json

    from rich.console import Console

    from agentry_stacks.deploy.config import ConfigError, load_stack_config
    from agentry_stacks.offline.plan import plan_stack
    from agentry_stacks.offline.views import mermaid, resource_table

    if json_output and mermaid_output:
        typer.echo("agentry plan: --json and --mermaid are exclusive", err=True)
        raise typer.Exit(2)
    try:
        graph = plan_stack(stack, project_dir=project_dir)
    except ConfigError as exc:
        typer.echo(f"agentry plan: invalid config for stack {stack!r}:\n{exc}", err=True)
        raise typer.Exit(2) from None
    # What pulumi up would warn about (Legacy models, models the catalog does not know...).
    for warning in load_stack_config(stack, project_dir=project_dir).warnings():
        typer.echo(f"agentry plan: warning: {warning}", err=True)
    if json_output:
        typer.echo(json.dumps(graph, indent=2))
    elif mermaid_output:
        typer.echo(mermaid(graph))
    else:
        Console().print(resource_table(graph))


class ApproveChoice(StrEnum):
    """Values of ``agentry local run --approve``."""

    ALL = "all"
    NONE = "none"


@local_app.command("run")
def local_run(
    goal: Annotated[str, typer.Option("--goal", help="What the agent must achieve.")],
    stack: Annotated[str, typer.Option("--stack", help="The stack whose graph to run.")] = "dev",
    agent: Annotated[
        str | None,
        typer.Option("--agent", help="The agent definition to run (default: the stack's)."),
    ] = None,
    script: Annotated[
        Path | None,
        typer.Option(
            "--script", help="A JSON script of model turns, one per plan step (any agent)."
        ),
    ] = None,
    fail_tool: Annotated[
        list[str] | None,
        typer.Option("--fail-tool", help="Make this tool fail every time (repeatable)."),
    ] = None,
    throttle: Annotated[
        int, typer.Option("--throttle", min=0, help="Throttle the first N model calls.")
    ] = 0,
    duplicate_events: Annotated[
        bool, typer.Option("--duplicate-events", help="Deliver every event twice.")
    ] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one final JSON object, no live output.")
    ] = False,
    approve: Annotated[
        ApproveChoice | None,
        typer.Option(
            "--approve",
            help="Answer approval requests: 'all' approves every held call, 'none' rejects it.",
        ),
    ] = None,
    project_dir: ProjectDir = None,
) -> None:
    """Run one agent on the embedded local environment: exit 0 COMPLETED, 3 when a person must
    act (NEEDS_HUMAN, or AWAITING_APPROVAL without --approve), 1 else.

    Without --script the offline model plans only for the flight demo; a script that runs out,
    or names a tool the agent does not have, ends the run with exit 1 naming the turn.
    """
    # Imported late so other commands do not load moto.
    import json

    from rich.console import Console

    from agentry_offline.script import Script, ScriptError
    from agentry_stacks.local import LocalApiError, LocalEnvironmentError, exit_code, run_goal
    from agentry_stacks.local.progress import ProgressPrinter, render_summary

    console = Console(stderr=json_output)
    try:
        loaded = Script.load(script) if script is not None else None
    except ScriptError as exc:
        typer.echo(f"agentry local run: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        report = run_goal(
            goal,
            stack=stack,
            agent=agent,
            script=loaded,
            fail_tools=fail_tool or (),
            throttle=throttle,
            duplicate_events=duplicate_events,
            project_dir=project_dir,
            on_event=None if json_output else ProgressPrinter(console),
            approve=None if approve is None else approve.value,
        )
    except LocalEnvironmentError as exc:
        typer.echo(f"agentry local run: {exc}", err=True)
        raise typer.Exit(2) from None
    except LocalApiError as exc:
        # The api function refused the goal (a 4xx names the field): a usage error.
        typer.echo(f"agentry local run: {exc}", err=True)
        raise typer.Exit(2 if 400 <= exc.status < 500 else 1) from None
    except TimeoutError as exc:
        typer.echo(f"agentry local run: {exc}", err=True)
        raise typer.Exit(1) from None
    if json_output:
        typer.echo(json.dumps(report, indent=2, default=str))
    else:
        render_summary(report, console)
    if report["modelFailure"]:
        typer.echo(f"agentry local run: {report['modelFailure']}", err=True)
    raise typer.Exit(exit_code(str(report["status"]), model_failure=report["modelFailure"]))


@app.command()
def bench(
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    markdown_output: Annotated[
        bool, typer.Option("--markdown", help="Print the README's figures (markdown).")
    ] = False,
    write_readme: Annotated[
        bool,
        typer.Option(
            "--write-readme",
            help="Write the figures into docs/bench.md and their summary into README.md.",
        ),
    ] = False,
    schema: Annotated[
        bool, typer.Option("--schema", help="Print the report's JSON Schema and exit.")
    ] = False,
    quick: Annotated[
        bool, typer.Option("--quick", help="Fewer cold-start runs; every other figure is the same.")
    ] = False,
    stack: Annotated[str, typer.Option("--stack", help="The stack to measure.")] = "dev",
    project_dir: ProjectDir = None,
) -> None:
    """Measure what a step costs end to end, against its floor and the baseline, offline."""
    # Imported late: the bench loads moto, the local environment and Pulumi.
    import json
    import logging

    from rich.console import Console

    from agentry_stacks.bench.report import BenchReport

    if schema:
        typer.echo(json.dumps(BenchReport.model_json_schema(), indent=2))
        return
    from agentry_runtime.observability import logger as runtime_logger
    from agentry_stacks.bench import run_bench
    from agentry_stacks.bench.render import (
        SUMMARY_BEGIN,
        SUMMARY_END,
        markdown,
        render_report,
        replace_section,
        summary,
    )
    from agentry_stacks.deploy.config import project_root

    # Thousands of measured steps would print their INFO lines; warnings still show.
    runtime_logger.setLevel(logging.WARNING)
    report = run_bench(quick=quick, stack=stack)
    if json_output:
        typer.echo(report.model_dump_json(indent=2))
    elif markdown_output:
        typer.echo(markdown(report), nl=False)
    else:
        render_report(report, Console())
    if write_readme:
        root = project_dir or project_root()
        readme, page = root / "README.md", root / "docs" / "bench.md"
        try:
            readme.write_text(
                replace_section(readme.read_text(), summary(report), SUMMARY_BEGIN, SUMMARY_END)
            )
            page.write_text(replace_section(page.read_text(), markdown(report)))
        except (ValueError, OSError) as exc:
            typer.echo(f"agentry bench: {exc}", err=True)
            raise typer.Exit(1) from None


def main() -> None:
    """Entry point of the ``agentry`` script."""
    app()
