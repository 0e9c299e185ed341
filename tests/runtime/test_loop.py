"""The reasoning loop wired: on moto, through the real handlers, stream, bus, queues and boto3.

What only the wiring shows is tested here (the api, the announcer and EventBridge in between,
duplicated SQS deliveries, two workers at once, PutEvents failures, boto3's retries over
HTTP, lifecycle events on the bus, the API's pages); the loop's own decisions (corrections,
replanning, stale events, recovery budgets, token caps) are in ``tests/unit/test_plan_act.py``.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from support.agents import flights_tools
from support.world import World

from agentry_offline.model import Faults, OfflineModel
from agentry_runtime.contract import DetailType, ErrorType, StepRequested
from agentry_runtime.loop import StepOutcome as Outcome
from agentry_runtime.settings import LoopSettings
from agentry_runtime.state import Status

GOAL = "Book a flight from New York to San Francisco for tomorrow"


def _final(world: World, agent_id: str) -> Any:
    return world.runtime.store.get_header(agent_id)


def test_demo_goal_completes_with_one_booking(world_factory: Any) -> None:
    # GIVEN the offline model and the demo tools
    world = world_factory()
    # WHEN an agent is started through the API and its events are delivered
    agent_id = world.start(GOAL)
    world.pump()
    # THEN it completed through plan and act steps with exactly one booking
    header = _final(world, agent_id)
    assert header.status == Status.COMPLETED
    assert world.runtime.service.view(agent_id)["answer"].startswith(OfflineModel.LABEL)
    (booking,) = world.bookings(agent_id)
    assert "San Francisco" in json.dumps(booking) or "SFO" in json.dumps(booking)
    roles = [m.role for m in world.runtime.store.messages(agent_id)]
    assert roles == ["user", "assistant", "user", "assistant", "user", "assistant"]
    assert header.tool_call_count == 2
    completed = world.observed_events(DetailType.AGENT_COMPLETED)
    assert [e["agentId"] for e in completed] == [agent_id]


def test_every_event_delivered_twice_gives_the_same_final_state(world_factory: Any) -> None:
    # GIVEN one agent run normally and one whose every event is delivered twice
    world = world_factory()
    normal = world.start(GOAL)
    world.pump()
    doubled = world.start(GOAL)
    world.pump(duplicate=True)
    # THEN both end the same way, each with one booking
    a, b = _final(world, normal), _final(world, doubled)
    assert (a.status, a.step, a.message_count, a.tool_call_count) == (
        b.status,
        b.step,
        b.message_count,
        b.tool_call_count,
    )
    assert len(world.bookings(doubled)) == 1
    assert world.runtime.store.item_count(doubled) == world.runtime.store.item_count(normal)


def test_two_workers_on_the_same_event_commit_once(world_factory: Any) -> None:
    # GIVEN an agent and two workers that handle each of its step events at the same moment
    world = world_factory()
    agent_id = world.start(GOAL)
    loop = world.runtime.loop
    outcomes: list[Outcome] = []
    for _ in range(20):
        header = world.runtime.store.get_header(agent_id)
        if header.next_step is None:
            break
        event = StepRequested(agentId=agent_id, step=header.step, kind=header.next_step)
        barrier = threading.Barrier(2)
        results: list[Any] = []

        def work(
            event: StepRequested = event,
            barrier: threading.Barrier = barrier,
            results: list[Any] = results,
        ) -> None:
            barrier.wait()
            try:
                results.append(loop.handle(event).outcome)
            except Exception as exc:  # a worker that finds the tool leased retries later
                results.append(type(exc).__name__)

        threads = [threading.Thread(target=work) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        outcomes.extend(results)
        if Outcome.COMMITTED not in results:
            # The loser of a tool lease asks for redelivery; deliver once more alone.
            outcomes.append(loop.handle(event).outcome)
    # THEN every step committed exactly once, nothing was lost, and one booking exists
    header = world.runtime.store.get_header(agent_id)
    assert header.status == Status.COMPLETED
    messages = world.runtime.store.messages(agent_id)
    assert [m.seq for m in messages] == list(range(header.message_count))
    assert outcomes.count(Outcome.COMMITTED) == header.step
    assert len(world.bookings(agent_id)) == 1


def test_a_committed_step_survives_failed_put_events_entries(world_factory: Any) -> None:
    # GIVEN a bus that answers 200 but fails entries (FailedEntryCount > 0) twice in a row
    responder = OfflineModel()
    world = world_factory(responder=responder)
    client = world.publisher.client
    original = client.put_events
    failures: list[int] = []

    def partly_failing(**kwargs: Any) -> dict[str, Any]:
        if len(failures) < 2:
            failures.append(len(kwargs["Entries"]))
            return {
                "FailedEntryCount": len(kwargs["Entries"]),
                "Entries": [{"ErrorCode": "InternalFailure"} for _ in kwargs["Entries"]],
            }
        return dict(original(**kwargs))

    world.publisher._client = type("Flaky", (), {"put_events": staticmethod(partly_failing)})()
    world.publisher._sleep = lambda _seconds: None
    agent_id = world.start(GOAL)
    # WHEN the commits are announced and delivered
    world.pump()
    # THEN the announcer retried the failed entries: nothing was lost, nothing ran twice
    header = _final(world, agent_id)
    assert failures == [1, 1]
    assert header.status == Status.COMPLETED
    assert responder.calls == 3  # one model call per plan step: lookup, booking, answer
    assert len(world.bookings(agent_id)) == 1


def test_throttled_model_calls_are_retried(world_factory: Any) -> None:
    # GIVEN a model that throttles its first two calls
    world = world_factory(responder=OfflineModel(faults=Faults(throttle=2)))
    agent_id = world.start(GOAL)
    world.pump()
    # THEN boto3's retry mode absorbed the throttling and the agent completed
    assert _final(world, agent_id).status == Status.COMPLETED
    assert len(world.server.requests) == 3 + 2


def test_three_consecutive_tool_failures_publish_tool_execution_failed(
    world_factory: Any,
) -> None:
    # GIVEN a booking tool that always fails
    world = world_factory(tools=flights_tools(failing={"book_flight"}))
    agent_id = world.start(GOAL)
    world.pump()
    # THEN after three failed rounds a ToolExecutionFailed error event is on the bus
    header = _final(world, agent_id)
    assert header.status == Status.TOOL_EXECUTION_FAILED
    assert header.consecutive_tool_failures == 3
    assert header.next_step is None
    errors = world.observed_events(DetailType.AGENT_ERROR)
    assert [(e["agentId"], e["errorType"]) for e in errors] == [
        (agent_id, ErrorType.TOOL_EXECUTION_FAILED)
    ]
    assert errors[0]["retryable"] is True
    assert world.bookings(agent_id) == []


def test_token_usage_is_recorded_per_step_and_in_total(world_factory: Any) -> None:
    # GIVEN a completed demo agent
    world = world_factory()
    agent_id = world.start(GOAL)
    world.pump()
    store = world.runtime.store
    # THEN each model turn carries the usage of its call, and the header their sum
    turns = [m for m in store.messages(agent_id) if m.role == "assistant"]
    assert all(m.usage is not None and m.usage.output_tokens > 0 for m in turns)
    total = sum(m.usage.input_tokens for m in turns if m.usage)
    assert store.get_header(agent_id).usage.input_tokens == total
    status, page = world.call("GET", f"/agents/{agent_id}/messages")
    assert status == 200
    shown = [m["usage"] for m in page["messages"] if m["role"] == "assistant"]
    assert len(shown) == len(turns)
    assert all(usage["output_tokens"] > 0 for usage in shown)


def test_the_step_limit_asks_a_human_and_a_resume_grants_new_steps(world_factory: Any) -> None:
    # GIVEN a step budget too small for the demo goal (it needs 5 steps)
    world = world_factory(settings=LoopSettings(max_steps=3))
    agent_id = world.start(GOAL)
    world.pump()
    store = world.runtime.store
    header = store.get_header(agent_id)
    # THEN the agent stops with a typed, non-retryable StepLimitExceeded error
    assert header.status == Status.PLANNING_FAILED
    assert header.last_error_type == ErrorType.STEP_LIMIT_EXCEEDED
    errors = world.observed_events(DetailType.AGENT_ERROR)
    assert [(e["errorType"], e["retryable"]) for e in errors] == [
        (ErrorType.STEP_LIMIT_EXCEEDED, False)
    ]
    # WHEN recovery parks it for a human, who resumes it
    store.commit(header.version, header.model_copy(update={"status": Status.NEEDS_HUMAN}))
    status, _ = world.call("POST", f"/agents/{agent_id}/resume", {"instruction": "Go on"})
    assert status == 202
    world.pump()
    # THEN it has a fresh budget and completes
    assert store.get_header(agent_id).status == Status.COMPLETED
    assert len(world.bookings(agent_id)) == 1
