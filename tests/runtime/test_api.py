"""The api function: every route's success and each class of bad input.

Each error answer names the field and the reason, and a bad request changes nothing stored.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from support.agents import flights_tools
from support.world import REGION, World

from agentry_offline.events import LambdaContext, http_api_event
from agentry_platform.components.http_api import ROUTES
from agentry_runtime.contract import StepKind
from agentry_runtime.handlers import api
from agentry_runtime.identity import caller_of
from agentry_runtime.service import MAX_VIEW_BYTES
from agentry_runtime.state import (
    Message,
    Origin,
    Outcome,
    Status,
    ToolResult,
    ToolResultBlock,
    ToolUse,
    ToolUseBlock,
)

GOAL = "Book a flight from New York to San Francisco for tomorrow"


@pytest.fixture
def world(agent_table: str) -> Iterator[World]:
    # The booking tool always fails, so agents can be brought to NEEDS_HUMAN.
    world = World(agent_table, tools=flights_tools(failing={"book_flight"}))
    yield world
    world.close()


def _snapshot(table: str) -> list[dict[str, Any]]:
    client = boto3.client("dynamodb", region_name=REGION)
    items = client.scan(TableName=table, ConsistentRead=True)["Items"]
    return sorted(items, key=lambda i: (i["pk"]["S"], i["sk"]["S"]))


def _completed(world: World) -> str:
    world.agent.tools = flights_tools()
    agent_id = world.start(GOAL)
    world.pump()
    assert world.runtime.store.get_header(agent_id).status == Status.COMPLETED
    return agent_id


def _needs_human(world: World) -> str:
    agent_id = world.start(GOAL)
    world.pump()
    store = world.runtime.store
    header = store.get_header(agent_id)
    assert header.status == Status.TOOL_EXECUTION_FAILED
    # What the recovery state machine does when attempts run out.
    store.commit(header.version, header.model_copy(update={"status": Status.NEEDS_HUMAN}))
    return agent_id


def _assert_error(status: int, body: Any, expected: int, field: str, reason: str) -> None:
    assert status == expected, body
    fields = {f["field"]: f["reason"] for f in body["error"]["fields"]}
    assert field in fields, body
    assert reason in fields[field], body
    assert field in body["error"]["message"]


# --- POST /agents ---------------------------------------------------------------------------


def test_create_returns_202_and_stores_the_agent(world: World) -> None:
    status, body = world.call("POST", "/agents", {"goal": GOAL})
    assert status == 202
    header = world.runtime.store.get_header(body["agentId"])
    assert header.status == Status.INITIATED
    assert header.next_step == StepKind.PLAN
    # AND the api only committed: the announcer turns the commit into the first step event
    assert world.sqs.receive_message(QueueUrl=world.steps_url).get("Messages") is None
    world.announce()
    [message] = world.sqs.receive_message(QueueUrl=world.steps_url)["Messages"]
    event = json.loads(message["Body"])
    assert event["detail"] == {
        "schemaVersion": 2,
        "agentId": body["agentId"],
        "step": 0,
        "kind": "plan",
    }


def test_create_honours_idempotency_key(world: World) -> None:
    headers = {"Idempotency-Key": "client-42"}
    first = world.call("POST", "/agents", {"goal": GOAL}, headers=headers)
    again = world.call("POST", "/agents", {"goal": GOAL}, headers=headers)
    assert first == again
    assert first[0] == 202
    before = _snapshot(world.table_name)
    status, body = world.call("POST", "/agents", {"goal": "Something else"}, headers=headers)
    _assert_error(status, body, 409, "Idempotency-Key", "different body")
    assert _snapshot(world.table_name) == before


CREATE_BAD = [
    ('{"goal": ', 400, "body", "malformed JSON"),
    ("[1, 2]", 400, "body", "JSON object"),
    ("", 400, "body", "required"),
    ("{}", 400, "goal", "missing"),
    ('{"goal": "x", "colour": "red"}', 400, "colour", "unknown field"),
    ('{"goal": 5}', 400, "goal", "string"),
    ('{"goal": ""}', 400, "goal", "at least 1"),
    ('{"goal": "   "}', 400, "goal", "blank"),
    ('{"goal": "x", "agent": 7}', 400, "agent", "string"),
    ('{"goal": 1' + "0" * 5000 + "}", 400, "body", "digits"),
    ("[" * 5000 + "]" * 5000, 400, "body", "nested"),
    ('{"a": ' * 20 + "1" + "}" * 20, 400, "body", "nested"),
    ('{"goal": "\\ud800"}', 400, "goal", "valid string"),
    ('{"goal": "' + "x" * 5000 + '"}', 413, "goal", "at most 4000"),
    ('{"goal": "x", "prompt": "' + "y" * 70_000 + '"}', 413, "body", "larger than"),
]


@pytest.mark.parametrize(("raw", "expected", "field", "reason"), CREATE_BAD)
def test_create_rejects_bad_input_and_stores_nothing(
    world: World, raw: str, expected: int, field: str, reason: str
) -> None:
    before = _snapshot(world.table_name)
    status, body = world.call("POST", "/agents", raw)
    _assert_error(status, body, expected, field, reason)
    assert _snapshot(world.table_name) == before


def test_create_rejects_a_malformed_idempotency_key(world: World) -> None:
    before = _snapshot(world.table_name)
    status, body = world.call(
        "POST", "/agents", {"goal": GOAL}, headers={"Idempotency-Key": "bad key!"}
    )
    _assert_error(status, body, 400, "Idempotency-Key", "characters")
    assert _snapshot(world.table_name) == before


# --- GET /agents/{id} -----------------------------------------------------------------------


def test_get_returns_the_article_shape(world: World) -> None:
    agent_id = _completed(world)
    status, body = world.call("GET", f"/agents/{agent_id}")
    assert status == 200
    assert body["agentId"] == agent_id
    assert body["status"] == "COMPLETED"
    assert body["goal"] == GOAL
    history = body["context"]["conversationHistory"]
    assert history[0] == {"role": "user", "origin": "caller", "content": GOAL}
    assert [p["toolName"] for p in body["plan"]] == ["get_flight_info", "book_flight"]
    assert {p["status"] for p in body["plan"]} == {"COMPLETED"}
    assert {t["name"] for t in body["tools"]} == {"get_flight_info", "book_flight"}
    metadata = body["metadata"]
    assert set(metadata) >= {"createdAt", "lastUpdated", "invocationCount", "errorCount"}
    assert metadata["invocationCount"] == 5
    assert metadata["errorCount"] == 0


@pytest.mark.parametrize(
    ("agent_id", "expected", "reason"),
    [("agent-" + "0" * 32, 404, "no such agent"), ("not-an-id", 400, "not an agent id")],
)
def test_get_rejects_unknown_or_malformed_ids(
    world: World, agent_id: str, expected: int, reason: str
) -> None:
    status, body = world.call("GET", f"/agents/{agent_id}")
    _assert_error(status, body, expected, "id", reason)


# --- GET /agents/{id}/messages ----------------------------------------------------------------


def test_messages_paginate(world: World) -> None:
    agent_id = _completed(world)
    seen: list[int] = []
    cursor: str | None = None
    while True:
        query = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        status, body = world.call("GET", f"/agents/{agent_id}/messages", query=query)
        assert status == 200
        assert len(body["messages"]) <= 2
        seen += [m["seq"] for m in body["messages"]]
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert seen == list(range(6))


@pytest.mark.parametrize(
    ("query", "field", "reason"),
    [
        ({"limit": "0"}, "limit", "1 to 100"),
        ({"limit": "abc"}, "limit", "1 to 100"),
        ({"limit": "101"}, "limit", "1 to 100"),
        ({"limit": "9" * 5000}, "limit", "1 to 100"),
        ({"cursor": "OTk5" + "OTk5" * 2000}, "cursor", "cursor"),
        ({"cursor": "%%%not-a-cursor"}, "cursor", "cursor"),
        ({"sort": "desc"}, "sort", "unknown query parameter"),
    ],
)
def test_messages_reject_bad_queries(
    world: World, query: dict[str, str], field: str, reason: str
) -> None:
    agent_id = world.start(GOAL)
    status, body = world.call("GET", f"/agents/{agent_id}/messages", query=query)
    _assert_error(status, body, 400, field, reason)


def test_messages_of_unknown_agent_is_404(world: World) -> None:
    status, body = world.call("GET", f"/agents/agent-{'1' * 32}/messages")
    _assert_error(status, body, 404, "id", "no such agent")


# --- POST /agents/{id}/resume -----------------------------------------------------------------


def test_resume_gives_the_instruction_and_plans_again(world: World) -> None:
    agent_id = _needs_human(world)
    status, body = world.call(
        "POST", f"/agents/{agent_id}/resume", {"instruction": "Try the booking again"}
    )
    assert status == 202
    assert body["status"] == "RESUMED"
    header = world.runtime.store.get_header(agent_id)
    assert header.next_step == StepKind.PLAN
    assert header.recovery_attempts == 0
    last = world.runtime.store.messages(agent_id)[-1]
    assert "Try the booking again" in last.text()


RESUME_BAD = [
    ('{"instruction": ', 400, "body", "malformed JSON"),
    ("{}", 400, "instruction", "missing"),
    ('{"instruction": "go", "force": true}', 400, "force", "unknown field"),
    ('{"instruction": ["go"]}', 400, "instruction", "string"),
    ('{"instruction": "' + "x" * 4001 + '"}', 413, "instruction", "at most 4000"),
]


@pytest.mark.parametrize(("raw", "expected", "field", "reason"), RESUME_BAD)
def test_resume_rejects_bad_input_and_changes_nothing(
    world: World, raw: str, expected: int, field: str, reason: str
) -> None:
    agent_id = _needs_human(world)
    before = _snapshot(world.table_name)
    status, body = world.call("POST", f"/agents/{agent_id}/resume", raw)
    _assert_error(status, body, expected, field, reason)
    assert _snapshot(world.table_name) == before


def test_resume_of_a_completed_agent_is_an_illegal_transition(world: World) -> None:
    agent_id = _completed(world)
    before = _snapshot(world.table_name)
    status, body = world.call("POST", f"/agents/{agent_id}/resume", {"instruction": "again"})
    _assert_error(status, body, 409, "status", "COMPLETED")
    assert _snapshot(world.table_name) == before


def test_resume_of_unknown_agent_is_404(world: World) -> None:
    status, body = world.call("POST", f"/agents/agent-{'2' * 32}/resume", {"instruction": "go"})
    _assert_error(status, body, 404, "id", "no such agent")


# --- POST /agents/{id}/cancel -----------------------------------------------------------------


def test_cancel_stops_a_running_agent(world: World) -> None:
    agent_id = world.start(GOAL)
    status, body = world.call("POST", f"/agents/{agent_id}/cancel")
    assert status == 200
    assert body["status"] == "CANCELLED"
    world.pump()  # the in-flight step event is now stale
    header = world.runtime.store.get_header(agent_id)
    assert header.status == Status.CANCELLED
    assert header.message_count == 1


@pytest.mark.parametrize(
    ("raw", "field", "reason"),
    [
        ('{"reason": ', "body", "malformed JSON"),
        ('{"why": "x"}', "why", "unknown field"),
        ('{"reason": 3}', "reason", "string"),
    ],
)
def test_cancel_rejects_bad_input_and_changes_nothing(
    world: World, raw: str, field: str, reason: str
) -> None:
    agent_id = world.start(GOAL)
    before = _snapshot(world.table_name)
    status, body = world.call("POST", f"/agents/{agent_id}/cancel", raw)
    _assert_error(status, body, 400, field, reason)
    assert _snapshot(world.table_name) == before


def test_cancel_of_a_completed_agent_is_an_illegal_transition(world: World) -> None:
    agent_id = _completed(world)
    before = _snapshot(world.table_name)
    status, body = world.call("POST", f"/agents/{agent_id}/cancel")
    _assert_error(status, body, 409, "status", "COMPLETED")
    assert _snapshot(world.table_name) == before


def test_unknown_route_is_a_json_404(world: World) -> None:
    status, body = world.call("GET", "/nope")
    _assert_error(status, body, 404, "path", "no such route")


# --- bounded responses ---------------------------------------------------------------------------


def test_the_view_of_an_agent_with_huge_tool_turns_is_bounded_in_bytes(world: World) -> None:
    # GIVEN a legal agent whose 40 latest turns each hold 20 tool calls or results of 15 KB
    store = world.runtime.store
    header = world.runtime.service.create(GOAL, caller=caller_of(http_api_event("GET", "/")))
    piece = "x" * 15_000
    seq = header.message_count
    for turn in range(20):
        ids = [f"tooluse_{turn}_{i}" for i in range(20)]
        store.put_step_message(
            header.agent_id,
            Message(
                seq=seq,
                role="assistant",
                content=[
                    ToolUseBlock(tool_use=ToolUse(tool_use_id=i, name="n", input={"a": piece}))
                    for i in ids
                ],
                step=2 * turn,
                origin=Origin.MODEL,
            ),
            header.ttl,
        )
        store.put_step_message(
            header.agent_id,
            Message(
                seq=seq + 1,
                role="user",
                content=[
                    ToolResultBlock(
                        tool_result=ToolResult(
                            tool_use_id=i, content=[{"text": piece}], status="success"
                        )
                    )
                    for i in ids
                ],
                step=2 * turn + 1,
                origin=Origin.TOOL,
                outcome=Outcome.SUCCEEDED,
                tool_name="n",
            ),
            header.ttl,
        )
        seq += 2
    store.commit(
        header.version,
        header.model_copy(update={"message_count": seq, "step": 40, "next_step": StepKind.PLAN}),
    )
    # WHEN it is read through the api
    event = http_api_event("GET", f"/agents/{header.agent_id}")
    response = api.handler(event, LambdaContext(function_name="agentry-api"))
    # THEN the response stays far below Lambda's 6 MB limit (the history is cut by size and
    # says so), and what it keeps is the newest part of the conversation
    assert response["statusCode"] == 200
    assert len(response["body"].encode()) <= MAX_VIEW_BYTES + 100_000
    view = json.loads(response["body"])
    context = view["context"]
    assert context["historyTruncated"]
    assert context["historyTruncatedBySize"]
    assert view["planTruncated"]
    assert 0 < len(context["conversationHistory"]) < 41
    assert context["conversationHistory"][-1]["origin"] == "tool"


def test_every_route_the_http_api_declares_is_served_and_no_other(world: World) -> None:
    # GIVEN the routes the platform declares on the HTTP API, and an agent of the caller
    agent_id = world.start(GOAL)
    served = set()
    for route in ROUTES:
        method, path = route.split(" ")
        # WHEN each is called THEN the api function has a handler for it (not "no such route")
        status, body = world.call(method, path.replace("{id}", agent_id))
        assert not (status == 404 and body["error"]["code"] == "NotFound"), route
        served.add(route)
    # AND a method the API does not declare is not served either
    status, body = world.call("PUT", f"/agents/{agent_id}")
    assert (status, body["error"]["code"]) == (404, "NotFound")
    assert served == set(ROUTES)
