"""The typed tool registry and the demo flight tools."""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

import pytest
from pydantic import BaseModel, Field
from support.agents import flights_tools

from agentry_flights import bookings, inventory
from agentry_runtime.errors import ToolInputError, UnknownToolError
from agentry_runtime.tools import ToolContext, ToolRegistry

AGENT = "agent-1"


class Greeting(BaseModel):
    """Whom to greet."""

    name: str = Field(min_length=1)
    times: int = Field(ge=1, le=3)


def _ctx(tool_use_id: str = "tooluse_1", dynamodb: Any = None, table: str = "t") -> ToolContext:
    return ToolContext(agent_id=AGENT, tool_use_id=tool_use_id, table_name=table, dynamodb=dynamodb)


def _registry() -> ToolRegistry:
    registry = ToolRegistry(default_timeout_seconds=2.0)

    @registry.tool()
    def greet(args: Greeting, ctx: ToolContext) -> dict[str, Any]:
        """Greet someone a few times."""
        return {"greeting": " ".join([f"hello {args.name}"] * args.times), "by": ctx.agent_id}

    @registry.tool(name="shout", description="Greet loudly.")
    def _shout(args: Greeting, ctx: ToolContext) -> str:
        return f"HELLO {args.name.upper()}"

    @registry.tool()
    def explode(args: Greeting, ctx: ToolContext) -> str:
        """Always fails."""
        raise LookupError(f"no such person: {args.name}")

    return registry


# --- registry -----------------------------------------------------------------------------------


def test_spec_carries_the_pydantic_json_schema_and_the_docstring() -> None:
    # GIVEN a registry with a decorated tool
    registry = _registry()
    # WHEN its specs are built
    specs = {s["toolSpec"]["name"]: s["toolSpec"] for s in registry.specs()}
    # THEN the name, docstring and JSON schema of the input model are in the toolSpec
    assert list(specs) == ["greet", "shout", "explode"] == registry.names()
    assert specs["greet"]["description"] == "Greet someone a few times."
    assert specs["shout"]["description"] == "Greet loudly."
    assert specs["greet"]["inputSchema"] == {"json": Greeting.model_json_schema()}
    assert specs["greet"]["inputSchema"]["json"]["required"] == ["name", "times"]
    assert registry.describe()[1] == {
        "name": "shout",
        "description": "Greet loudly.",
        "needsApproval": False,
    }


def test_registration_rejects_unannotated_duplicate_and_undocumented_tools() -> None:
    # GIVEN a registry with one tool
    registry = _registry()

    # WHEN tools break the rules THEN registration fails naming the tool and the reason
    with pytest.raises(TypeError, match="pydantic model"):

        @registry.tool(description="x")
        def untyped(args, ctx):
            return "x"

    with pytest.raises(ValueError, match="already registered"):

        @registry.tool(name="greet", description="again")
        def greet_again(args: Greeting, ctx: ToolContext) -> str:
            return "x"

    with pytest.raises(ValueError, match="docstring"):

        @registry.tool()
        def silent(args: Greeting, ctx: ToolContext) -> str:
            return "x"


def test_validate_names_each_bad_field_and_unknown_tools() -> None:
    # GIVEN the registry
    registry = _registry()
    # WHEN an input misses one field and breaks another THEN both fields are named
    with pytest.raises(ToolInputError) as caught:
        registry.validate("greet", {"times": 7})
    message = str(caught.value)
    assert "name: Field required" in message
    assert "times: Input should be less than or equal to 3" in message
    # AND an unknown tool is reported with the known ones
    with pytest.raises(UnknownToolError, match="known tools: greet, shout, explode"):
        registry.validate("nope", {})


def test_execute_returns_json_text_and_error_outcomes() -> None:
    # GIVEN the registry
    registry = _registry()
    # WHEN tools succeed, fail, or get bad input
    ok = registry.execute("greet", {"name": "Ada", "times": 2}, _ctx())
    text = registry.execute("shout", {"name": "Ada", "times": 1}, _ctx())
    failed = registry.execute("explode", {"name": "Bob", "times": 1}, _ctx())
    invalid = registry.execute("greet", {"name": ""}, _ctx())
    unknown = registry.execute("nope", {}, _ctx())
    # THEN results become toolResult content and faults become readable error outcomes
    assert ok.status == "success"
    assert ok.content == [{"json": {"greeting": "hello Ada hello Ada", "by": AGENT}}]
    assert text.content == [{"text": "HELLO ADA"}]
    assert failed.status == "error"
    assert failed.error == "LookupError: no such person: Bob"
    assert failed.content == [{"text": failed.error}]
    assert invalid.status == "error"
    assert invalid.error is not None
    assert "name:" in invalid.error
    assert "times: Field required" in invalid.error
    assert unknown.status == "error"
    assert "unknown tool 'nope'" in (unknown.error or "")


