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

from agentry_runtime.contract import table_schema
from agentry_runtime.events import Publisher
from agentry_runtime.flights import demo_registry
from agentry_runtime.model import ModelClient, ModelSettings
from agentry_runtime.runtime import Runtime, set_runtime
from agentry_runtime.settings import LoopSettings
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
        runtime = Runtime(
            store=AgentStore(TABLE, client=dynamodb),
            # The api never calls the model; a client that was never used costs nothing.
            model=ModelClient(ModelSettings(model_id="anthropic.claude-3-5-haiku-20241022-v1:0")),
            tools=demo_registry(),
            publisher=Publisher("agentry-fuzz", client=events),
            settings=LoopSettings(),
        )
        set_runtime(runtime)
        try:
            yield ApiWorld(runtime, dynamodb, make_agents(runtime))
        finally:
            set_runtime(None)
