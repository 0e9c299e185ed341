"""Rolling deploys: this runtime reads what the next release writes, on one table and one bus.

During a deploy, functions of two runtime versions share the table, its stream and the bus. The
next release is played here by a writer that, before every batch this runtime's worker takes,
rewrites every item of the agent the way a newer schema would (a higher ``schemaVersion`` and
fields this release does not know) and adds unknown fields to the step events. The current
api, announcer and worker must carry the agent to its end through all of it.

What a newer release must do in return (its side of the contract, see ``contract``): give every
new header field a default, because an older worker's commit writes the header it knows.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from support.world import World

from agentry_runtime.contract import (
    MIN_READABLE_SCHEMA_VERSION,
    PARTITION_KEY,
    SCHEMA_VERSION,
    SORT_KEY,
    DetailType,
    Status,
    StepRequested,
    agent_pk,
)

GOAL = "Book a flight from New York to San Francisco for tomorrow"
NEWER = SCHEMA_VERSION + 1


def _newer_writer(world: World, agent_id: str) -> Callable[[list[dict[str, Any]]], None]:
    """Before each batch: every item of the agent rewritten as the next release would."""

    def rewrite(messages: list[dict[str, Any]]) -> None:
        items = world.dynamodb.query(
            TableName=world.table_name,
            KeyConditionExpression="#pk = :pk",
            ExpressionAttributeNames={"#pk": PARTITION_KEY},
            ExpressionAttributeValues={":pk": {"S": agent_pk(agent_id)}},
            ConsistentRead=True,
        )["Items"]
        for item in items:
            names = {"#future": "fieldOfTheNextRelease"}
            values: dict[str, Any] = {":future": {"M": {"nested": {"L": [{"N": "1"}]}}}}
            update = "SET #future = :future"
            if "schemaVersion" in item:
                names["#schema"] = "schemaVersion"
                values[":schema"] = {"N": str(NEWER)}
                update += ", #schema = :schema"
            world.dynamodb.update_item(
                TableName=world.table_name,
                Key={PARTITION_KEY: item[PARTITION_KEY], SORT_KEY: item[SORT_KEY]},
                UpdateExpression=update,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        for message in messages:
            event = json.loads(message["Body"])
            event["detail"] |= {"schemaVersion": NEWER, "priority": "high", "trace": {"a": 1}}
            message["Body"] = json.dumps(event)

    return rewrite


def test_an_agent_runs_to_its_end_while_a_newer_release_writes_beside_this_one(
    world_factory: Callable[..., World],
) -> None:
    # GIVEN an agent started by this release
    world = world_factory()
    agent_id = world.start(GOAL)
    # WHEN a newer release rewrites its items and events before every step this one takes
    world.pump(before_batch=_newer_writer(world, agent_id))
    # THEN this release carried it to its end: one booking, the answer readable by the api
    header = world.store.get_header(agent_id)
    assert header.status == Status.COMPLETED
    assert len(world.bookings(agent_id)) == 1
    status, view = world.call("GET", f"/agents/{agent_id}")
    assert status == 200
    assert view["status"] == "COMPLETED"
    assert view["answer"]
    status, page = world.call("GET", f"/agents/{agent_id}/messages")
    assert status == 200
    assert len(page["messages"]) == header.message_count
    # AND the completion was announced once, from headers the newer release had touched
    assert [e["agentId"] for e in world.observed_events(DetailType.AGENT_COMPLETED)] == [agent_id]


def test_events_of_a_newer_release_are_read_and_of_an_older_one_too() -> None:
    # GIVEN step events of the next release (unknown fields) and of the previous one
    newer = {"agentId": "a", "step": 3, "kind": "plan", "schemaVersion": NEWER, "extra": [1]}
    older = {"agentId": "a", "step": 3, "kind": "act", "schemaVersion": MIN_READABLE_SCHEMA_VERSION}
    # WHEN this release parses them THEN both are read, unknown fields ignored
    assert StepRequested.model_validate(newer).step == 3
    assert StepRequested.model_validate(older).kind == "act"
