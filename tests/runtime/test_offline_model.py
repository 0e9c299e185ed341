"""The offline model through a real boto3 client: validation, planning, summaries, faults."""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from agentry_flights import bookings, inventory
from agentry_flights import registry as flights_registry
from agentry_offline.bedrock import FakeBedrockServer
from agentry_offline.model import Faults, OfflineModel
from agentry_runtime.errors import ToolInputError
from agentry_runtime.model import SUMMARY_SYSTEM_PROMPT
from agentry_runtime.tools import ToolContext

TODAY = dt.datetime.now(dt.UTC).date()
MODEL = "us.anthropic.claude-sonnet-4-20250514-v1:0"
LABEL = OfflineModel.LABEL
SPECS = flights_registry.specs()
GOAL = "Book a flight from New York to San Francisco for tomorrow"


def _user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"text": text}]}


def _use(tool_use_id: str, tool_input: dict[str, Any], name: str = "get_flight_info") -> dict:
    use = {"toolUseId": tool_use_id, "name": name, "input": tool_input}
    return {"role": "assistant", "content": [{"toolUse": use}]}


def _result(tool_use_id: str, status: str = "success", text: str = "ok") -> dict[str, Any]:
    result = {"toolUseId": tool_use_id, "content": [{"text": text}], "status": status}
    return {"role": "user", "content": [{"toolResult": result}]}


QUERY = {"origin": "New York", "destination": "San Francisco", "date": TODAY.isoformat()}


@pytest.fixture
def model() -> OfflineModel:
    """The offline model, counting from today's UTC date."""
    return OfflineModel(today=TODAY)


@pytest.fixture
def endpoint(model: OfflineModel) -> Iterator[FakeBedrockServer]:
    """The offline model behind a fake Bedrock endpoint."""
    with FakeBedrockServer(model) as server:
        yield server


@pytest.fixture
def bedrock(endpoint: FakeBedrockServer, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A real boto3 bedrock-runtime client on the fake endpoint, without retries."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=endpoint.endpoint_url,
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )


def _converse(
    bedrock: Any,
    messages: list[dict[str, Any]],
    *,
    tools: list[dict[str, Any]] | None = SPECS,
    system: str = "You book flights.",
    **extra: Any,
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"modelId": MODEL, "messages": messages, "system": [{"text": system}]}
    if tools is not None:
        kwargs["toolConfig"] = {"tools": tools}
    response = bedrock.converse(**kwargs, **extra)
    content = response["output"]["message"]["content"]
    # Every text the offline model writes is labelled as such.
    for block in content:
        if "text" in block:
            assert block["text"].startswith(LABEL), block["text"]
    return response


def _tool_use(response: dict[str, Any]) -> dict[str, Any]:
    (use,) = [b["toolUse"] for b in response["output"]["message"]["content"] if "toolUse" in b]
    return use


def _text(response: dict[str, Any]) -> str:
    return "\n".join(b["text"] for b in response["output"]["message"]["content"] if "text" in b)


# --- validation -----------------------------------------------------------------------------------

_SCHEMA_BREAK = {"origin": "New York", "destination": "San Francisco"}

VALIDATION_CASES: dict[str, tuple[list[dict[str, Any]], dict[str, Any], str]] = {
    "empty conversation": ([], {}, "messages: must contain at least one message"),
    "assistant first": ([{"role": "assistant", "content": [{"text": "hi"}]}], {}, "start with"),
    "roles not alternating": ([_user("a"), _user("b")], {}, "must alternate"),
    "unknown role": ([{"role": "tool_output", "content": [{"text": "x"}]}], {}, "user or assist"),
    "blank text": ([_user(" ")], {}, "messages.0.content.0.text: the text field is blank"),
    "toolUse in a user turn": (
        [{"role": "user", "content": _use("t1", QUERY)["content"]}],
        {},
        "toolUse blocks are only allowed in assistant turns",
    ),
    "toolResult in an assistant turn": (
        [_user(GOAL), {"role": "assistant", "content": _result("t1")["content"]}],
        {},
        "toolResult blocks are only allowed in user turns",
    ),
    "toolResult for another id": (
        [_user(GOAL), _use("t1", QUERY), _result("t2")],
        {},
        "'t2' does not match a toolUse of the immediately preceding assistant turn",
    ),
    "toolUse left unanswered": (
        [_user(GOAL), _use("t1", QUERY), _user("go on")],
        {},
        "toolUse ids ['t1'] of messages.1 have no toolResult",
    ),
    "last toolUse unanswered": ([_user(GOAL), _use("t1", QUERY)], {}, "have no toolResult"),
    "successful call with a schema-breaking input": (
        [_user(GOAL), _use("t1", _SCHEMA_BREAK), _result("t1")],
        {},
        "input does not match its schema: (input): 'date' is a required property",
    ),
    "duplicate tool names": (
        [_user(GOAL)],
        {"toolConfig": {"tools": [SPECS[0], SPECS[0]]}},
        "tool name 'get_flight_info' is not unique",
    ),
    "temperature out of range": (
        [_user(GOAL)],
        {"inferenceConfig": {"temperature": 1.5}},
        "inferenceConfig.temperature: must be between 0 and 1",
    ),
    "tool blocks without toolConfig": (
        [_user(GOAL), _use("t1", QUERY), _result("t1")],
        {"toolConfig": None},
        "the toolConfig field must be defined",
    ),
}


