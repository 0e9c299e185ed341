"""What a header write announces: the announcer's pure decision, transition by transition.

``tests/runtime/test_announcer.py`` runs the announcer itself on moto (stream records, claims,
PutEvents failures); here only ``announce.announcements(old, new)`` is asked.
"""

from __future__ import annotations

from typing import Any

import pytest

from agentry_runtime.announce import announcements, awaits_step
from agentry_runtime.contract import (
    AgentErrorDetail,
    DetailType,
    ErrorType,
    Status,
    StepKind,
    StepRequested,
)
from agentry_runtime.state import AgentHeader


def _header(**changes: Any) -> AgentHeader:
    fields: dict[str, Any] = {"agent_id": "agent-1", "agent": "flights", "message_count": 1}
    return AgentHeader(**(fields | changes))


def _kinds(old: AgentHeader | None, new: AgentHeader) -> list[DetailType]:
    return [detail_type for detail_type, _ in announcements(old, new)]


def test_a_new_agent_announces_its_first_step() -> None:
    # GIVEN no header before WHEN the first one is written THEN its first plan is requested
    ((detail_type, detail),) = announcements(None, _header())
    assert detail_type == DetailType.STEP_REQUESTED
    assert isinstance(detail, StepRequested)
    assert (detail.agent_id, detail.step, detail.kind) == ("agent-1", 0, StepKind.PLAN)


@pytest.mark.parametrize(
    ("change", "announced"),
    [
        ({"step": 1, "next_step": StepKind.ACT}, [DetailType.STEP_REQUESTED]),
        ({"nonce": 1}, [DetailType.STEP_REQUESTED]),
        ({"recovery_attempts": 1}, []),
        ({"runner_until": 1e12, "step": 1, "next_step": StepKind.ACT}, []),
    ],
    ids=["next step", "a poke", "a counter", "held by a chain"],
)
def test_only_a_new_due_step_is_requested(change: dict[str, Any], announced: list[Any]) -> None:
    # GIVEN an agent waiting for a step WHEN a write changes its header THEN only a step that
    # became due (and is not held by a chaining worker) is requested again
    old = _header()
    assert _kinds(old, old.model_copy(update=change)) == announced


def test_a_chain_s_release_requests_its_step() -> None:
    # GIVEN an agent held by a chaining worker WHEN the chain's last commit releases it
    held = _header(step=3, next_step=StepKind.PLAN, runner_until=1e12)
    released = held.model_copy(update={"runner_until": None})
    # THEN the step it waits for is requested
    assert _kinds(held, released) == [DetailType.STEP_REQUESTED]
    assert awaits_step(released)
    assert not awaits_step(held)


@pytest.mark.parametrize(
    ("status", "extra", "announced"),
    [
        (Status.COMPLETED, {"next_step": None}, [DetailType.AGENT_COMPLETED]),
        (
            Status.PLANNING_FAILED,
            {"next_step": None, "last_error_type": ErrorType.MODEL_THROTTLED},
            [DetailType.AGENT_ERROR],
        ),
        (Status.NEEDS_HUMAN, {"next_step": None}, [DetailType.AGENT_NEEDS_HUMAN]),
        (
            Status.AWAITING_APPROVAL,
            {"next_step": StepKind.ACT, "awaiting_tools": ["book_flight"]},
            [DetailType.AGENT_NEEDS_APPROVAL],
        ),
        (Status.CANCELLED, {"next_step": None}, []),
    ],
)
def test_a_status_change_announces_its_lifecycle_event_once(
    status: Status, extra: dict[str, Any], announced: list[DetailType]
) -> None:
    # GIVEN an agent that planned WHEN a write moves it to a new status
    old = _header(step=1, next_step=StepKind.PLAN, status=Status.TOOL_EXECUTION_SUCCESS)
    new = old.model_copy(update={"status": status, "step": 2, **extra})
    # THEN the status's event is announced, and a later write in the same status is silent
    assert _kinds(old, new) == announced
    assert _kinds(new, new.model_copy(update={"recovery_attempts": 1})) == []


def test_a_poked_failure_is_announced_again() -> None:
    # GIVEN a failure that recovery never took up WHEN the reconciler pokes it (a new nonce)
    failed = _header(
        status=Status.TOOL_EXECUTION_FAILED,
        next_step=None,
        last_error_type=ErrorType.TOOL_EXECUTION_FAILED,
    )
    ((detail_type, detail),) = announcements(failed, failed.model_copy(update={"nonce": 1}))
    # THEN its error event goes out again, retryable as its type says
    assert detail_type == DetailType.AGENT_ERROR
    assert isinstance(detail, AgentErrorDetail)
    assert (detail.error_type, detail.retryable) == (ErrorType.TOOL_EXECUTION_FAILED, True)
