"""One agent run on the local environment, reported: what ``agentry local run`` prints.

The report's keys are a public interface (scripts read ``--json``): ``agentId``, ``status``,
``steps``, ``toolCalls``, ``bookings``, ``recoveries``, ``notifications``, ``runtimeVersion``,
``model``, plus ``answer``, ``deadLetters``, ``agent``, ``modelFailure`` (why the offline
model could not answer: a script that ran out or named a tool the agent does not have) and
``approvals`` (the decisions ``--approve`` made).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, Literal

from agentry_offline.model import LABEL, OfflineResponder
from agentry_offline.script import Script
from agentry_stacks.local.environment import LocalEnvironment
from agentry_stacks.local.progress import ProgressCallback

__all__ = ["EXIT_COMPLETED", "EXIT_NEEDS_HUMAN", "EXIT_OTHER", "exit_code", "run_goal"]

EXIT_COMPLETED = 0
EXIT_OTHER = 1
EXIT_NEEDS_HUMAN = 3


#: ``--approve``: answer every approval request with yes, or with no.
Approve = Literal["all", "none"]
#: Rounds of approvals a run answers before it stops (a model that keeps asking).
MAX_APPROVAL_ROUNDS = 20


def exit_code(status: str, *, model_failure: str | None = None) -> int:
    """0 for COMPLETED, 3 when a person must act (NEEDS_HUMAN, AWAITING_APPROVAL), 1 for any
    other end or an offline model failure."""
    if model_failure:
        return EXIT_OTHER
    waits = {"NEEDS_HUMAN": EXIT_NEEDS_HUMAN, "AWAITING_APPROVAL": EXIT_NEEDS_HUMAN}
    return {"COMPLETED": EXIT_COMPLETED, **waits}.get(status, EXIT_OTHER)


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
    approve: Approve | None = None,
) -> dict[str, Any]:
    """Start one agent with ``goal`` (of definition ``agent``), run until idle, report.

    With ``approve``, every approval the agent asks for is answered (``all``: approved,
    ``none``: rejected) through the API, as its owner would; without it, a run that reaches an
    approval stops there (``AWAITING_APPROVAL``).
    """
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
        decisions: list[dict[str, Any]] = []
        for _ in range(MAX_APPROVAL_ROUNDS):
            if approve is None or env.agent(agent_id)["status"] != "AWAITING_APPROVAL":
                break
            answer = env.decide(
                agent_id,
                approve=approve == "all",
                reason=None if approve == "all" else "declined by agentry local run --approve none",
            )
            decisions.extend(
                {"toolUseId": c["toolUseId"], "toolName": c["toolName"], "decision": c["decision"]}
                for c in answer["calls"]
            )
            env.run_until_idle(timeout=timeout)
        return {**report(env, agent_id), "approvals": decisions}


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