@pytest.mark.parametrize("case", list(VALIDATION_CASES))
def test_invalid_requests_are_rejected_like_bedrock(bedrock: Any, case: str) -> None:
    # GIVEN a request that breaks one rule of Converse
    messages, overrides, reason = VALIDATION_CASES[case]
    kwargs: dict[str, Any] = {
        "modelId": MODEL,
        "messages": messages,
        "toolConfig": {"tools": SPECS},
    }
    kwargs.update(overrides)
    if kwargs["toolConfig"] is None:
        del kwargs["toolConfig"]
    # WHEN it is sent through boto3 THEN Bedrock's ValidationException names the problem
    with pytest.raises(ClientError) as caught:
        bedrock.converse(**kwargs)
    error = caught.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert reason in error["Message"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"messages": [{"role": "user", "content": [{"image": {}}]}]}, "exactly one of text"),
        ({"messages": [_user("a")], "inferenceConfig": {"maxTokens": 0}}, "maxTokens"),
    ],
)
def test_requests_boto3_would_refuse_are_rejected_too(
    model: OfflineModel, body: dict[str, Any], reason: str
) -> None:
    # GIVEN a body botocore's own parameter validation would stop before sending
    # WHEN the responder gets it directly THEN it answers 400 ValidationException
    status, headers, raw = model(MODEL, body)
    assert (status, headers["x-amzn-ErrorType"]) == (400, "ValidationException")
    assert reason in json.loads(raw)["message"]


def test_a_bad_call_answered_with_an_error_is_valid_history(bedrock: Any) -> None:
    # GIVEN a schema-breaking call that was answered with an error result
    messages = [_user(GOAL), _use("t1", _SCHEMA_BREAK), _result("t1", "error", "date missing")]
    # WHEN sent THEN the model accepts it and plans again
    assert _tool_use(_converse(bedrock, messages))["name"] == "get_flight_info"


# --- planning ----------------------------------------------------------------------------------


def test_new_york_to_san_francisco_tomorrow_books_the_cheapest_flight(
    bedrock: Any, dynamodb_client: Any, agent_table: str
) -> None:
    # GIVEN the demo tools, a table, and the article's goal
    registry = flights_registry
    messages = [_user(GOAL)]
    plans: list[dict[str, Any]] = []
    # WHEN the conversation is driven like the loop does, tool results and all
    for _ in range(5):
        response = _converse(bedrock, messages)
        messages.append(response["output"]["message"])
        if response["stopReason"] != "tool_use":
            break
        use = _tool_use(response)
        plans.append(use)
        ctx = ToolContext("agent-1", use["toolUseId"], agent_table, dynamodb_client)
        outcome = registry.execute(use["name"], use["input"], ctx)
        result = {"toolUseId": use["toolUseId"], "content": outcome.content, "status": "success"}
        assert outcome.status == "success", outcome.error
        messages.append({"role": "user", "content": [{"toolResult": result}]})
    # THEN it looked up the route for tomorrow, booked the cheapest flight, and said so
    tomorrow = (TODAY + dt.timedelta(days=1)).isoformat()
    query = {"origin": "New York", "destination": "San Francisco", "date": tomorrow}
    inv = inventory()
    cheapest = min(
        inv.flights(inv.require_city("JFK"), inv.require_city("SFO")), key=lambda f: f.price_usd
    )
    assert [p["name"] for p in plans] == ["get_flight_info", "book_flight"]
    assert plans[0]["input"] == query
    assert plans[1]["input"] == {**query, "flight_id": cheapest.flight_id}
    assert plans[0]["toolUseId"] != plans[1]["toolUseId"]
    assert response["stopReason"] == "end_turn"
    (booking,) = bookings(dynamodb_client, agent_table, "agent-1")
    assert booking["confirmation"] in _text(response)
    assert cheapest.flight_id in _text(response)


