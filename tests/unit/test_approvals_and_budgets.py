"""People approve side effects and budgets cap them: the loop's and the service's part, in memory.

An agent whose bookings need a person's approval and that may book once in its life (the prod
stack's flight agent, as ``LoopSettings``) meets a scripted model that asks for more bookings
than the goal needs. ``tests/local/test_approvals.py`` runs the same story end to end on the
local environment (HTTP API, notifications, the reconciler's schedule).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from support.memory_world import MemoryWorld

from agentry_flights import registry as flights
from agentry_offline.script import Script, ScriptedModel
from agentry_runtime.contract import DetailType, ErrorType
from agentry_runtime.errors import UnknownToolCallError
from agentry_runtime.service import Decision
from agentry_runtime.settings import LoopSettings
from agentry_runtime.state import Status
from agentry_runtime.tools import ToolContext

GOAL = "Book one flight from New York to San Francisco for tomorrow"
GUARDED = LoopSettings(approvals={"book_flight": True}, tool_budgets={"book_flight": 1})
World = Callable[..., MemoryWorld]


def _greedy_script(*, again: bool = True) -> ScriptedModel:
    """Look up, then book two flights at once, then (``again``) try a third booking, then
    answer."""
    day = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)).isoformat()
    query = {"origin": "New York", "destination": "San Francisco", "date": day}
    ctx = ToolContext(agent_id="a", tool_use_id="t", table_name="-", dynamodb=None)
    found = flights.execute("get_flight_info", query, ctx).content[0]["json"]["flights"]
    first, second, *_ = [f["flight_id"] for f in found] * 2
    book = [{"name": "book_flight", "input": {**query, "flight_id": f}} for f in (first, second)]
    turns: list[dict[str, Any]] = [
        {"toolUse": [{"name": "get_flight_info", "input": query}]},
        {"toolUse": book},
    ]
    if again:
        turns.append({"toolUse": book[:1]})
    turns.append({"text": "Done."})
    return ScriptedModel(Script.model_validate({"turns": turns}))


def _held(world: MemoryWorld, agent_id: str) -> list[dict[str, Any]]:
    return [c for c in world.service.approvals(agent_id)["calls"] if c["decision"] == "PENDING"]


def _plan_statuses(world: MemoryWorld, agent_id: str) -> list[str]:
    plan = world.service.view(agent_id)["plan"]
    return [entry["status"] for entry in plan if entry["toolName"] == "book_flight"]


def test_nothing_is_booked_until_approved_and_the_budget_stops_a_second_booking(
    memory_world: World,
) -> None:
    # GIVEN an agent whose model asks for two bookings in one turn
    world = memory_world(responder=_greedy_script(), settings=GUARDED)
    agent_id = world.start(GOAL)
    world.run()
    # THEN it waits for a person, nothing is booked, and the wait was announced (tools only)
    assert world.store.get_header(agent_id).status == Status.AWAITING_APPROVAL
    assert world.bookings(agent_id) == []
    (held,) = _held(world, agent_id)  # the second is over the budget: never even asked
    assert held["toolName"] == "book_flight"
    (notice,) = world.observed(DetailType.AGENT_NEEDS_APPROVAL)
    assert notice.tools == ["book_flight"]
    # WHEN the person approves it
    world.service.decide(agent_id, [Decision(tool_use_id=held["toolUseId"], approve=True)])
    world.run()
    # THEN exactly one flight was booked; the call over budget was refused to the model, and
    # its next booking attempt, after being told, failed the step for a human (non-retryable)
    assert len(world.bookings(agent_id)) == 1
    assert _plan_statuses(world, agent_id) == ["COMPLETED", "SKIPPED", "SKIPPED"]
    header = world.store.get_header(agent_id)
    assert header.tool_uses == {"book_flight": 1, "get_flight_info": 1}
    (error,) = world.observed(DetailType.AGENT_ERROR)
    assert (error.error_type, error.retryable) == (ErrorType.BUDGET_EXCEEDED, False)
    # AND once recovery parks it for a person, a resume does not reset the budget: the next
    # attempt is refused again
    world.store.commit(header.version, header.model_copy(update={"status": Status.NEEDS_HUMAN}))
    world.service.resume(agent_id, "Try once more.")
    world.run()
    assert len(world.bookings(agent_id)) == 1


def test_a_rejection_reaches_the_model_with_its_reason(memory_world: World) -> None:
    # GIVEN an agent waiting for approval of a booking
    world = memory_world(responder=_greedy_script(), settings=GUARDED)
    agent_id = world.start(GOAL)
    world.run()
    (held,) = _held(world, agent_id)
    # WHEN the person rejects it, saying why
    reason = "Too expensive, ask the traveller first"
    decision = Decision(tool_use_id=held["toolUseId"], approve=False, reason=reason)
    world.service.decide(agent_id, [decision])
    world.run()
    # THEN nothing was booked, and the model's next turn saw the rejection and the reason
    assert world.bookings(agent_id) == []
    results = [
        block["toolResult"]
        for message in world.store.messages(agent_id)
        for block in message.to_converse()["content"]
        if "toolResult" in block
    ]
    (rejected,) = [r for r in results if reason in str(r)]
    assert rejected["status"] == "error"
    assert "a person rejected this call" in str(rejected)
    assert _plan_statuses(world, agent_id)[0] == "REJECTED"


def test_an_unanswered_approval_is_rejected_when_its_window_closes(memory_world: World) -> None:
    # GIVEN an agent waiting for approval
    world = memory_world(responder=_greedy_script(again=False), settings=GUARDED)
    agent_id = world.start(GOAL)
    world.run()
    # WHEN its window closes (the reconciler finds it past its deadline)
    world.service.expire_approvals(world.store.get_header(agent_id))
    world.run()
    # THEN the held call was rejected by the platform and the agent went on without it
    assert world.bookings(agent_id) == []
    assert world.store.get_header(agent_id).status != Status.AWAITING_APPROVAL
    assert _plan_statuses(world, agent_id)[0] == "REJECTED"


def test_decisions_on_calls_that_do_not_wait_are_refused(memory_world: World) -> None:
    # GIVEN an agent waiting for approval
    world = memory_world(responder=_greedy_script(), settings=GUARDED)
    agent_id = world.start(GOAL)
    world.run()
    # WHEN a decision names a call that does not wait THEN it is refused, naming the call
    with pytest.raises(UnknownToolCallError, match="tooluse_nothing"):
        world.service.decide(agent_id, [Decision(tool_use_id="tooluse_nothing", approve=True)])
    # AND a second decision on a decided call is ignored: the first one stands
    (held,) = _held(world, agent_id)
    approve = Decision(tool_use_id=held["toolUseId"], approve=True)
    world.service.decide(agent_id, [approve])
    assert world.bookings(agent_id) == []
