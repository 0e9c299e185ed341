"""The ``agentry`` command line: offline plan and policy check, the local environment, bench."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from agentry_stacks.client import AgentsClient

__all__ = ["app", "main"]

app = typer.Typer(
    name="agentry",
    help="Agentry: plan, check and run the agent platform offline.",
    no_args_is_help=True,
    add_completion=False,
)
local_app = typer.Typer(help="The embedded local environment (moto + in-process functions).")
app.add_typer(local_app, name="local")
agents_app = typer.Typer(
    help="Call a stack's HTTP API (SigV4): a deployed stack (--stack, --url) or "
    "`agentry local serve` (--local).",
    no_args_is_help=True,
)
app.add_typer(agents_app, name="agents")

#: The port ``agentry local serve`` listens on and ``--local`` calls by default; the same as
#: ``agentry_stacks.client.target.LOCAL_PORT`` (a test pins them together), written here so
#: ``agentry --help`` does not import the client.
DEFAULT_LOCAL_PORT = 8765

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
    # The measured handlers flush Powertools' EMF documents to stdout, as Lambda wants; here
    # they are not part of the report and would make `--json` unparseable, so they are dropped.
    with redirect_stdout(io.StringIO()):
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


# --- agentry local serve --------------------------------------------------------------------


@local_app.command("serve")
def local_serve(
    stack: Annotated[str, typer.Option("--stack", help="The stack whose graph to serve.")] = "dev",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="The port on 127.0.0.1 (0: any).")
    ] = DEFAULT_LOCAL_PORT,
    key: Annotated[
        list[str] | None,
        typer.Option(
            "--key",
            help="Accept a key, ACCESS_KEY_ID=SECRET:PRINCIPAL_ARN (repeatable): requests it "
            "signs come from that principal.",
        ),
    ] = None,
    keys_file: Annotated[
        Path | None,
        typer.Option(
            "--keys-file",
            help='Accept the keys of a JSON file: {"keys": [{"accessKeyId", "secretAccessKey", '
            '"principal"}]}.',
        ),
    ] = None,
    tick: Annotated[
        float,
        typer.Option(
            "--tick", min=0.05, help="Seconds between background runs of the environment."
        ),
    ] = 1.0,
    quiet: Annotated[
        bool, typer.Option("--quiet", help="Print only the start-up lines, no requests or events.")
    ] = False,
    project_dir: ProjectDir = None,
) -> None:
    """Serve STACK's HTTP API from the embedded local environment on 127.0.0.1, verifying
    each request's SigV4 signature (execute-api, the stack's region): the signing key names
    the caller. A developer key is made at start-up and printed; Ctrl-C stops the server."""
    # Imported late so other commands do not load moto.
    import sys

    from rich.console import Console

    from agentry_offline.events import LOCAL_CALLER
    from agentry_stacks.local import LocalEnvironment, LocalEnvironmentError
    from agentry_stacks.local.serve import LocalApiServer, render_banner
    from agentry_stacks.local.signature import KeySpecError, KeyTable

    keys = KeyTable()
    developer = keys.add_generated(LOCAL_CALLER)
    try:
        for spec in key or ():
            keys.add_spec(spec)
        if keys_file is not None:
            keys.add_file(keys_file)
    except KeySpecError as exc:
        typer.echo(f"agentry local serve: --key: {exc}", err=True)
        raise typer.Exit(2) from None
    # Bound to this stdout now: the local functions redirect sys.stdout while they run.
    console = Console(file=sys.stdout)
    try:
        with LocalEnvironment(stack, project_dir=project_dir) as env:
            server = LocalApiServer(
                env, keys, port=port, tick=tick, console=None if quiet else console
            )
            try:
                server.start()
            except OSError as exc:
                typer.echo(
                    f"agentry local serve: cannot listen on 127.0.0.1:{port}: "
                    f"{exc.strerror or exc} (choose another --port)",
                    err=True,
                )
                raise typer.Exit(2) from None
            render_banner(server, developer, console, stack=stack)
            try:
                server.wait()
            except KeyboardInterrupt:
                console.print("stopping", highlight=False)
            finally:
                server.stop()
    except LocalEnvironmentError as exc:
        typer.echo(f"agentry local serve: {exc}", err=True)
        raise typer.Exit(2) from None
    console.print("stopped", highlight=False)


# --- agentry agents ---------------------------------------------------------------------------

StackTarget = Annotated[
    str | None,
    typer.Option(
        "--stack", help="Call this deployed stack (its apiEndpoint output, via the Pulumi CLI)."
    ),
]
UrlTarget = Annotated[str | None, typer.Option("--url", help="Call the HTTP API at this URL.")]
LocalTarget = Annotated[
    bool, typer.Option("--local", help="Call `agentry local serve` on 127.0.0.1 (see --port).")
]
LocalPort = Annotated[
    int, typer.Option("--port", help="The port of `agentry local serve` (with --local).")
]
Region = Annotated[
    str | None,
    typer.Option("--region", help="The region to sign for (default: the URL's, else AWS config)."),
]
Profile = Annotated[
    str | None, typer.Option("--profile", help="The AWS profile whose credentials sign.")
]
JsonOutput = Annotated[bool, typer.Option("--json", help="Print the API's JSON answer.")]
AgentIdArgument = Annotated[str, typer.Argument(help="The agent's id (agent-<32 hex digits>).")]
Interval = Annotated[
    float, typer.Option("--interval", min=0.1, help="Seconds between polls of the agent.")
]
WatchTimeout = Annotated[
    float | None,
    typer.Option("--timeout", min=0, help="Give up (exit 1) after this many seconds."),
]


@contextmanager
def _reported(command: str) -> Iterator[None]:
    """Turn the client's errors into one line on stderr and an exit code: 2 for a usage error
    or a refused request (4xx), 1 for the rest (network, 5xx, a watch that timed out)."""
    from agentry_stacks.client import ApiError, ClientError, TargetError, UsageError

    try:
        yield
    except ApiError as exc:
        typer.echo(f"agentry agents {command}: {exc}", err=True)
        raise typer.Exit(2 if 400 <= exc.status < 500 else 1) from None
    except (TargetError, UsageError) as exc:
        typer.echo(f"agentry agents {command}: {exc}", err=True)
        raise typer.Exit(2) from None
    except ClientError as exc:
        typer.echo(f"agentry agents {command}: {exc}", err=True)
        raise typer.Exit(1) from None


def _connect(
    stack: str | None,
    url: str | None,
    local: bool,
    port: int,
    region: str | None,
    profile: str | None,
) -> AgentsClient:
    from agentry_stacks.client import connect

    return connect(stack=stack, url=url, local=local, port=port, region=region, profile=profile)


def _show(answer: Any, json_output: bool, render: Any) -> None:
    from rich.console import Console

    if json_output:
        import json

        typer.echo(json.dumps(answer, indent=2))
    else:
        render(answer, Console())


def _follow(
    client: AgentsClient,
    agent_id: str,
    *,
    interval: float,
    timeout: float | None,
    json_output: bool,
    console: Console,
) -> int:
    """Print the agent's timeline until it settles; the exit code of its status."""
    import json

    from agentry_stacks.client import Watcher, exit_code_for
    from agentry_stacks.client.render import render_event

    watcher = Watcher(client, agent_id, interval=interval, timeout=timeout)
    for event in watcher.events():
        if json_output:
            typer.echo(json.dumps(event.to_json()))
        else:
            render_event(event, console)
    return exit_code_for(str(watcher.status))


