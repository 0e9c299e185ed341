"""Fixtures of the API fuzzing: the real api handler over a moto table and bus.

The world holds agents in every state a request can meet (waiting, completed, needing a human,
cancelled), so fuzzed ids hit real agents as well as unknown ones.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fuzz_world import TABLE, ApiWorld, make_agents
from support.agents import flights_agent, single_agent_runtime
from support.harness import aws_session, create_agents_table, moto_account

from agentry_runtime.events import Publisher
from agentry_runtime.runtime import set_runtime
from agentry_runtime.store import AgentStore


@pytest.fixture
def api_world(monkeypatch: pytest.MonkeyPatch) -> Iterator[ApiWorld]:
    """A moto table and bus, the runtime over them, and one agent per interesting state."""
    with moto_account(monkeypatch):
        dynamodb = aws_session().client("dynamodb")
        create_agents_table(dynamodb, TABLE)
        events = aws_session().client("events")
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
