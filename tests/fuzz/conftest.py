"""Fixtures of the API fuzzing: the real api handler over a moto table and bus.

The world holds agents in every state a request can meet (waiting, completed, needing a human,
cancelled), so fuzzed ids hit real agents as well as unknown ones.
"""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from fuzz_world import TABLE, ApiWorld, make_agents
from moto import mock_aws
from support.agents import flights_agent, single_agent_runtime

from agentry_runtime.contract import table_schema
from agentry_runtime.events import Publisher
from agentry_runtime.runtime import set_runtime
from agentry_runtime.store import AgentStore

REGION = "us-east-1"


@pytest.fixture
def api_world(monkeypatch: pytest.MonkeyPatch) -> Iterator[ApiWorld]:
    """A moto table and bus, the runtime over them, and one agent per interesting state."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(**table_schema(TABLE))
        events = boto3.client("events", region_name=REGION)
        events.create_event_bus(Name="agentry-fuzz")
        # The api never calls the model; a client that was never used costs nothing.
        runtime = single_agent_runtime(
            AgentStore(TABLE, client=dynamodb),
            Publisher("agentry-fuzz", client=events),
            flights_agent(),
        )
        set_runtime(runtime)
        try:
            yield ApiWorld(runtime, dynamodb, make_agents(runtime))
        finally:
            set_runtime(None)