@agents_app.command("start")
def agents_start(
    goal: Annotated[str, typer.Option("--goal", help="What the agent must achieve.")],
    prompt: Annotated[
        str | None, typer.Option("--prompt", help="The first user message (default: the goal).")
    ] = None,
    agent: Annotated[
        str | None, typer.Option("--agent", help="The agent definition (default: the stack's).")
    ] = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option("--idempotency-key", help="Retries with the same key start one agent."),
    ] = None,
    watch: Annotated[
        bool, typer.Option("--watch", help="Then follow it, as `agentry agents watch` does.")
    ] = False,
    interval: Interval = 2.0,
    stack: StackTarget = None,
    url: UrlTarget = None,
    local: LocalTarget = False,
    port: LocalPort = DEFAULT_LOCAL_PORT,
    region: Region = None,
    profile: Profile = None,
    json_output: JsonOutput = False,
) -> None:
    """Start an agent (POST /agents) and print its id; with --watch, exit as `watch` does."""
    import json

    from rich.console import Console

    from agentry_stacks.client.render import render_started

    console = Console()
    with _reported("start"):
        client = _connect(stack, url, local, port, region, profile)
        answer = client.start(goal, prompt=prompt, agent=agent, idempotency_key=idempotency_key)
        if json_output:
            typer.echo(json.dumps(answer, indent=None if watch else 2))
        else:
            render_started(answer, console)
        if watch:
            code = _follow(
                client,
                str(answer["agentId"]),
                interval=interval,
                timeout=None,
                json_output=json_output,
                console=console,
            )
            raise typer.Exit(code)


@agents_app.command("get")
def agents_get(
    agent_id: AgentIdArgument,
    stack: StackTarget = None,
    url: UrlTarget = None,
    local: LocalTarget = False,
    port: LocalPort = DEFAULT_LOCAL_PORT,
    region: Region = None,
    profile: Profile = None,
    json_output: JsonOutput = False,
) -> None:
    """Show an agent (GET /agents/{id}): status, plan, answer, last error, usage."""
    from agentry_stacks.client.render import render_agent

    with _reported("get"):
        view = _connect(stack, url, local, port, region, profile).get(agent_id)
    _show(view, json_output, render_agent)


