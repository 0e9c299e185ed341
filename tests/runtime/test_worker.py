"""The worker handler: poison records are isolated as partial batch failures."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from support.world import World

from agentry_offline.events import LambdaContext, sqs_event
from agentry_runtime.contract import DetailType
from agentry_runtime.handlers import worker


@pytest.fixture
def world(agent_table: str) -> Iterator[World]:
    world = World(agent_table)
    yield world
    world.close()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not json", "body: not JSON"),
        ("[1]", "body: not a JSON object"),
        (json.dumps({"detail-type": "Something Else", "detail": {}}), "detail-type"),
        (
            json.dumps({"detail-type": DetailType.STEP_REQUESTED, "detail": {"agentId": "a"}}),
            "detail:",
        ),
    ],
)
def test_parse_step_event_names_what_is_wrong(body: str, reason: str) -> None:
    with pytest.raises(worker.PoisonMessageError, match=reason):
        worker.parse_step_event(body)


def test_a_poison_record_fails_alone_and_the_good_one_runs(world: World) -> None:
    # GIVEN a batch with a poison record next to a real step event
    agent_id = world.start("Book a flight from New York to San Francisco for tomorrow")
    world.announce()
    good = world.sqs.receive_message(QueueUrl=world.steps_url, MaxNumberOfMessages=1)["Messages"]
    poison = {"MessageId": "poison-1", "ReceiptHandle": "r", "Body": "{not json"}
    event = sqs_event([poison, *good], queue_arn=world.steps_arn)
    # WHEN the worker handles the batch
    result = worker.handler(event, LambdaContext(function_name="agentry-worker"))
    # THEN only the poison record is reported failed, and the agent made progress
    assert result["batchItemFailures"] == [{"itemIdentifier": "poison-1"}]
    assert world.runtime.store.get_header(agent_id).step >= 1
