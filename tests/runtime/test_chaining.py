"""Chained steps: a worker runs an agent's next steps in the same invocation while the worst
case of each fits, writing the header when the chain starts, at least every 10 s, and at its end.

The model client here gives up after one 5 s attempt, so its worst case (10 s) fits many times
in a 15-minute invocation; the default client's does not, and then only acts chain.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from support.world import MODEL_ID, World

from agentry_runtime.contract import StepKind
from agentry_runtime.model import ModelClient, ModelSettings
from agentry_runtime.state import Outcome, Status

GOAL = "Book a flight from New York to San Francisco for tomorrow"
#: Lambda's longest invocation.
FIFTEEN_MINUTES_MS = 900_000


def _quick_model(world: World) -> None:
    settings = ModelSettings(model_id=MODEL_ID, max_attempts=1, read_timeout_seconds=5)
    world.agent.model = ModelClient(settings, client=world.bedrock)


def _header_writes(world: World, agent_id: str) -> int:
    """How many times the agent's header was written (stream records of its META item)."""
    shards = world.streams.describe_stream(StreamArn=world.stream_arn)["StreamDescription"]
    count = 0
    for shard in shards["Shards"]:
        iterator = world.streams.get_shard_iterator(
            StreamArn=world.stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        for record in world.streams.get_records(ShardIterator=iterator, Limit=1000)["Records"]:
            keys = record["dynamodb"]["Keys"]
            count += keys["pk"]["S"] == f"AGENT#{agent_id}" and keys["sk"]["S"] == "META"
    return count


def test_a_whole_agent_runs_in_one_invocation_writing_the_header_at_its_ends(
    world_factory: Callable[..., World],
) -> None:
    # GIVEN a worker with fifteen minutes and a model whose worst case fits
    world = world_factory(worker_timeout_ms=FIFTEEN_MINUTES_MS)
    _quick_model(world)
    agent_id = world.start(GOAL)
    # WHEN its first step event is delivered
    batches = world.pump()
    # THEN one invocation ran all five steps (plan, act, plan, act, answer) with one booking,
    # and the header was written at creation, when the chain started, and at its end: the
    # steps in between (seconds apart here) were folded into the last commit
    header = world.store.get_header(agent_id)
    assert header.status == Status.COMPLETED
    assert header.step == 5
    assert batches == 1
    assert len(world.bookings(agent_id)) == 1
    assert _header_writes(world, agent_id) == 1 + 2
    assert header.runner_until is None


def test_without_room_for_the_models_worst_case_only_acts_chain(
    world_factory: Callable[..., World],
) -> None:
    # GIVEN the default model client (four attempts of 120 s) and a two-minute worker
    world = world_factory(worker_timeout_ms=120_000)
    agent_id = world.start(GOAL)
    # WHEN it runs THEN each plan waited for its own event: three invocations, one per plan
    assert world.pump() == 3
    assert world.store.get_header(agent_id).status == Status.COMPLETED


def test_a_long_chain_still_writes_the_header_every_few_seconds(
    world_factory: Callable[..., World], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a chaining worker whose every step seems to take a minute
    world = world_factory(worker_timeout_ms=FIFTEEN_MINUTES_MS)
    _quick_model(world)
    loop = world.runtime.loop
    now = {"t": 1_000_000.0}

    def slow_clock() -> float:
        now["t"] += 60 / 4  # the loop reads the clock about four times a step
        return now["t"]

    monkeypatch.setattr(loop, "_clock", slow_clock)
    agent_id = world.start(GOAL)
    # WHEN it runs THEN every plan wrote the header (readers see the chain progress)
    world.pump()
    assert world.store.get_header(agent_id).status == Status.COMPLETED
    assert _header_writes(world, agent_id) == 1 + 3


@pytest.mark.parametrize("crash_at_plan", [2, 3])
def test_a_chain_that_dies_after_a_folded_act_is_taken_over_without_running_a_tool_again(
    world_factory: Callable[..., World], monkeypatch: pytest.MonkeyPatch, crash_at_plan: int
) -> None:
    # GIVEN a chaining worker whose process dies when it starts the nth plan, after the act
    # before it ran its tool and recorded the outcome, but wrote no header
    world = world_factory(worker_timeout_ms=FIFTEEN_MINUTES_MS)
    _quick_model(world)
    loop = world.runtime.loop
    plan = loop._plan
    plans = {"n": 0}

    def dying_plan(*args: Any, **kwargs: Any) -> Any:
        plans["n"] += 1
        if plans["n"] == crash_at_plan:
            raise SystemExit("the worker's process died")
        return plan(*args, **kwargs)

    monkeypatch.setattr(loop, "_plan", dying_plan)
    in_flight: list[dict[str, Any]] = []
    agent_id = world.start(GOAL)
    with pytest.raises(SystemExit):
        world.pump(before_batch=in_flight.extend)
    held = world.store.get_header(agent_id)
    assert held.next_step == StepKind.ACT  # the act ran, its header was never written
    assert held.runner_until is not None
    tool_runs = len(world.bookings(agent_id))
    # WHEN the chain's deadline passes and its watchdog (the first event) comes back
    world.store.commit(held.version, held.model_copy(update={"runner_until": 1.0}))
    world.give_up_on_stream()
    world.sqs.change_message_visibility(
        QueueUrl=world.steps_url, ReceiptHandle=in_flight[-1]["ReceiptHandle"], VisibilityTimeout=0
    )
    world.pump()
    # THEN the agent completed, the act's tool did not run again, and no outcome is unknown
    header = world.store.get_header(agent_id)
    assert header.status == Status.COMPLETED
    assert len(world.bookings(agent_id)) == max(tool_runs, 1)
    outcomes = [m.outcome for m in world.store.messages(agent_id) if m.outcome is not None]
    assert Outcome.UNKNOWN not in outcomes
    assert outcomes.count(Outcome.SUCCEEDED) == 2