@agents_app.command("list")
def agents_list(
    status: Annotated[
        str | None, typer.Option("--status", help="Only agents in this status.")
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, max=100, help="At most this many.")
    ] = None,
    cursor: Annotated[
        str | None, typer.Option("--cursor", help="The page after this cursor.")
    ] = None,
    stack: StackTarget = None,
    url: UrlTarget = None,
    local: LocalTarget = False,
    port: LocalPort = DEFAULT_LOCAL_PORT,
    region: Region = None,
    profile: Profile = None,
    json_output: JsonOutput = False,
) -> None:
    """List your agents, newest first (GET /agents)."""
    from agentry_stacks.client.render import render_agents

    with _reported("list"):
        client = _connect(stack, url, local, port, region, profile)
        page = client.list(status=status, limit=limit, cursor=cursor)
    _show(page, json_output, render_agents)


@agents_app.command("watch")
def agents_watch(
    agent_id: AgentIdArgument,
    interval: Interval = 2.0,
    timeout: WatchTimeout = None,
    stack: StackTarget = None,
    url: UrlTarget = None,
    local: LocalTarget = False,
    port: LocalPort = DEFAULT_LOCAL_PORT,
    region: Region = None,
    profile: Profile = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON object per event.")
    ] = False,
) -> None:
    """Follow an agent live (status changes, new turns) until it ends or waits for a person.

    Exit 0 COMPLETED, 3 when a person must act (NEEDS_HUMAN, AWAITING_APPROVAL), 1 else.
    """
    from rich.console import Console

    with _reported("watch"):
        client = _connect(stack, url, local, port, region, profile)
        code = _follow(
            client,
            agent_id,
            interval=interval,
            timeout=timeout,
            json_output=json_output,
            console=Console(),
        )
    raise typer.Exit(code)


@agents_app.command("resume")
def agents_resume(
    agent_id: AgentIdArgument,
    instruction: Annotated[
        str, typer.Option("--instruction", help="What you tell the agent to do next.")
    ],
    stack: StackTarget = None,
    url: UrlTarget = None,
    local: LocalTarget = False,
    port: LocalPort = DEFAULT_LOCAL_PORT,
    region: Region = None,
    profile: Profile = None,
    json_output: JsonOutput = False,
) -> None:
    """Give an agent that waits for a person an instruction (POST /agents/{id}/resume)."""
    from agentry_stacks.client.render import render_started

    with _reported("resume"):
        answer = _connect(stack, url, local, port, region, profile).resume(agent_id, instruction)
    _show(answer, json_output, render_started)


@agents_app.command("cancel")
def agents_cancel(
    agent_id: AgentIdArgument,
    reason: Annotated[str | None, typer.Option("--reason", help="Why (recorded).")] = None,
    stack: StackTarget = None,
    url: UrlTarget = None,
    local: LocalTarget = False,
    port: LocalPort = DEFAULT_LOCAL_PORT,
    region: Region = None,
    profile: Profile = None,
    json_output: JsonOutput = False,
) -> None:
    """Cancel an agent that has not ended (POST /agents/{id}/cancel)."""
    from agentry_stacks.client.render import render_started

    with _reported("cancel"):
        answer = _connect(stack, url, local, port, region, profile).cancel(agent_id, reason=reason)
    _show(answer, json_output, render_started)


@agents_app.command("approve")
def agents_approve(
    agent_id: AgentIdArgument,
    approve_all: Annotated[
        bool, typer.Option("--all", help="Approve every call that waits for a decision.")
    ] = False,
    reject_all: Annotated[
        bool, typer.Option("--none", help="Reject every call that waits for a decision.")
    ] = False,
    approve: Annotated[
        list[str] | None,
        typer.Option("--approve", help="Approve this tool use id (repeatable)."),
    ] = None,
    reject: Annotated[
        list[str] | None,
        typer.Option("--reject", help="Reject this tool use id (repeatable)."),
    ] = None,
    reason: Annotated[
        str | None,
        typer.Option("--reason", help="Why: recorded with each decision, shown to the model."),
    ] = None,
    stack: StackTarget = None,
    url: UrlTarget = None,
    local: LocalTarget = False,
    port: LocalPort = DEFAULT_LOCAL_PORT,
    region: Region = None,
    profile: Profile = None,
    json_output: JsonOutput = False,
) -> None:
    """Decide the tool calls an agent holds for a person (POST /agents/{id}/approvals).

    Without --all, --none, --approve or --reject, show the calls and their inputs (GET).
    """
    from agentry_stacks.client import Decision
    from agentry_stacks.client.render import render_approvals

    modes = [bool(approve_all), bool(reject_all), bool(approve or reject)]
    if sum(modes) > 1:
        typer.echo(
            "agentry agents approve: give one of --all, --none, or --approve/--reject ids",
            err=True,
        )
        raise typer.Exit(2)
    with _reported("approve"):
        client = _connect(stack, url, local, port, region, profile)
        if approve_all or reject_all:
            answer = client.decide_pending(agent_id, approve=approve_all, reason=reason)
        elif approve or reject:
            decisions = [Decision(i, True, reason) for i in approve or ()]
            decisions += [Decision(i, False, reason) for i in reject or ()]
            answer = client.decide(agent_id, decisions)
        else:
            answer = client.approvals(agent_id)
    _show(answer, json_output, render_approvals)


def main() -> None:
    """Entry point of the ``agentry`` script."""
    app()
