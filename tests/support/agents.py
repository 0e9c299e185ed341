"""One-agent catalogs and runtimes for tests: the flight demo's agent over any tools and client."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from agentry_flights import registry as flights_registry
from agentry_offline.faults import FailOnce, with_tool_faults
from agentry_runtime.agents import Agent, AgentCatalog
from agentry_runtime.events import Publisher
from agentry_runtime.model import ModelClient, ModelSettings
from agentry_runtime.runtime import Runtime
from agentry_runtime.settings import LoopSettings
from agentry_runtime.store import AgentStore
from agentry_runtime.tools import ToolRegistry

MODEL_ID = "anthropic.claude-3-5-haiku-20241022-v1:0"
FLIGHTS_PROMPT = "You are a travel agent that books flights between US cities."


def flights_tools(
    *,
    failing: Collection[str] = (),
    fail_once: Collection[str] = (),
    memory: FailOnce | None = None,
    timeout_seconds: float | None = None,
) -> ToolRegistry:
    """The flight toolset as an agent gets it, with the named tools failing on demand."""
    tools = ToolRegistry(default_timeout_seconds=timeout_seconds)
    tools.include(
        with_tool_faults(flights_registry, failing=failing, fail_once=fail_once, memory=memory)
    )
    return tools


def flights_agent(
    *,
    tools: ToolRegistry | None = None,
    bedrock: Any | None = None,
    settings: LoopSettings | None = None,
    model_id: str = MODEL_ID,
    name: str = "flights",
) -> Agent:
    """The flight demo's agent over ``tools`` (the plain toolset by default)."""
    return Agent(
        name=name,
        system_prompt=FLIGHTS_PROMPT,
        tools=tools or flights_tools(),
        model=ModelClient(ModelSettings(model_id=model_id), client=bedrock),
        settings=settings or LoopSettings(),
        description="Books flights.",
    )


def single_agent_runtime(
    store: AgentStore, publisher: Publisher, agent: Agent, **kwargs: Any
) -> Runtime:
    """A runtime whose catalog holds just ``agent``."""
    return Runtime(store=store, agents=AgentCatalog.of(agent), publisher=publisher, **kwargs)
