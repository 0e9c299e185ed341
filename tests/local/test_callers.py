"""Callers own their agents, on the local environment of the prod stack (it names an operator).

Each request is signed by a principal (the IAM authorizer context API Gateway passes): two
teams' roles, and an on-call role whose IAM Identity Center path the prod config names.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from agentry_stacks.local import LocalEnvironment

GOAL = "Book a flight from New York to San Francisco for tomorrow"
ALICE = "arn:aws:sts::123456789012:assumed-role/team-a/alice"
ALICE_AGAIN = "arn:aws:sts::123456789012:assumed-role/team-a/alice-on-another-laptop"
BOB = "arn:aws:sts::123456789012:assumed-role/team-b/bob"
# The prod config names the role with its path (aws-reserved/sso.amazonaws.com/); sessions
# of it show only its name.
ON_CALL = (
    "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_AgentryOperator_0123456789abcdef/carol"
)


def _items(env: LocalEnvironment, agent_id: str) -> list[dict[str, Any]]:
    client = boto3.client("dynamodb", region_name=env.graph.region())
    return client.query(
        TableName=env.resources.table_name,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"AGENT#{agent_id}"}},
        ConsistentRead=True,
    )["Items"]


def _start(env: LocalEnvironment, caller: str, key: str | None = None) -> str:
    headers = {"Idempotency-Key": key} if key else None
    status, body = env.call("POST", "/agents", {"goal": GOAL}, headers=headers, caller=caller)
    assert status == 202, body
    return str(body["agentId"])


def test_another_caller_gets_404_on_every_route_and_changes_nothing(
    prod_graph: dict[str, Any],
) -> None:
    with LocalEnvironment(graph=prod_graph) as env:
        # GIVEN Alice's agent, waiting for her approval of its booking
        agent_id = _start(env, ALICE)
        env.run_until_idle()
        assert env.call("GET", f"/agents/{agent_id}", caller=ALICE)[1]["status"] == (
            "AWAITING_APPROVAL"
        )
        before = _items(env, agent_id)
        unknown = "agent-" + "0" * 32
        # WHEN Bob calls every route on it
        for method, path, body in [
            ("GET", "/agents/{id}", None),
            ("GET", "/agents/{id}/messages", None),
            ("POST", "/agents/{id}/messages", {"text": "and a hotel"}),
            ("POST", "/agents/{id}/resume", {"instruction": "go"}),
            ("POST", "/agents/{id}/cancel", None),
            ("GET", "/agents/{id}/approvals", None),
            (
                "POST",
                "/agents/{id}/approvals",
                {"decisions": [{"toolUseId": "x", "approve": True}]},
            ),
            ("DELETE", "/agents/{id}", None),
        ]:
            status, answer = env.call(method, path.replace("{id}", agent_id), body, caller=BOB)
            # THEN each is a 404, word for word what an agent that does not exist gets
            assert status == 404, (method, path, answer)
            _, missing = env.call(method, path.replace("{id}", unknown), body, caller=BOB)
            assert answer["error"]["code"] == missing["error"]["code"] == "AgentNotFound"
        # AND nothing of Alice's agent changed
        assert _items(env, agent_id) == before
        # AND another session of Alice's role is Alice
        assert env.call("GET", f"/agents/{agent_id}", caller=ALICE_AGAIN)[0] == 200


def test_idempotency_keys_are_each_callers_own(prod_graph: dict[str, Any]) -> None:
    with LocalEnvironment(graph=prod_graph) as env:
        # GIVEN Alice's agent created with a key
        alices = _start(env, ALICE, key="order-42")
        # WHEN Bob sends the same body with the same key
        bobs = _start(env, BOB, key="order-42")
        # THEN Bob got an agent of his own, and Alice's retry still returns hers
        assert bobs != alices
        assert _start(env, ALICE, key="order-42") == alices
        assert env.call("GET", f"/agents/{bobs}", caller=BOB)[0] == 200
        assert env.call("GET", f"/agents/{bobs}", caller=ALICE)[0] == 404


def test_each_caller_lists_only_their_agents_and_an_operator_acts_on_all(
    prod_graph: dict[str, Any],
) -> None:
    with LocalEnvironment(graph=prod_graph) as env:
        # GIVEN two agents of Alice and one of Bob
        alices = [_start(env, ALICE), _start(env, ALICE)]
        bobs = _start(env, BOB)
        env.run_until_idle()
        # WHEN each lists their agents THEN each sees their own, newest first
        _, listed = env.call("GET", "/agents", caller=ALICE)
        assert [a["agentId"] for a in listed["agents"]] == alices[::-1]
        _, listed = env.call("GET", "/agents", caller=BOB)
        assert [a["agentId"] for a in listed["agents"]] == [bobs]
        _, listed = env.call("GET", "/agents", query={"status": "CANCELLED"}, caller=ALICE)
        assert listed["agents"] == []
        # AND the operator reads both callers' agents, approves Bob's booking and cancels Alice's
        for agent_id in (*alices, bobs):
            assert env.call("GET", f"/agents/{agent_id}", caller=ON_CALL)[0] == 200
        _, pending = env.call("GET", f"/agents/{bobs}/approvals", caller=ON_CALL)
        decisions = [{"toolUseId": c["toolUseId"], "approve": True} for c in pending["calls"]]
        status, decided = env.call(
            "POST", f"/agents/{bobs}/approvals", {"decisions": decisions}, caller=ON_CALL
        )
        assert status == 200, decided
        assert [c["decidedBy"] for c in decided["calls"]] == [
            "arn:aws:iam::123456789012:role/AWSReservedSSO_AgentryOperator_0123456789abcdef"
        ]
        assert env.call("POST", f"/agents/{alices[0]}/cancel", caller=ON_CALL)[0] == 200
        env.run_until_idle()
        assert env.agent_as(bobs, BOB)["status"] == "COMPLETED"
        assert len(env.bookings(bobs)) == 1
        # AND the operator's own list is empty: listing is per caller
        assert env.call("GET", "/agents", caller=ON_CALL)[1]["agents"] == []


def test_an_unsigned_request_is_refused(prod_graph: dict[str, Any]) -> None:
    with LocalEnvironment(graph=prod_graph) as env:
        # WHEN a request carries no IAM identity THEN 401 naming the authorization
        status, body = env.call("POST", "/agents", {"goal": GOAL}, caller=None)
        assert status == 401
        assert body["error"]["fields"][0]["field"] == "authorization"


def test_the_owner_deletes_every_item_of_an_agent(prod_graph: dict[str, Any]) -> None:
    with LocalEnvironment(graph=prod_graph) as env:
        # GIVEN Alice's agent waiting for approval (items: header, info, messages, claims)
        agent_id = _start(env, ALICE)
        env.run_until_idle()
        assert len(_items(env, agent_id)) > 3
        # WHEN she deletes it THEN every item is gone and it is unknown from then on
        status, body = env.call("DELETE", f"/agents/{agent_id}", caller=ALICE)
        assert status == 200, body
        assert body["items"] > 3
        assert _items(env, agent_id) == []
        assert env.call("GET", f"/agents/{agent_id}", caller=ALICE)[0] == 404
        env.run_until_idle()  # nothing comes back to life
        assert _items(env, agent_id) == []


@pytest.mark.parametrize("caller", [ALICE, ON_CALL])
def test_the_owner_or_an_operator_may_cancel_and_it_is_recorded(
    prod_graph: dict[str, Any], caller: str
) -> None:
    with LocalEnvironment(graph=prod_graph) as env:
        agent_id = _start(env, ALICE)
        # WHEN the agent is cancelled THEN who did it is on the agent
        assert env.call("POST", f"/agents/{agent_id}/cancel", caller=caller)[0] == 200
        view = env.agent_as(agent_id, ALICE)
        role = caller.split(":assumed-role/")[1].split("/")[0]
        assert view["metadata"]["cancelledBy"] == f"arn:aws:iam::123456789012:role/{role}"
