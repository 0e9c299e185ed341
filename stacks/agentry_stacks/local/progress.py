"""What happens in the local environment, as events, and their live rendering with rich."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

__all__ = ["EventKind", "LocalEvent", "ProgressCallback", "ProgressPrinter", "render_summary"]


class EventKind(StrEnum):
    """Kinds of things the local environment reports while it runs."""

    STATUS = "status"
    MODEL = "model"
    TOOL = "tool"
    RECOVERY = "recovery"
    NOTIFICATION = "notification"
    DEAD_LETTER = "dead-letter"


@dataclass(frozen=True)
class LocalEvent:
    """One observation: its kind, the agent it concerns (if known), a line for people, data."""

    kind: EventKind
    message: str
    agent_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


ProgressCallback = Callable[[LocalEvent], None]

_STYLES = {
    EventKind.STATUS: "bold cyan",
    EventKind.MODEL: "magenta",
    EventKind.TOOL: "green",
    EventKind.RECOVERY: "yellow",
    EventKind.NOTIFICATION: "bold yellow",
    EventKind.DEAD_LETTER: "bold red",
}


class ProgressPrinter:
    """A progress callback that prints each event as one styled line, as it happens."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def __call__(self, event: LocalEvent) -> None:
        """Print one event."""
        style = _STYLES.get(event.kind, "")
        self.console.print(f"[{style}]{event.kind:>12}[/] {escape(event.message)}", highlight=False)


def render_summary(report: dict[str, Any], console: Console) -> None:
    """The end-of-run summary of an ``agentry local run`` report, as a table."""
    table = Table(title=f"agent {report['agentId']}", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    table.add_row("status", str(report["status"]))
    table.add_row("steps", str(report["steps"]))
    calls = ", ".join(f"{name} x{count}" for name, count in report["toolCalls"].items())
    table.add_row("tool calls", calls or "none")
    for booking in report["bookings"]:
        table.add_row(
            "booking",
            f"{booking['origin']} -> {booking['destination']} on {booking['date']}: "
            f"{booking['confirmation']}",
        )
    table.add_row("recoveries", str(report["recoveries"]))
    table.add_row("notifications", str(len(report["notifications"])))
    model = report["model"]
    table.add_row("model", escape(f"{model['id']} {model.get('label') or ''}".strip()))
    table.add_row("runtime", str(report["runtimeVersion"]))
    if report.get("answer"):
        table.add_row("answer", escape(str(report["answer"])))
    console.print(table)
