"""Plan and act: the loop's decisions on the in-memory table and model (no I/O).

The same agent runs as in ``tests/runtime/test_loop.py``, which keeps the behaviours only the
wiring shows (handlers, the stream, EventBridge, SQS, two threads on one event, boto3's own
retries over HTTP); here each step event is handed to ``AgentLoop.handle`` directly.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from support.agents import flights_tools
from support.memory_world import TABLE, MemoryWorld

from agentry_offline.bedrock import error_response
from agentry_offline.model import Faults, OfflineModel
from agentry_runtime.contract import (
    TTL_ATTRIBUTE,
    DetailType,
    ErrorType,
    StepKind,
    StepRequested,
    agent_pk,
)
from agentry_runtime.loop import StepOutcome
from agentry_runtime.settings import LoopSettings
from agentry_runtime.state import Status

GOAL = "Book a flight from New York to San Francisco for tomorrow"
World = Callable[..., MemoryWorld]


def test_the_demo_goal_completes_with_one_booking(memory_world: World) -> None:
    # GIVEN the offline model and the flight tools
    world = memory_world()
    # WHEN an agent is created and its step events are delivered
    agent_id = world.start(GOAL)
    world.run()
    # THEN it completed through plan and act steps, with exactly one booking
    header = world.store.get_header(agent_id)
    assert header.status == Status.COMPLETED
    assert world.service.view(agent_id)["answer"].startswith(OfflineModel.LABEL)
    (booking,) = world.bookings(agent_id)
    assert "SFO" in json.dumps(booking) or "San Francisco" in json.dumps(booking)
    roles = [m.role for m in world.store.messages(agent_id)]
    assert roles == ["user", "assistant", "user", "assistant", "user", "assistant"]
    assert header.tool_call_count == 2
    assert [e.agent_id for e in world.observed(DetailType.AGENT_COMPLETED)] == [agent_id]


def test_every_event_delivered_twice_gives_the_same_final_state(memory_world: World) -> None:
    # GIVEN one agent run normally and one whose every event is delivered twice
    world = memory_world()
    normal = world.start(GOAL)
    world.run()
    doubled = world.start(GOAL)
    world.run(duplicate=True)
    # THEN both end the same way, each with one booking, and every copy was dropped
    a, b = world.store.get_header(normal), world.store.get_header(doubled)
    assert (a.status, a.step, a.message_count, a.tool_call_count) == (
        b.status,
        b.step,
        b.message_count,
        b.tool_call_count,
    )
    assert len(world.bookings(doubled)) == 1
    assert world.store.item_count(doubled) == world.store.item_count(normal)


def test_throttled_model_calls_are_retried_by_the_client(memory_world: World) -> None:
    # GIVEN a model that throttles its first two calls
    world = memory_world(responder=OfflineModel(faults=Faults(throttle=2)))
    agent_id = world.start(GOAL)
    # WHEN the agent runs
    world.run()
    # THEN the client's retry mode absorbed the throttling: three plans, two retries
    assert world.store.get_header(agent_id).status == Status.COMPLETED
    assert len(world.bedrock.requests) == 3 + 2


def test_a_model_that_stays_throttled_ends_in_a_retryable_error(memory_world: World) -> None:
    # GIVEN a model that throttles every attempt of the first plan
    world = memory_world(responder=OfflineModel(faults=Faults(throttle=4)), model_attempts=4)
    agent_id = world.start(GOAL)
    # WHEN the agent runs
    world.run()
    # THEN the plan failed with a typed, retryable ModelThrottled error for recovery to take
    header = world.store.get_header(agent_id)
    assert (header.status, header.last_error_type) == (
        Status.PLANNING_FAILED,
        ErrorType.MODEL_THROTTLED,
    )
    (error,) = world.observed(DetailType.AGENT_ERROR)
    assert (error.error_type, error.retryable) == (ErrorType.MODEL_THROTTLED, True)


def test_malformed_output_is_corrected_by_reprompting(memory_world: World) -> None:
    # GIVEN a model whose first plan is malformed
    world = memory_world(responder=OfflineModel(faults=Faults(malformed=1)))
    agent_id = world.start(GOAL)
    # WHEN the agent runs
    world.run()
    # THEN the validation error went back to the model and it completed
    assert world.store.get_header(agent_id).status == Status.COMPLETED
    feedback = [m for m in world.store.messages(agent_id) if m.role == "user"][1]
    assert "Not executed" in json.dumps(feedback.to_converse()) or "could not be used" in (
        feedback.text()
    )


def test_persistently_malformed_output_ends_in_planning_failed(memory_world: World) -> None:
    # GIVEN a model that never produces a valid plan
    world = memory_world(
        responder=OfflineModel(faults=Faults(malformed=100)),
        settings=LoopSettings(max_plan_retries=2),
    )
    agent_id = world.start(GOAL)
    # WHEN the agent runs
    world.run()
    # THEN after the bound a typed, non-retryable PlanningFailed error is announced
    assert world.store.get_header(agent_id).status == Status.PLANNING_FAILED
    (error,) = world.observed(DetailType.AGENT_ERROR)
    assert (error.agent_id, error.error_type, error.retryable) == (
        agent_id,
        ErrorType.PLANNING_FAILED,
        False,
    )


def test_bad_tool_arguments_are_refused_and_the_model_is_told(memory_world: World) -> None:
    # GIVEN a model whose first call breaks its tool's input schema
    world = memory_world(responder=OfflineModel(faults=Faults(bad_tool_args=1)))
    agent_id = world.start(GOAL)
    # WHEN the agent runs
    world.run()
    # THEN the bad call never ran, the model heard why, and the agent completed once booked
    assert world.store.get_header(agent_id).status == Status.COMPLETED
    corrections = [m.text() for m in world.store.messages(agent_id) if m.origin == "platform"]
    assert corrections
    assert len(world.bookings(agent_id)) == 1


def test_a_failing_tool_error_reaches_the_model_which_replans(memory_world: World) -> None:
    # GIVEN a booking tool that fails on its first execution
    world = memory_world(tools=flights_tools(fail_once={"book_flight"}))
    agent_id = world.start(GOAL)
    # WHEN the agent runs
    world.run()
    # THEN the model saw the error result, planned again, and one booking was made
    assert world.store.get_header(agent_id).status == Status.COMPLETED
    results = [
        block["toolResult"]["status"]
        for m in world.store.messages(agent_id)
        for block in m.to_converse()["content"]
        if "toolResult" in block
    ]
    assert results == ["success", "error", "success"]
    assert len(world.bookings(agent_id)) == 1


def test_three_consecutive_tool_failures_end_in_tool_execution_failed(
    memory_world: World,
) -> None:
    # GIVEN a booking tool that always fails
    world = memory_world(tools=flights_tools(failing={"book_flight"}))
    agent_id = world.start(GOAL)
    # WHEN the agent runs
    world.run()
    # THEN after three failed rounds a retryable ToolExecutionFailed error is announced
    header = world.store.get_header(agent_id)
    assert header.status == Status.TOOL_EXECUTION_FAILED
    assert header.consecutive_tool_failures == 3
    assert header.next_step is None
    (error,) = world.observed(DetailType.AGENT_ERROR)
    assert (error.error_type, error.retryable) == (ErrorType.TOOL_EXECUTION_FAILED, True)
    assert world.bookings(agent_id) == []


def test_stale_future_and_unknown_events_are_dropped(memory_world: World) -> None:
    # GIVEN a completed agent
    world = memory_world()
    agent_id = world.start(GOAL)
    world.run()
    # WHEN old, future and unknown-agent events arrive
    outcomes = {
        world.deliver(StepRequested(agent_id=agent_id, step=0, kind=StepKind.PLAN)).outcome,
        world.deliver(StepRequested(agent_id=agent_id, step=99, kind=StepKind.PLAN)).outcome,
        world.deliver(
            StepRequested(agent_id="agent-" + "0" * 32, step=0, kind=StepKind.PLAN)
        ).outcome,
    }
    # THEN they are dropped without changing anything
    assert outcomes == {StepOutcome.DROPPED}
    assert world.store.get_header(agent_id).status == Status.COMPLETED


def test_an_event_of_the_wrong_kind_is_dropped(memory_world: World) -> None:
    # GIVEN an agent waiting for its first plan WHEN an act event of that step arrives
    world = memory_world()
    agent_id = world.start(GOAL)
    result = world.deliver(StepRequested(agent_id=agent_id, step=0, kind=StepKind.ACT))
    # THEN it is dropped, and the plan still runs when its own event comes
    assert result.outcome == StepOutcome.DROPPED
    world.run()
    assert world.store.get_header(agent_id).status == Status.COMPLETED


def test_a_successful_tool_round_after_recovery_resets_the_recovery_budget(
    memory_world: World,
) -> None:
    # GIVEN an agent whose lookup failed three times, recovered as the state machine does
    world = memory_world(tools=flights_tools(failing={"get_flight_info"}))
    agent_id = world.start(GOAL)
    world.run()
    failed = world.store.get_header(agent_id)
    assert failed.status == Status.TOOL_EXECUTION_FAILED
    world.store.commit(
        failed.version,
        failed.model_copy(
            update={
                "status": Status.RECOVERING,
                "step": failed.step + 1,
                "next_step": StepKind.PLAN,
                "recovery_attempts": 1,
            }
        ),
    )
    # WHEN the tool works again and the recovery's step is delivered
    world.agent.tools = flights_tools()
    world.run()
    # THEN the agent completed and its recovery budget is whole again
    header = world.store.get_header(agent_id)
    assert header.status == Status.COMPLETED
    assert header.recovery_attempts == 0


def test_token_usage_is_recorded_per_step_and_in_total(memory_world: World) -> None:
    # GIVEN a completed demo agent
    world = memory_world()
    agent_id = world.start(GOAL)
    world.run()
    # THEN each model turn carries the usage of its call, and the header their sum
    turns = [m for m in world.store.messages(agent_id) if m.role == "assistant"]
    assert all(m.usage is not None and m.usage.output_tokens > 0 for m in turns)
    total = sum(m.usage.input_tokens for m in turns if m.usage)
    assert world.store.get_header(agent_id).usage.input_tokens == total
    # AND the API's page of messages shows it
    page = world.service.messages(agent_id, limit=50, cursor=None)
    shown = [m["usage"] for m in page["messages"] if m["role"] == "assistant"]
    assert len(shown) == len(turns)
    assert all(usage["output_tokens"] > 0 for usage in shown)


def test_the_step_limit_asks_a_human_and_a_resume_grants_new_steps(memory_world: World) -> None:
    # GIVEN a step budget too small for the demo goal (it needs 5 steps)
    world = memory_world(settings=LoopSettings(max_steps=3))
    agent_id = world.start(GOAL)
    world.run()
    header = world.store.get_header(agent_id)
    # THEN the agent stops with a typed, non-retryable StepLimitExceeded error
    assert (header.status, header.last_error_type) == (
        Status.PLANNING_FAILED,
        ErrorType.STEP_LIMIT_EXCEEDED,
    )
    (error,) = world.observed(DetailType.AGENT_ERROR)
    assert (error.error_type, error.retryable) == (ErrorType.STEP_LIMIT_EXCEEDED, False)
    # WHEN recovery parks it for a human, who resumes it
    world.store.commit(header.version, header.model_copy(update={"status": Status.NEEDS_HUMAN}))
    world.service.resume(agent_id, "Go on")
    world.run()
    # THEN it has a fresh budget and completes, with one booking
    assert world.store.get_header(agent_id).status == Status.COMPLETED
    assert len(world.bookings(agent_id)) == 1


def test_the_token_cap_stops_the_agent_with_budget_exceeded(memory_world: World) -> None:
    # GIVEN a cap of tokens the first plan already spends
    world = memory_world(settings=LoopSettings(max_total_tokens=10))
    agent_id = world.start(GOAL)
    # WHEN the agent runs
    world.run()
    # THEN it planned once, then stopped with a typed BudgetExceeded error, booking nothing
    header = world.store.get_header(agent_id)
    assert header.last_error_type == ErrorType.BUDGET_EXCEEDED
    assert header.next_step is None
    assert header.usage.total >= 10
    assert len(world.bedrock.requests) == 1
    assert world.bookings(agent_id) == []


def test_a_redelivery_commits_the_turn_its_dead_worker_wrote_without_asking_the_model(
    memory_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a worker that wrote its plan's turn (a booking) and died before its header was
    # written, and a model that is down when the step's event comes back
    script = OfflineModel()
    down: list[bool] = []

    def responder(model_id: str, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        if down:
            return error_response(503, "ServiceUnavailableException", "Bedrock is down")
        return script(model_id, body)

    world = memory_world(responder=responder)
    agent_id = world.start(GOAL)
    world.announce()
    event = world.queue.popleft()

    def died(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the worker died")

    with monkeypatch.context() as dying:
        dying.setattr(world.store, "commit", died)
        with pytest.raises(RuntimeError):
            world.deliver(event, chain=False)
    asked = len(world.bedrock.requests)
    # WHEN the event is delivered again while the model is down
    down.append(True)
    result = world.deliver(event, chain=False)
    # THEN the step commits the turn its dead worker wrote, without asking the model again
    assert result.outcome == StepOutcome.COMMITTED
    assert len(world.bedrock.requests) == asked
    assert world.store.get_header(agent_id).next_step == StepKind.ACT
    # AND once the model is back, the agent completes with its history whole
    down.clear()
    world.run()
    assert world.store.get_header(agent_id).status == Status.COMPLETED
    assert len(world.bookings(agent_id)) == 1


def test_every_item_an_agent_leaves_expires_with_it(memory_world: World) -> None:
    # GIVEN the flight agent, run to its end
    world = memory_world()
    agent_id = world.start(GOAL)
    world.run()
    assert world.store.get_header(agent_id).status == Status.COMPLETED
    # WHEN its items are read
    items = world.dynamodb.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": agent_pk(agent_id)}},
    )["Items"]
    # THEN each kind of item the platform wrote (header, info, messages, tool claims) carries
    # the agent's expiry: none outlives it (the flight tool's own booking items are its own)
    kinds = {item["sk"]["S"].split("#", 1)[0] for item in items}
    assert {"META", "INFO", "MSG", "TOOL"} <= kinds
    ttl = world.store.get_header(agent_id).ttl
    for item in items:
        if item["sk"]["S"].split("#", 1)[0] in {"META", "INFO", "MSG", "TOOL", "SUMMARY"}:
            assert item.get(TTL_ATTRIBUTE) == {"N": str(ttl)}, item["sk"]
