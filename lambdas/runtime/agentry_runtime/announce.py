"""What a header transition announces: a pure function of the header before and after a write.

The state table's stream carries every write of a header, with its old and new image, to the
announcer (the only publisher on the bus). A write announces only what changed:

- ``Agent Step Requested`` when the step the agent waits for is new (its step, kind or nonce
  changed, or a chaining worker released it): never while a chaining worker holds the agent;
- a lifecycle event when the status changed: ``Agent Completed``, ``Agent Error`` (a step
  failed), ``Agent Needs Human``, ``Agent Needs Approval`` (and ``Agent Error`` again when the
  reconciler pokes a failure that recovery never took up).

A write that changes neither (a counter, a lease, a recovery's bookkeeping) announces nothing.
"""

from __future__ import annotations

from agentry_runtime.contract import (
    FAILURES,
    HUMAN_WAITS,
    RETRYABLE_ERRORS,
    TERMINAL,
    AgentCompleted,
    AgentErrorDetail,
    AgentNeedsApproval,
    AgentNeedsHuman,
    DetailType,
    Status,
    StepRequested,
)
from agentry_runtime.events import Event
from agentry_runtime.state import AgentHeader

__all__ = ["announcements", "awaits_step", "lifecycle_events", "step_events"]


def awaits_step(header: AgentHeader) -> bool:
    """Whether the header asks for a step event: a step is due and no worker holds the agent."""
    return (
        header.next_step is not None
        and header.status not in TERMINAL
        and header.status not in HUMAN_WAITS
        and header.runner_until is None
    )


def step_events(old: AgentHeader | None, new: AgentHeader) -> list[Event]:
    """``Agent Step Requested`` if the write made a new step due."""
    if not awaits_step(new):
        return []
    if (
        old is not None
        and awaits_step(old)
        and (old.step, old.next_step, old.nonce) == (new.step, new.next_step, new.nonce)
    ):
        return []  # the same step was already due before this write
    assert new.next_step is not None
    return [
        (
            DetailType.STEP_REQUESTED,
            StepRequested(agent_id=new.agent_id, step=new.step, kind=new.next_step),
        )
    ]


def lifecycle_events(old: AgentHeader | None, new: AgentHeader) -> list[Event]:
    """The lifecycle event of a status change, if the new status has one.

    A failure the reconciler pokes (a new nonce, the same failed status) is announced again:
    its first ``Agent Error`` may never have reached the recovery state machine.
    """
    if new.runner_until is not None:
        # Mid-chain commits announce nothing (the announcer's stream filter drops them too):
        # a chain never commits a lifecycle status while it holds the agent.
        return []
    poked_failure = (
        old is not None
        and old.status == new.status
        and new.status in FAILURES
        and old.nonce != new.nonce
    )
    if old is not None and old.status == new.status and not poked_failure:
        return []
    if new.status == Status.COMPLETED:
        return [(DetailType.AGENT_COMPLETED, AgentCompleted(agent_id=new.agent_id, step=new.step))]
    if new.status in FAILURES and new.next_step is None and new.last_error_type is not None:
        detail = AgentErrorDetail(
            agent_id=new.agent_id,
            step=new.step,
            error_type=new.last_error_type,
            retryable=new.last_error_type in RETRYABLE_ERRORS,
        )
        return [(DetailType.AGENT_ERROR, detail)]
    if new.status == Status.NEEDS_HUMAN:
        human = AgentNeedsHuman(
            agent_id=new.agent_id, step=new.step, error_type=new.last_error_type
        )
        return [(DetailType.AGENT_NEEDS_HUMAN, human)]
    if new.status == Status.AWAITING_APPROVAL:
        approval = AgentNeedsApproval(
            agent_id=new.agent_id, step=new.step, tools=sorted(new.awaiting_tools)
        )
        return [(DetailType.AGENT_NEEDS_APPROVAL, approval)]
    return []


def announcements(old: AgentHeader | None, new: AgentHeader) -> list[Event]:
    """Every event a header write announces (see the module doc)."""
    return [*step_events(old, new), *lifecycle_events(old, new)]
