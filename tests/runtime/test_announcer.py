"""The announcer: header transitions in, events out, each lifecycle event once per header version.

Records come from moto's stream of the real table (old and new images, as Lambda hands them);
events go to moto's EventBridge, or to a recording publisher where a test counts entries.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
from support.agents import flights_tools
from support.world import World

from agentry_runtime.announcer import Announcer, StreamRecord
from agentry_runtime.contract import DetailType, Status
from agentry_runtime.events import Event, Publisher
from agentry_runtime.settings import LoopSettings

GOAL = "Book a flight from New York to San Francisco for tomorrow"


class _Recording(Publisher):
    """Records what it is asked to publish; fails every entry while ``down``."""

    def __init__(self) -> None:
        super().__init__("recording", client=object(), sleep=lambda _s: None)
        self.published: list[Event] = []
        self.down = False

    def publish(self, events: Sequence[Event]) -> list[int]:
        if self.down:
            return list(range(len(events)))
        self.published.extend(events)
        return []

    def types(self) -> list[DetailType]:
        return [detail_type for detail_type, _ in self.published]


def _records(world: World, agent_id: str) -> list[StreamRecord]:
    """Every stream record of one agent's items, from the start of the stream."""
    shards = world.streams.describe_stream(StreamArn=world.stream_arn)["StreamDescription"]
    records: list[StreamRecord] = []
    for shard in shards["Shards"]:
        iterator = world.streams.get_shard_iterator(
            StreamArn=world.stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        for raw in world.streams.get_records(ShardIterator=iterator, Limit=1000)["Records"]:
            record = StreamRecord.from_lambda(raw)
            if record.keys["pk"]["S"] == f"AGENT#{agent_id}":
                records.append(record)
    return records


def _completed_without_announcing(world: World) -> str:
    """An agent created through the service and completed by a direct commit (no events yet)."""
    header = world.runtime.service.create(GOAL)
    world.store.commit(
        header.version, header.model_copy(update={"status": Status.COMPLETED, "next_step": None})
    )
    return header.agent_id


@pytest.mark.parametrize(
    ("failing", "lifecycle"),
    [((), DetailType.AGENT_COMPLETED), (("book_flight",), DetailType.AGENT_ERROR)],
)
def test_a_stream_replayed_from_its_start_sends_no_second_lifecycle_event(
    world_factory: Callable[..., World], failing: tuple[str, ...], lifecycle: DetailType
) -> None:
    # GIVEN an agent run to its end (completed, or failed for recovery), every record announced
    world = world_factory(
        tools=flights_tools(failing=set(failing)), settings=LoopSettings(max_tool_failures=1)
    )
    agent_id = world.start(GOAL)
    world.pump()
    header = world.store.get_header(agent_id)
    assert [e["agentId"] for e in world.observed_events(lifecycle)] == [agent_id]
    # WHEN the whole stream is handed to the announcer again and what it sends is delivered
    world.replay_stream()
    assert world.announce() > 0
    world.pump()
    # THEN no second lifecycle event went out (no second recovery, no second mail), and the
    # step events it sent again were stale: the agent is exactly as it was
    assert [e["agentId"] for e in world.observed_events(lifecycle)] == [agent_id]
    assert world.store.get_header(agent_id) == header
    assert len(world.bookings(agent_id)) == (0 if failing else 1)


def test_a_record_delivered_twice_in_one_batch_announces_its_lifecycle_event_once(
    world_factory: Callable[..., World],
) -> None:
    # GIVEN the records of an agent created then completed, not yet announced
    world = world_factory()
    agent_id = _completed_without_announcing(world)
    records = _records(world, agent_id)
    publisher = _Recording()
    announcer = Announcer(store=world.store, publisher=publisher)
    # WHEN the batch holds every record twice
    assert announcer.announce(records + records) is None
    # THEN step events went out as often as their record came (their consumers are idempotent)
    # and the completion once
    assert publisher.types().count(DetailType.STEP_REQUESTED) == 2
    assert publisher.types().count(DetailType.AGENT_COMPLETED) == 1
    # AND a later delivery of the same records sends it no more
    assert announcer.announce(records) is None
    assert publisher.types().count(DetailType.AGENT_COMPLETED) == 1


def test_a_lasting_outage_retries_from_the_first_unpublished_record_without_waiting_a_lease(
    world_factory: Callable[..., World],
) -> None:
    # GIVEN the records of an agent created then completed, and a bus that refuses every entry
    world = world_factory()
    agent_id = _completed_without_announcing(world)
    records = _records(world, agent_id)
    publisher = _Recording()
    publisher.down = True
    announcer = Announcer(store=world.store, publisher=publisher)
    # WHEN the batch is announced THEN the retry starts from the first record with an event
    assert announcer.announce(records) == records[0].sequence_number
    # AND once the bus is back, the retried batch goes out at once: the failed publish gave its
    # lifecycle claim back instead of holding it for the claim's lease
    publisher.down = False
    assert announcer.announce(records) is None
    assert publisher.types() == [DetailType.STEP_REQUESTED, DetailType.AGENT_COMPLETED]


def test_a_committed_step_survives_a_put_events_outage_longer_than_the_redrive_budget(
    world_factory: Callable[..., World],
) -> None:
    # GIVEN a step queue that dead-letters after 3 receives, and a bus that answers 200 but
    # fails every entry of many more PutEvents calls than that (the announcer retries 4 times)
    world = world_factory(max_receive_count=3)
    client = world.publisher.client
    original = client.put_events
    calls: list[int] = []

    def failing_for_a_while(**kwargs: Any) -> dict[str, Any]:
        calls.append(len(kwargs["Entries"]))
        if len(calls) <= 4 * 3 * 2:
            return {
                "FailedEntryCount": len(kwargs["Entries"]),
                "Entries": [{"ErrorCode": "InternalFailure"} for _ in kwargs["Entries"]],
            }
        return dict(original(**kwargs))

    world.publisher._client = type("Flaky", (), {"put_events": staticmethod(failing_for_a_while)})()
    world.publisher._sleep = lambda _seconds: None
    agent_id = world.start(GOAL)
    # WHEN the stream mapping keeps retrying until the bus is back
    world.pump(strict=False)
    # THEN the committed step was announced once the bus took it, and the agent completed with
    # one booking; nothing reached the dead-letter queue
    assert len(calls) > 4 * 3 * 2
    assert world.store.get_header(agent_id).status == Status.COMPLETED
    assert len(world.bookings(agent_id)) == 1
    dead = world.sqs.receive_message(QueueUrl=world.dlq_url, MaxNumberOfMessages=10)
    assert not dead.get("Messages")


def test_a_write_that_changes_neither_step_nor_status_announces_nothing(
    world_factory: Callable[..., World],
) -> None:
    # GIVEN a waiting agent whose creation was announced
    world = world_factory()
    header = world.runtime.service.create(GOAL)
    publisher = _Recording()
    announcer = Announcer(store=world.store, publisher=publisher)
    announcer.announce(_records(world, header.agent_id))
    before = len(publisher.published)
    # WHEN a counter-only write lands (as recovery's bookkeeping does)
    world.store.commit(header.version, header.model_copy(update={"recovery_attempts": 1}))
    # THEN its record announces nothing
    assert announcer.announce(_records(world, header.agent_id)[-1:]) is None
    assert len(publisher.published) == before
