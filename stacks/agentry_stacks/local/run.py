"""One agent run on the local environment, reported: what ``agentry local run`` prints.

The report's keys are a public interface (scripts read ``--json``): ``agentId``, ``status``,
``steps``, ``toolCalls``, ``bookings``, ``recoveries``, ``notifications``, ``runtimeVersion``,
``model``, plus ``answer``, ``deadLetters``, ``agent`` and ``modelFailure`` (why the offline
model could not answer: a script that ran out or named a tool the agent does not have).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from agentry_offline.model import LABEL, OfflineResponder
from agentry_offline.script import Script
from agentry_stacks.local.environment import LocalEnvironment
from agentry_stacks.local.progress import ProgressCallback

__all__ = ["EXIT_COMPLETED", "EXIT_NEEDS_HUMAN", "EXIT_OTHER", "exit_code", "run_goal"]

EXIT_COMPLETED = 0
EXIT_OTHER = 1
EXIT_NEEDS_HUMAN = 3


def exit_code(status: str, *, model_failure: str | None = None) -> int:
    """0 for COMPLETED, 3 for NEEDS_HUMAN, 1 for any other end or an offline model failure."""
    if model_failure:
        return EXIT_OTHER
    return {"COMPLETED": EXIT_COMPLETED, "NEEDS_HUMAN": EXIT_NEEDS_HUMAN}.get(status, EXIT_OTHER)


def run_goal(
    goal: str,
    *,
    stack: str = "dev",
    fail_tools: Collection[str] = (),
    throttle: int = 0,
    duplicate_events: bool = False,
    project_dir: Path | None = None,
    graph: Mapping[str, Any] | None = None,
    on_event: ProgressCallback | None = None,
    timeout: float = 120.0,
    agent: str | None = None,
    script: Script | None = None,
) -> dict[str, Any]:
    """Start one agent with ``goal`` (of definition ``agent``), run until idle, report."""
    with LocalEnvironment(
        stack,
        fail_tools=fail_tools,
        throttle=throttle,
        duplicate_events=duplicate_events,
        project_dir=project_dir,
        graph=graph,
        on_event=on_event,
        script=script,
    ) as env:
        agent_id = env.start(goal, agent=agent)
        env.run_until_idle(timeout=timeout)
        return report(env, agent_id)


def report(env: LocalEnvironment, agent_id: str) -> dict[str, Any]:
    """The run report of one agent of an open environment."""
    view = env.agent(agent_id)
    metadata = view["metadata"]
    calls = Counter(entry["toolName"] for entry in view["plan"])
    offline = isinstance(env.model, OfflineResponder)
    return {
        "agentId": agent_id,
        "agent": view["agent"],
        "status": view["status"],
        "steps": metadata["invocationCount"],
        "toolCalls": dict(sorted(calls.items())),
        "bookings": [
            {
                "origin": b["origin"],
                "destination": b["destination"],
                "date": b["date"],
                "confirmation": b["confirmation"],
            }
            for b in env.bookings(agent_id)
        ],
        "recoveries": metadata["recoveryAttempts"],
        "notifications": [
            n
            for n in env.notifications()
            if isinstance(n["message"], dict) and n["message"].get("agentId") == agent_id
        ],
        "runtimeVersion": metadata["runtimeVersion"],
        "model": {
            "id": metadata["modelId"],
            "offline": offline,
            "label": LABEL if offline else None,
        },
        "answer": view.get("answer"),
        "deadLetters": len(env.dlq_messages()),
        "modelFailure": env.model_failure(),
    }
