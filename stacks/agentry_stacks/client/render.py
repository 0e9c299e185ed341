"""How ``agentry agents`` shows answers to people, with rich (``--json`` prints them raw)."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from agentry_stacks.client.watch import TimelineEvent, TimelineKind

__all__ = [
    "render_agent",
    "render_agents",
    "render_approvals",
    "render_event",
    "render_started",
]

_STATUS_STYLES = {
    "COMPLETED": "bold green",
    "NEEDS_HUMAN": "bold yellow",
    "AWAITING_APPROVAL": "bold yellow",
    "CANCELLED": "bold red",
    "FAILED": "bold red",
}
_TEXT_LIMIT = 400


def _status(status: object) -> str:
    style = _STATUS_STYLES.get(str(status), "bold cyan")
    return f"[{style}]{escape(str(status))}[/]"


def _short(value: Any, limit: int = _TEXT_LIMIT) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = " ".join(text.split())
    return escape(text if len(text) <= limit else text[: limit - 1] + "…")


def render_started(answer: dict[str, Any], console: Console) -> None:
    """The answer of ``POST /agents``."""
    console.print(
        f"started [bold]{escape(str(answer.get('agentId')))}[/] "
        f"({escape(str(answer.get('agent')))}): {_status(answer.get('status'))}",
        highlight=False,
    )


def render_agent(view: dict[str, Any], console: Console) -> None:
    """``GET /agents/{id}`` as a table: status, goal, plan, answer, last error, usage."""
    table = Table(title=f"agent {escape(str(view.get('agentId')))}", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    metadata = view.get("metadata", {})
    table.add_row("status", _status(view.get("status")))
    table.add_row("agent", escape(str(view.get("agent"))))
    table.add_row("model", escape(str(view.get("model"))))
    table.add_row("goal", _short(view.get("goal", "")))
    table.add_row("steps", str(metadata.get("invocationCount", "-")))
    for entry in view.get("plan", []):
        table.add_row(
            f"step {entry.get('step')}",
            f"{escape(str(entry.get('toolName')))}({_short(entry.get('parameters'), 120)}) "
            f"{escape(str(entry.get('status')))}",
        )
    if view.get("answer"):
        table.add_row("answer", _short(view["answer"]))
    if error := view.get("lastError"):
        table.add_row(
            "last error",
            escape(f"{error.get('errorType')} at step {error.get('step')}: ")
            + _short(error.get("message", "")),
        )
    usage = metadata.get("usage") or {}
    if usage:
        table.add_row("tokens", escape(", ".join(f"{k} {v}" for k, v in sorted(usage.items()))))
    table.add_row("updated", escape(str(metadata.get("lastUpdated", "-"))))
    console.print(table)


def render_agents(page: dict[str, Any], console: Console) -> None:
    """``GET /agents``: one row per agent, and the cursor of the next page if any."""
    table = Table(title="agents")
    table.add_column("agent id", overflow="fold")
    for column in ("agent", "status", "created", "updated"):
        table.add_column(column)
    for agent in page.get("agents", []):
        table.add_row(
            escape(str(agent.get("agentId"))),
            escape(str(agent.get("agent"))),
            _status(agent.get("status")),
            escape(str(agent.get("createdAt"))),
            escape(str(agent.get("lastUpdated"))),
        )
    console.print(table)
    if page.get("nextCursor"):
        console.print(f"more: --cursor {escape(str(page['nextCursor']))}", highlight=False)


def render_approvals(view: dict[str, Any], console: Console) -> None:
    """``GET``/``POST /agents/{id}/approvals``: each held call, its input and decision."""
    table = Table(title=f"approvals of {escape(str(view.get('agentId')))} ({view.get('status')})")
    # Ids are what --approve/--reject take: shown whole, folded rather than cut.
    table.add_column("tool use id", overflow="fold")
    table.add_column("tool")
    table.add_column("input")
    table.add_column("decision", overflow="fold")
    for call in view.get("calls", []):
        decision = str(call.get("decision"))
        if call.get("decidedBy"):
            decision += f" by {call['decidedBy']}"
        if call.get("reason"):
            decision += f": {call['reason']}"
        table.add_row(
            escape(str(call.get("toolUseId"))),
            escape(str(call.get("toolName"))),
            _short(call.get("input"), 200),
            escape(decision),
        )
    console.print(table)
    if view.get("deadline"):
        console.print(f"decide before {escape(str(view['deadline']))}", highlight=False)
    if view.get("ignored"):
        console.print(
            f"[yellow]already decided, ignored:[/] {escape(', '.join(view['ignored']))}",
            highlight=False,
        )


def render_event(event: TimelineEvent, console: Console) -> None:
    """One timeline event as one or more styled lines."""
    if event.kind is TimelineKind.STATUS:
        before = f"{escape(event.previous)} -> " if event.previous else ""
        console.print(f"[bold]{'status':>9}[/] {before}{_status(event.status)}", highlight=False)
        return
    message = event.message
    who = escape(str(message.get("role")))
    origin = message.get("origin")
    if origin and origin not in ("model", "caller", "tool"):
        who += f" ({escape(str(origin))})"
    prefix = f"[dim]#{message.get('seq')} step {message.get('step')}[/] [magenta]{who}[/]"
    for block in message.get("content", []):
        if "text" in block:
            line = _short(block["text"])
        elif "toolUse" in block:
            use = block["toolUse"]
            line = f"[green]-> {escape(str(use.get('name')))}[/]({_short(use.get('input'), 200)})"
        elif "toolResult" in block:
            result = block["toolResult"]
            style = "green" if result.get("status") == "success" else "red"
            line = (
                f"[{style}]<- {escape(str(result.get('status')))}[/] "
                f"{_short(result.get('content'), 200)}"
            )
        else:
            line = _short(block, 200)
        console.print(f"{prefix} {line}", highlight=False)
