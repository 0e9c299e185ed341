"""Several agents behind one API: each runs its own prompt, tools and model; follow-ups."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from pydantic import BaseModel
from support.world import REGION, World

from agentry_offline.bedrock import Responder
from agentry_offline.model import OfflineModel
from agentry_offline.script import Script, ScriptedModel
from agentry_runtime.agents import Agent, AgentCatalog
from agentry_runtime.model import ModelClient, ModelSettings
from agentry_runtime.settings import LoopSettings
from agentry_runtime.state import Status
from agentry_runtime.tools import ToolContext, ToolRegistry

GOAL = "Book a flight from New York to San Francisco for tomorrow"
ECHO_MODEL = "amazon.nova-lite-v1:0"
ECHO_PROMPT = "You repeat what you are told, loudly."


class Words(BaseModel):
    """Input of shout."""

    words: str


echo_tools = ToolRegistry()


@echo_tools.tool()
def shout(args: Words, ctx: ToolContext) -> str:
    """Repeat words loudly."""
    return args.words.upper()


class ByModel:
    """A responder per model id (the flights demo planner, a script for the echo agent)."""

    def __init__(self, responders: dict[str, Responder]) -> None:
        self.responders = responders

    def __call__(self, model_id: str, request: dict[str, Any]) -> Any:
        return self.responders[model_id](model_id, request)


ECHO_SCRIPT = Script.parse(
    {"turns": [{"toolUse": [{"name": "shout", "input": {"words": "hi"}}]}, {"text": "HI"}]}
)


@pytest.fixture
def world(agent_table: str) -> Iterator[World]:
    """The runtime with two agents: the flight demo (default) and an echo agent."""
    responder = ByModel(
        {
            "anthropic.claude-3-5-haiku-20241022-v1:0": OfflineModel(),
            ECHO_MODEL: ScriptedModel(ECHO_SCRIPT),
        }
    )
    world = World(agent_table, responder=responder)
    echo = Agent(
        name="echo",
        system_prompt=ECHO_PROMPT,
        tools=echo_tools,
        model=ModelClient(ModelSettings(ECHO_MODEL), client=world.agent.model._client),
        settings=LoopSettings(max_steps=5),
        description="Echoes.",
    )
    world.runtime.agents = AgentCatalog.of(world.agent, echo)
    yield world
    world.close()


def _items(table: str) -> list[dict[str, Any]]:
    client = boto3.client("dynamodb", region_name=REGION)
    return list(client.scan(TableName=table, ConsistentRead=True)["Items"])


def test_an_unknown_agent_is_a_400_naming_the_field_and_stores_nothing(world: World) -> None:
    before = _items(world.table_name)
    status, body = world.call("POST", "/agents", {"goal": "Hello", "agent": "concierge"})
    assert status == 400, body
    assert body["error"]["fields"] == [
        {"field": "agent", "reason": "no agent 'concierge'; agents: echo, flights"}
    ]
    assert _items(world.table_name) == before


def test_each_agent_runs_its_own_prompt_tools_and_model(world: World) -> None:
    # WHEN one agent of each definition runs
    status, flights = world.call("POST", "/agents", {"goal": GOAL})
    assert (status, flights["agent"]) == (202, "flights")
    status, echo = world.call("POST", "/agents", {"goal": "Say hi", "agent": "echo"})
    assert (status, echo["agent"]) == (202, "echo")
    world.pump()
    # THEN both complete, each with its own tools
    flights_view = world.call("GET", f"/agents/{flights['agentId']}")[1]
    echo_view = world.call("GET", f"/agents/{echo['agentId']}")[1]
    assert (flights_view["status"], echo_view["status"]) == ("COMPLETED", "COMPLETED")
    assert {p["toolName"] for p in echo_view["plan"]} == {"shout"}
    assert {p["toolName"] for p in flights_view["plan"]} == {"get_flight_info", "book_flight"}
    # AND the view names the definition and its model
    assert (echo_view["agent"], echo_view["model"]) == ("echo", ECHO_MODEL)
    assert echo_view["metadata"]["agent"] == "echo"
    assert [t["name"] for t in echo_view["tools"]] == ["shout"]
    # AND Bedrock saw each agent's model, prompt and tools
    requests = world.server.requests
    echo_requests = [r for r in requests if r["modelId"] == ECHO_MODEL]
    assert echo_requests
    for request in echo_requests:
        assert request["system"][0]["text"].startswith(ECHO_PROMPT)
        assert [
            t["toolSpec"]["name"] for t in request["toolConfig"]["tools"] if "toolSpec" in t
        ] == ["shout"]
    assert all(
        not r["system"][0]["text"].startswith(ECHO_PROMPT)
        for r in requests
        if r not in echo_requests
    )


def test_a_completed_agent_takes_a_follow_up_and_plans_again(world: World) -> None:
    # GIVEN a completed flight agent whose items are about to expire
    agent_id = world.call("POST", "/agents", {"goal": GOAL})[1]["agentId"]
    world.pump()
    store = world.runtime.store
    done = store.get_header(agent_id)
    assert done.status == Status.COMPLETED
    client = boto3.client("dynamodb", region_name=REGION)
    soon = int(time.time()) + 60
    for item in _items(world.table_name):
        client.update_item(
            TableName=world.table_name,
            Key={"pk": item["pk"], "sk": item["sk"]},
            UpdateExpression="SET #t = :t",
            ExpressionAttributeNames={"#t": "ttl"},
            ExpressionAttributeValues={":t": {"N": str(soon)}},
        )
    # WHEN the caller follows up
    status, body = world.call(
        "POST", f"/agents/{agent_id}/messages", {"text": "And what is my confirmation number?"}
    )
    # THEN the agent runs again with a fresh step budget, in the same conversation
    assert status == 202, body
    assert body["status"] == "FOLLOWED_UP"
    followed = store.get_header(agent_id)
    assert followed.steps_granted_at == done.step + 1
    assert store.messages(agent_id)[-1].text() == "And what is my confirmation number?"
    world.pump()
    again = store.get_header(agent_id)
    assert again.status == Status.COMPLETED
    assert again.message_count == done.message_count + 2
    # AND no booking was made twice, and every item's expiry was pushed out
    assert len(world.bookings(agent_id)) == 1
    ttls = {int(item["ttl"]["N"]) for item in _items(world.table_name) if "ttl" in item}
    assert min(ttls) > soon + 86_400


@pytest.mark.parametrize(
    ("raw", "expected", "field"),
    [("{}", 400, "text"), ('{"text": ""}', 400, "text"), ('{"text": 5}', 400, "text")],
)
def test_a_bad_follow_up_is_refused_and_changes_nothing(
    world: World, raw: str, expected: int, field: str
) -> None:
    agent_id = world.call("POST", "/agents", {"goal": GOAL})[1]["agentId"]
    world.pump()
    before = _items(world.table_name)
    status, body = world.call("POST", f"/agents/{agent_id}/messages", raw)
    assert status == expected, body
    assert [f["field"] for f in body["error"]["fields"]] == [field]
    assert _items(world.table_name) == before


def test_a_follow_up_to_a_running_agent_is_an_illegal_transition(world: World) -> None:
    agent_id = world.call("POST", "/agents", {"goal": GOAL})[1]["agentId"]
    before = _items(world.table_name)
    status, body = world.call("POST", f"/agents/{agent_id}/messages", {"text": "hurry"})
    assert status == 409, body
    assert _items(world.table_name) == before
