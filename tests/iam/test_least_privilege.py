"""Least privilege, the other way round: each function's role is wide enough for its code.

Each function's handler runs with the credentials of its own role from the graph, assumed
through STS, with moto's IAM enforcement on (see ``iam_world`` for what moto can and cannot
check). The happy path and the recovery path must pass; a role missing a statement the worker
needs must make them fail.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from iam_world import EnforcedEnvironment, enforced_environment, without_statement

GOAL = "Book a flight from New York to San Francisco for tomorrow"


def _book_a_flight(world: EnforcedEnvironment) -> str:
    """The happy path: start through the api function, run the worker until idle, one booking."""
    env = world.env
    agent_id = env.start(GOAL)
    env.run_until_idle(timeout=60)
    view = env.agent(agent_id)
    assert view["status"] == "COMPLETED", (view["status"], world.denials[:3])
    assert len(env.bookings(agent_id)) == 1
    return agent_id


def test_the_happy_path_passes_with_each_function_as_its_role(dev_graph: dict[str, Any]) -> None:
    # GIVEN the dev stack's functions running as their own roles, IAM enforced
    with enforced_environment(dev_graph) as world:
        # WHEN an agent books a flight THEN it completes with one booking, nothing denied
        _book_a_flight(world)
        assert world.denials == []


def test_enforcement_is_live_a_call_outside_the_role_is_denied(
    dev_graph: dict[str, Any],
) -> None:
    # GIVEN the api function's assumed-role session
    with enforced_environment(dev_graph) as world:
        api = world.session(world.env.api.name).client("dynamodb")
        table = world.env.resources.table_name
        # WHEN it does something its role does not grant (a table scan), under enforcement
        with world.enforcing(), pytest.raises(ClientError) as denied:
            api.scan(TableName=table)
        # THEN moto denies it, while a granted read goes through
        # moto answers a denial with the HTTP status as the error code
        assert denied.value.response["Error"]["Code"] in {"403", "AccessDenied"}
        with world.enforcing():
            api.query(
                TableName=table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": "AGENT#none"}},
            )


def test_the_recovery_path_passes_with_each_function_as_its_role(
    dev_graph: dict[str, Any],
) -> None:
    # GIVEN a booking tool that always fails, every function as its role
    with enforced_environment(dev_graph, failing={"book_flight"}) as world:
        env = world.env
        agent_id = env.start(GOAL)
        # WHEN the agent fails, recovery retries it and gives up
        env.run_until_idle(timeout=120)
        # THEN it waits for a human, who was notified
        assert env.agent(agent_id)["status"] == "NEEDS_HUMAN", world.denials[:3]
        assert any(
            isinstance(n["message"], dict) and n["message"].get("agentId") == agent_id
            for n in env.notifications()
        )
        # AND once the tool works again, the human's resume completes the booking
        world.use_tools()
        env.resume(agent_id, "The booking system is back, book it.")
        env.run_until_idle(timeout=60)
        assert env.agent(agent_id)["status"] == "COMPLETED"
        assert len(env.bookings(agent_id)) == 1
        assert world.denials == []


@pytest.mark.parametrize(
    ("function", "sid"),
    [
        ("worker", "AgentTable"),
        ("announcer", "PublishEvents"),
    ],
)
def test_a_role_missing_a_statement_it_needs_fails_the_happy_path(
    dev_graph: dict[str, Any], function: str, sid: str
) -> None:
    # GIVEN the graph with one statement a function needs removed from its role
    narrowed = without_statement(dev_graph, f"{function}-policy", sid)
    with enforced_environment(narrowed) as world:
        # WHEN the happy path runs THEN it fails, and the reason is a denial of that role
        with pytest.raises(AssertionError):
            _book_a_flight(world)
        assert any(f"{function}-role" in d for d in world.denials), world.denials


def test_an_announcer_that_cannot_claim_announcements_strands_the_recovery_path(
    dev_graph: dict[str, Any],
) -> None:
    # GIVEN the announcer's role without its announcement claims, a booking tool that fails
    narrowed = without_statement(dev_graph, "announcer-policy", "ClaimAnnouncements")
    with enforced_environment(narrowed, failing={"book_flight"}) as world:
        env = world.env
        agent_id = env.start(GOAL)
        # WHEN the agent fails THEN its error is never announced: no recovery, no human
        env.run_until_idle(timeout=60)
        assert env.agent(agent_id)["status"] != "NEEDS_HUMAN"
        assert not env.notifications()
        assert any("announcer-role" in d for d in world.denials), world.denials