def test_execute_times_out_without_waiting_for_the_tool() -> None:
    # GIVEN a tool that blocks until released, with a short timeout
    registry = ToolRegistry()
    release = threading.Event()

    @registry.tool(timeout_seconds=0.05)
    def stuck(args: Greeting, ctx: ToolContext) -> str:
        """Blocks."""
        release.wait(5)
        return "late"

    # WHEN it is executed
    started = time.perf_counter()
    outcome = registry.execute("stuck", {"name": "x", "times": 1}, _ctx())
    elapsed = time.perf_counter() - started
    release.set()
    # THEN the call ends at the timeout with an error outcome
    assert outcome.status == "error"
    assert outcome.error == "tool 'stuck' did not finish within 0.05 s"
    assert elapsed < 1.0


# --- demo flight tools -------------------------------------------------------------------------


def _tomorrow() -> str:
    return (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)).isoformat()


def test_get_flight_info_lists_the_route_schedule() -> None:
    # GIVEN the flight toolset
    registry = flights_tools()
    # WHEN flights from New York (by IATA code) to San Francisco are looked up
    outcome = registry.execute(
        "get_flight_info",
        {"origin": "jfk", "destination": "San Francisco", "date": _tomorrow()},
        _ctx(),
    )
    # THEN the inventory's flights for that route come back as JSON
    assert outcome.status == "success", outcome.error
    result = outcome.content[0]["json"]
    inv = inventory()
    expected = inv.flights(inv.require_city("JFK"), inv.require_city("SFO"))
    assert [f["flight_id"] for f in result["flights"]] == [f.flight_id for f in expected]
    assert result["origin"] == {"code": "JFK", "name": "New York"}
    assert result["date"] == _tomorrow()


@pytest.mark.parametrize(
    ("tool_input", "reason"),
    [
        ({"origin": "Atlantis", "destination": "Boston"}, "unknown city 'Atlantis'"),
        ({"origin": "Boston", "destination": "Denver"}, "no route from Boston (BOS) to Denver"),
        ({"origin": "Boston", "destination": "Miami", "date": "2001-01-01"}, "in the past"),
    ],
)
def test_get_flight_info_rejects_unknown_cities_routes_and_past_dates(
    tool_input: dict[str, str], reason: str
) -> None:
    # GIVEN the flight toolset and an impossible query
    registry = flights_tools()
    # WHEN it is executed
    outcome = registry.execute("get_flight_info", {"date": _tomorrow(), **tool_input}, _ctx())
    # THEN the error outcome says why, for the model to read
    assert outcome.status == "error"
    assert reason in (outcome.error or "")


def test_book_flight_books_once_per_tool_use_id(dynamodb_client: Any, agent_table: str) -> None:
    # GIVEN the flight toolset and a table
    client, table = dynamodb_client, agent_table
    registry = flights_tools()
    call = {"origin": "NYC", "destination": "SFO", "date": _tomorrow(), "flight_id": "AG102"}
    # WHEN the same committed call runs twice (a redelivered event) and another call once
    first = registry.execute("book_flight", call, _ctx("tooluse_a", client, table))
    again = registry.execute("book_flight", call, _ctx("tooluse_a", client, table))
    other = registry.execute("book_flight", call, _ctx("tooluse_b", client, table))
    # THEN the re-execution reports the same booking and the table holds one per toolUseId
    assert first.status == again.status == other.status == "success", first.error
    assert first.content == again.content
    confirmation = first.content[0]["json"]["confirmation_number"]
    assert other.content[0]["json"]["confirmation_number"] != confirmation
    items = bookings(client, table, AGENT)
    assert [i["sk"] for i in items] == ["BOOKING#tooluse_a", "BOOKING#tooluse_b"]
    assert items[0]["confirmation"] == confirmation
    assert items[0]["flightId"] == "AG102"
    assert (items[0]["origin"], items[0]["destination"]) == ("JFK", "SFO")
    assert bookings(client, table, "someone-else") == []


def test_book_flight_rejects_a_flight_of_another_route(
    dynamodb_client: Any, agent_table: str
) -> None:
    # GIVEN a flight id that flies elsewhere
    client, table = dynamodb_client, agent_table
    call = {"origin": "BOS", "destination": "MIA", "date": _tomorrow(), "flight_id": "AG102"}
    # WHEN it is booked
    outcome = flights_tools().execute("book_flight", call, _ctx("tooluse_x", client, table))
    # THEN nothing is written and the error lists the route's flights
    assert outcome.status == "error"
    assert "does not fly from BOS to MIA" in (outcome.error or "")
    assert bookings(client, table, AGENT) == []


def test_failing_tools_always_fail_and_fail_once_tools_fail_first() -> None:
    # GIVEN one always-failing and one fail-once tool
    registry = flights_tools(failing=["book_flight"], fail_once=["get_flight_info"])
    query = {"origin": "Chicago", "destination": "Seattle", "date": _tomorrow()}
    booking = {**query, "flight_id": "AG119"}
    # WHEN each runs twice
    info = [registry.execute("get_flight_info", query, _ctx()) for _ in range(2)]
    book = [registry.execute("book_flight", booking, _ctx()) for _ in range(2)]
    # THEN fail-once fails only the first time, failing fails every time
    assert [o.status for o in info] == ["error", "success"]
    assert info[0].error == "RuntimeError: simulated failure of get_flight_info"
    assert [o.status for o in book] == ["error", "error"]
    # AND the docstring-based descriptions survive the wrapping
    assert registry.describe()[1]["description"].startswith("Book one seat")
