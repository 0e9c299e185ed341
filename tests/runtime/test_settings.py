"""The function settings contract: written by the program, read by the runtime, one parser."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentry_flights import registry as flights_registry
from agentry_runtime.agents import AgentsFile, AgentSpec
from agentry_runtime.contract import AGENTS_FILE_NAME, TASK_ROOT_VARIABLE
from agentry_runtime.errors import SettingsError, UnknownAgentError
from agentry_runtime.pricing import ModelPrice
from agentry_runtime.runtime import Runtime
from agentry_runtime.settings import AccessSettings, AgentLimits, FunctionSettings

pytestmark = pytest.mark.unit

LIMITS = AgentLimits(
    model="anthropic.claude-3-5-haiku-20241022-v1:0",
    max_steps=7,
    token_budget=5000,
    max_output_tokens=512,
    temperature=0.1,
    tool_timeout_seconds=4,
    max_tool_failures=2,
    max_plan_retries=1,
    prompt_caching=False,
    price=ModelPrice(input_per_million=1.0, output_per_million=5.0),
)
SETTINGS = FunctionSettings(
    table_name="agents",
    event_bus_name="bus",
    runtime_version="9.9.9",
    agents_file=AGENTS_FILE_NAME,
    default_agent="flights",
    agents={"flights": LIMITS},
    ttl_days=3,
    max_request_bytes=1024,
    model_read_timeout_seconds=30,
    model_connect_timeout_seconds=5,
    model_max_attempts=2,
    access=AccessSettings(
        operators=["arn:aws:iam::111122223333:role/ops/Operator"],
        max_active_agents_per_caller=7,
        approval_window_seconds=600,
    ),
)
SPEC = AgentSpec(
    description="Books flights.",
    system_prompt="Book flights.",
    toolsets=["agentry_flights:registry"],
)


@pytest.fixture
def task_root(tmp_path: Path) -> Path:
    """A task root holding an agents file for the one agent of ``SETTINGS``."""
    (tmp_path / AGENTS_FILE_NAME).write_bytes(AgentsFile(agents={"flights": SPEC}).dumps())
    return tmp_path


def test_settings_round_trip_through_the_environment() -> None:
    # GIVEN settings the program writes WHEN the runtime reads them back THEN nothing changed
    environ = SETTINGS.to_environment()
    assert FunctionSettings.from_environment(environ) == SETTINGS
    # AND each agent's model and limits are in plain sight (the policy pack reads them)
    assert json.loads(environ["AGENTRY_AGENTS"])["flights"]["model"] == LIMITS.model


def _agents_with(**limits: object) -> dict[str, str]:
    """``AGENTRY_AGENTS`` of the test settings, with some of the flight agent's limits changed."""
    agents = json.loads(SETTINGS.to_environment()["AGENTRY_AGENTS"])
    agents["flights"].update(limits)
    return {"AGENTRY_AGENTS": json.dumps(agents)}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"AGENTRY_TABLE_NAME": None}, "AGENTRY_TABLE_NAME: required"),
        ({"AGENTRY_AGENT_TTL_DAYS": "soon"}, "AGENTRY_AGENT_TTL_DAYS"),
        ({"AGENTRY_MAX_REQUEST_BYTES": "0"}, "AGENTRY_MAX_REQUEST_BYTES"),
        ({"AGENTRY_AGENTS": "{not json"}, "AGENTRY_AGENTS: not JSON"),
        ({"AGENTRY_AGENTS": '{"flights": {"model": "m"}}'}, "AGENTRY_AGENTS.flights.maxSteps"),
        (_agents_with(maxSteps=0), "AGENTRY_AGENTS.flights.maxSteps"),
        (_agents_with(maxSteps="many"), "AGENTRY_AGENTS.flights.maxSteps"),
        (_agents_with(tokenBudget=-1), "AGENTRY_AGENTS.flights.tokenBudget"),
        ({"AGENTRY_DEFAULT_AGENT": "nobody"}, "AGENTRY_DEFAULT_AGENT: 'nobody'"),
    ],
)
def test_a_bad_variable_is_named(change: dict[str, str | None], message: str) -> None:
    environ = {**SETTINGS.to_environment(), **change}
    environ = {k: v for k, v in environ.items() if v is not None}
    with pytest.raises(SettingsError, match=message):
        FunctionSettings.from_environment(environ)


def test_runtime_from_env_joins_the_environment_and_the_agents_file(task_root: Path) -> None:
    # GIVEN a function's environment and its bundle's agents file
    environ = {**SETTINGS.to_environment(), TASK_ROOT_VARIABLE: str(task_root)}
    # WHEN the runtime is built
    runtime = Runtime.from_env(environ)
    # THEN it uses the settings, and the agent runs with its own limits and model
    assert (runtime.store.table_name, runtime.publisher.bus_name) == ("agents", "bus")
    assert (runtime.runtime_version, runtime.ttl_days, runtime.max_request_bytes) == (
        "9.9.9",
        3,
        1024,
    )
    agent = runtime.agents.get("flights")
    assert agent.model_id == LIMITS.model
    assert agent.settings.max_steps == 7
    assert agent.model.settings.max_tokens == 512
    # AND the agent's model client has the stack's timeouts and attempts (a chain's worst case)
    client = agent.model.settings
    assert (client.read_timeout_seconds, client.connect_timeout_seconds) == (30, 5)
    assert client.max_attempts == 2
    assert agent.price == LIMITS.price
    assert set(agent.tools.names()) == set(flights_registry.names())
    # AND tools without a timeout of their own take the agent's
    assert {agent.tools.timeout_of(n) for n in agent.tools.names()} == {4}
    with pytest.raises(UnknownAgentError, match="flights"):
        runtime.agents.get("other")


def test_an_agents_file_that_disagrees_with_the_environment_is_refused(task_root: Path) -> None:
    environ = {**SETTINGS.to_environment(), TASK_ROOT_VARIABLE: str(task_root)}
    other = AgentsFile(agents={"other": SPEC})
    (task_root / AGENTS_FILE_NAME).write_bytes(other.dumps())
    with pytest.raises(SettingsError, match=r"only in the environment \['flights'\]"):
        Runtime.from_env(environ)


def test_a_missing_agents_file_is_named(tmp_path: Path) -> None:
    environ = {**SETTINGS.to_environment(), TASK_ROOT_VARIABLE: str(tmp_path)}
    with pytest.raises(SettingsError, match=f"agents file .*{AGENTS_FILE_NAME}: cannot read"):
        Runtime.from_env(environ)


def test_a_toolset_that_is_not_a_registry_fails_on_first_use(task_root: Path) -> None:
    spec = SPEC.model_copy(update={"toolsets": ["agentry_flights:inventory"]})
    (task_root / AGENTS_FILE_NAME).write_bytes(AgentsFile(agents={"flights": spec}).dumps())
    runtime = Runtime.from_env({**SETTINGS.to_environment(), TASK_ROOT_VARIABLE: str(task_root)})
    with pytest.raises(SettingsError, match="not a ToolRegistry"):
        runtime.agents.get("flights")