@pytest.mark.parametrize(
    ("goal", "origin", "destination", "days"),
    [
        ("Please fly me to Seattle from Chicago on {iso}", "Chicago", "Seattle", 9),
        ("BOS to MIA in 3 days", "Boston", "Miami", 3),
        ("From Denver, to Seattle, the day after tomorrow", "Denver", "Seattle", 2),
        ("I need to be in Los Angeles, leaving NYC today", "New York", "Los Angeles", 0),
        ("Seattle to San Francisco in two weeks", "Seattle", "San Francisco", 14),
    ],
)
def test_goal_parsing_finds_cities_in_order_and_the_date(
    bedrock: Any, goal: str, origin: str, destination: str, days: int
) -> None:
    # GIVEN a goal with two cities and a date in one of the understood forms
    text = goal.format(iso=(TODAY + dt.timedelta(days=days)).isoformat())
    # WHEN the model plans
    use = _tool_use(_converse(bedrock, [_user(text)]))
    # THEN it looks up that route on that day
    expected_date = (TODAY + dt.timedelta(days=days)).isoformat()
    assert use["input"] == {"origin": origin, "destination": destination, "date": expected_date}


def test_weekday_names_mean_the_next_such_day(bedrock: Any) -> None:
    # GIVEN a goal naming the weekday of today
    weekday = TODAY.strftime("%A")
    # WHEN the model plans THEN it means the same weekday next week, not today
    use = _tool_use(_converse(bedrock, [_user(f"Boston to Miami on {weekday}")]))
    assert use["input"]["date"] == (TODAY + dt.timedelta(days=7)).isoformat()


def test_an_error_result_is_retried_with_a_fresh_tool_use_id(bedrock: Any) -> None:
    # GIVEN a lookup that failed
    first = _tool_use(_converse(bedrock, [_user(GOAL)]))
    failed = _result(first["toolUseId"], "error", "simulated failure")
    messages = [_user(GOAL), {"role": "assistant", "content": [{"toolUse": first}]}, failed]
    # WHEN the model plans again
    retry = _tool_use(_converse(bedrock, messages))
    # THEN it repeats the same call under a new id
    assert (retry["name"], retry["input"]) == (first["name"], first["input"])
    assert retry["toolUseId"] != first["toolUseId"]


def test_a_later_human_instruction_overrides_the_goal(bedrock: Any) -> None:
    # GIVEN a goal, an assistant reply and a human instruction changing city and day
    messages = [
        _user(GOAL),
        {"role": "assistant", "content": [{"text": f"{LABEL} Working on it."}]},
        _user("Actually, fly to Los Angeles instead, in 3 days."),
    ]
    # WHEN the model plans THEN it follows the instruction
    use = _tool_use(_converse(bedrock, messages))
    expected = (TODAY + dt.timedelta(days=3)).isoformat()
    assert use["input"] == {"origin": "New York", "destination": "Los Angeles", "date": expected}


def test_a_goal_without_origin_or_date_is_answered_with_a_question(bedrock: Any) -> None:
    # GIVEN a goal with one city and no day
    # WHEN the model plans THEN it ends its turn asking for what is missing
    response = _converse(bedrock, [_user("Book me a flight to Boston")])
    assert response["stopReason"] == "end_turn"
    assert "where you fly from and the day of travel" in _text(response)


def test_other_agents_get_a_clear_refusal_not_a_made_up_answer(
    bedrock: Any, model: OfflineModel
) -> None:
    # GIVEN tools other than the flight demo's
    other = [{"toolSpec": {"name": "search", "description": "d", "inputSchema": {"json": {}}}}]
    # WHEN the model is asked to plan THEN it refuses as a client error, naming the tools
    with pytest.raises(ClientError) as raised:
        _converse(bedrock, [_user(GOAL)], tools=other)
    error = raised.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert "this agent offers: search" in error["Message"]
    assert "--script" in error["Message"]
    # AND the refusal is kept, so a local run ends in an error rather than COMPLETED
    assert model.failure is not None
    assert "offers: search" in model.failure


def test_summary_requests_get_a_condensed_list_of_facts(bedrock: Any) -> None:
    # GIVEN a transcript with a booking among chatter
    lines = [GOAL, *(f"step {i}: thinking" for i in range(20)), "booked: AGB-0A1B2C3D"]
    transcript = "\n".join([*lines[:12], *lines[12:]])
    # WHEN it is sent with the summary system prompt
    response = _converse(bedrock, [_user(transcript)], tools=None, system=SUMMARY_SYSTEM_PROMPT)
    # THEN the summary keeps the goal and the booking and drops the middle
    summary = _text(response)
    assert GOAL in summary
    assert "AGB-0A1B2C3D" in summary
    assert "step 5: thinking" not in summary
    assert len(summary) < len(transcript)


