"""The reconciler: what the stream or a queue gave up on is not stranded.

The stream mapping gives up on records past their age (``World.give_up_on_stream``) and the step
queue dead-letters after its receive count; the reconciler's sweep and drain move those agents.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from support.agents import flights_tools
from support.world import World

from agentry_runtime.contract import DetailType, ErrorType, Metric, Status, StepKind
from agentry_runtime.observability import metrics
from agentry_runtime.reconciler import Reconciler
from agentry_runtime.settings import LoopSettings, ReconcilerSettings

GOAL = "Book a flight from New York to San Francisco for tomorrow"


def _bus_down(world: World) -> Callable[[bool], None]:
    """Make the bus refuse every entry until the returned switch is turned off."""
    client = world.publisher.client
    original = client.put_events
    state = {"down": True}

    def put_events(**kwargs: Any) -> dict[str, Any]:
        if state["down"]:
            entries = kwargs["Entries"]
            return {
                "FailedEntryCount": len(entries),
                "Entries": [{"ErrorCode": "InternalFailure"} for _ in entries],
            }
        return dict(original(**kwargs))

    world.publisher._client = type("Switchable", (), {"put_events": staticmethod(put_events)})()
    world.publisher._sleep = lambda _seconds: None

    def switch(down: bool) -> None:
        state["down"] = down

    return switch


def test_a_resume_whose_announcement_the_stream_gave_up_on_is_announced_again(
    world_factory: Callable[..., World],
) -> None:
    # GIVEN an agent that stopped at its step limit and waits for a human
    world = world_factory(settings=LoopSettings(max_steps=3))
    agent_id = world.start(GOAL)
    world.pump()
    header = world.store.get_header(agent_id)
    world.store.commit(header.version, header.model_copy(update={"status": Status.NEEDS_HUMAN}))
    world.announce()
    # WHEN the human resumes it while the bus is down, and the stream gives up on the record
    switch = _bus_down(world)
    status, _ = world.call("POST", f"/agents/{agent_id}/resume", {"instruction": "Go on"})
    assert status == 202
    world.announce(strict=False)
    assert world.pending
    world.give_up_on_stream()
    switch(False)
    world.pump()
    # THEN the agent waits, resumable: its step is due and nothing moves it
    waiting = world.store.get_header(agent_id)
    assert (waiting.status, waiting.next_step) == (Status.RESUMED, StepKind.PLAN)
    # AND the reconciler's sweep announces it again, and it completes
    report = world.runtime.reconciler.run()
    assert report.reannounced == [agent_id]
    world.pump()
    assert world.store.get_header(agent_id).status == Status.COMPLETED
    assert len(world.bookings(agent_id)) == 1


def test_a_failure_recovery_never_took_up_is_announced_again(
    world_factory: Callable[..., World],
) -> None:
    # GIVEN an agent whose booking fails, its Agent Error announced but never taken up
    world = world_factory(
        tools=flights_tools(failing={"book_flight"}), settings=LoopSettings(max_tool_failures=1)
    )
    agent_id = world.start(GOAL)
    world.pump()
    assert len(world.observed_events(DetailType.AGENT_ERROR)) == 1
    header = world.store.get_header(agent_id)
    # WHEN the reconciler sweeps (the failure is still there: recovery never moved it)
    report = world.runtime.reconciler.run()
    # THEN it pokes the agent (a nonce write: same version and step), and a second Agent Error
    # reaches recovery
    assert report.reannounced == [agent_id]
    poked = world.store.get_header(agent_id)
    assert (poked.version, poked.step, poked.nonce) == (
        header.version,
        header.step,
        header.nonce + 1,
    )
    errors = world.observed_events(DetailType.AGENT_ERROR)
    assert [(e["agentId"], e["errorType"]) for e in errors] == [
        (agent_id, ErrorType.TOOL_EXECUTION_FAILED)
    ] * 2


def test_a_dead_lettered_step_is_redriven_then_completes(
    world_factory: Callable[..., World], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a step queue that dead-letters at the second receive, and a worker that crashes
    world = world_factory(max_receive_count=2)
    loop = world.runtime.loop
    handle = loop.handle
    crashes = {"left": 2}

    def crashing(*args: Any, **kwargs: Any) -> Any:
        if crashes["left"]:
            crashes["left"] -= 1
            raise RuntimeError("the worker's process died")
        return handle(*args, **kwargs)

    monkeypatch.setattr(loop, "handle", crashing)
    agent_id = world.start(GOAL)
    world.pump()
    # WHEN the step went to the dead-letter queue, and the reconciler drains it
    assert world.store.get_header(agent_id).status == Status.INITIATED
    report = world.runtime.reconciler.run()
    # THEN it re-drove the agent's step (a nonce write, announced), and the agent completed
    assert report.redriven == [agent_id]
    world.pump()
    header = world.store.get_header(agent_id)
    assert header.status == Status.COMPLETED
    assert header.redrives == 1
    assert len(world.bookings(agent_id)) == 1


def test_a_step_dead_lettered_more_than_its_redrives_goes_to_a_human(
    world_factory: Callable[..., World], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a worker that always crashes on this agent, one re-drive allowed
    world = world_factory(max_receive_count=1, max_redrives=1)

    def crashing(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the worker's process died")

    monkeypatch.setattr(world.runtime.loop, "handle", crashing)
    agent_id = world.start(GOAL)
    # WHEN the reconciler drains the dead letters twice (one re-drive, then the end)
    world.pump()
    assert world.runtime.reconciler.run().redriven == [agent_id]
    world.pump()
    report = world.runtime.reconciler.run()
    # THEN the agent failed with a typed StepDeadLettered, announced for recovery
    assert report.dead_lettered == [agent_id]
    header = world.store.get_header(agent_id)
    assert (header.status, header.last_error_type) == (
        Status.PLANNING_FAILED,
        ErrorType.STEP_DEAD_LETTERED,
    )
    errors = world.observed_events(DetailType.AGENT_ERROR)
    assert [(e["agentId"], e["errorType"]) for e in errors] == [
        (agent_id, ErrorType.STEP_DEAD_LETTERED)
    ]


def test_a_stale_dead_letter_is_dropped_and_changes_nothing(
    world_factory: Callable[..., World],
) -> None:
    # GIVEN a completed agent, and an old step event of it in the dead-letter queue
    world = world_factory(max_receive_count=1)
    agent_id = world.start(GOAL)
    world.pump()
    header = world.store.get_header(agent_id)
    event = {
        "detail-type": DetailType.STEP_REQUESTED.value,
        "detail": {"agentId": agent_id, "step": 1, "kind": "act", "schemaVersion": 2},
    }
    world.sqs.send_message(QueueUrl=world.dlq_url, MessageBody=json.dumps(event))
    world.sqs.send_message(QueueUrl=world.dlq_url, MessageBody="not an event")
    # WHEN the reconciler drains it
    report = world.runtime.reconciler.run()
    # THEN both letters are dropped, the agent untouched
    assert report.dropped_letters == 2
    assert world.store.get_header(agent_id) == header


def test_a_chain_whose_worker_died_is_released_and_announced(
    world_factory: Callable[..., World],
) -> None:
    # GIVEN an agent held by a chaining worker whose deadline passed, no step event in flight
    world = world_factory()
    header = world.runtime.service.create(GOAL)
    world.store.commit(header.version, header.model_copy(update={"runner_until": 1.0}))
    world.give_up_on_stream()
    world.pump()
    assert world.store.get_header(header.agent_id).status == Status.INITIATED
    # WHEN the reconciler sweeps
    report = world.runtime.reconciler.run()
    # THEN it released the agent, and the announced step completes it
    assert report.released == [header.agent_id]
    world.pump()
    assert world.store.get_header(header.agent_id).status == Status.COMPLETED


def test_agents_that_made_progress_recently_are_left_alone(
    world_factory: Callable[..., World],
) -> None:
    # GIVEN a waiting agent, just created, and a reconciler that waits an hour for progress
    world = world_factory()
    agent_id = world.start(GOAL)
    settings = world.runtime.reconciler_settings
    assert settings is not None
    patient = Reconciler(
        store=world.store,
        settings=ReconcilerSettings.model_validate(
            {**settings.model_dump(), "stale_after_seconds": 3600}
        ),
        sqs=world.sqs,
    )
    header = world.store.get_header(agent_id)
    # WHEN it sweeps THEN it pokes nobody
    assert patient.run().reannounced == []
    assert world.store.get_header(agent_id) == header


def test_agents_waiting_for_an_approval_are_counted_for_the_dashboard(
    world_factory: Callable[..., World],
) -> None:
    # GIVEN an agent waiting for a human's approval, its window still open
    world = world_factory()
    header = world.runtime.service.create(GOAL)
    waiting = header.model_copy(
        update={"status": Status.AWAITING_APPROVAL, "approval_deadline": 4_102_444_800.0}
    )
    world.store.commit(header.version, waiting)
    world.give_up_on_stream()
    metrics.clear_metrics()
    # WHEN the reconciler sweeps THEN it counts it, and emits the gauge the dashboard shows
    report = world.runtime.reconciler.run()
    assert report.approvals_waiting == 1
    assert report.approvals_expired == []
    assert metrics.metric_set[Metric.APPROVALS_WAITING]["Value"] == [1.0]
    metrics.clear_metrics()