def test_usage_reports_a_cache_write_then_reads(bedrock: Any) -> None:
    # GIVEN a request with cache points after the system prompt and the tools
    cache_point = {"cachePoint": {"type": "default"}}
    kwargs = {
        "modelId": MODEL,
        "system": [{"text": "You book flights."}, cache_point],
        "toolConfig": {"tools": [*SPECS, cache_point]},
    }
    # WHEN it is sent twice
    first = bedrock.converse(messages=[_user(GOAL)], **kwargs)["usage"]
    second = bedrock.converse(messages=[_user(GOAL)], **kwargs)["usage"]
    # THEN the prefix is written once, then read, and totals add up
    assert first["cacheWriteInputTokens"] > 0 == first["cacheReadInputTokens"]
    assert second["cacheReadInputTokens"] == first["cacheWriteInputTokens"]
    assert second["cacheWriteInputTokens"] == 0
    parts = ("inputTokens", "outputTokens", "cacheReadInputTokens", "cacheWriteInputTokens")
    assert second["totalTokens"] == sum(second[k] for k in parts)


# --- faults ------------------------------------------------------------------------------------


def _error_code(bedrock: Any, messages: list[dict[str, Any]]) -> str:
    with pytest.raises(ClientError) as caught:
        bedrock.converse(modelId=MODEL, messages=messages, toolConfig={"tools": SPECS})
    return str(caught.value.response["Error"]["Code"])


def test_throttle_and_server_error_faults_fire_then_clear(
    bedrock: Any, model: OfflineModel
) -> None:
    # GIVEN one throttle and two server errors queued
    model.faults = Faults(throttle=1, server_error=2)
    # WHEN four calls are made
    codes = [_error_code(bedrock, [_user(GOAL)]) for _ in range(3)]
    after = _converse(bedrock, [_user(GOAL)])
    # THEN each fault fires once, in order, and the next call is answered
    assert codes == [
        "ThrottlingException",
        "ServiceUnavailableException",
        "InternalServerException",
    ]
    assert after["stopReason"] == "tool_use"
    assert model.faults == Faults()
    assert model.calls == 4


def test_malformed_fault_answers_broken_plans(bedrock: Any, model: OfflineModel) -> None:
    # GIVEN two malformed plans queued
    model.faults = Faults(malformed=2)
    # WHEN the model plans twice
    first = _converse(bedrock, [_user(GOAL)])
    second = _converse(bedrock, [_user(GOAL)])
    # THEN one claims a tool call without any, the other calls a tool that does not exist
    assert first["stopReason"] == "tool_use"
    assert not [b for b in first["output"]["message"]["content"] if "toolUse" in b]
    assert _tool_use(second)["name"] == "unknown_tool"
    assert model.faults.malformed == 0


def test_bad_tool_args_fault_breaks_the_schema_once(bedrock: Any, model: OfflineModel) -> None:
    # GIVEN one bad tool call queued
    model.faults = Faults(bad_tool_args=1)
    registry = flights_registry
    # WHEN the model plans twice
    broken = _tool_use(_converse(bedrock, [_user(GOAL)]))
    fixed = _tool_use(_converse(bedrock, [_user(GOAL)]))
    # THEN the first input fails the tool's validation naming the field, the second passes
    with pytest.raises(ToolInputError, match="date: Field required"):
        registry.validate(broken["name"], broken["input"])
    registry.validate(fixed["name"], fixed["input"])


# --- the fake endpoint ---------------------------------------------------------------------------


def test_unknown_paths_and_bad_bodies_get_bedrock_style_errors(endpoint: FakeBedrockServer) -> None:
    # GIVEN the endpoint WHEN a wrong path or a non-JSON body is posted
    def post(path: str, body: bytes) -> tuple[int, str]:
        request = urllib.request.Request(endpoint.endpoint_url + path, data=body, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=5) as reply:
                return reply.status, ""
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers["x-amzn-ErrorType"]

    # THEN each gets a typed error and only the parsed request is recorded
    assert post("/model/m/converse-stream", b"{}") == (404, "UnknownOperationException")
    assert post("/model/m/converse", b"not json") == (400, "SerializationException")
    assert endpoint.requests == []
