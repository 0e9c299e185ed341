"""``agentry local serve`` with the client: a full run with an approval, two callers, and the
requests API Gateway's IAM authorizer would refuse.

The server runs in-process on a free port of 127.0.0.1 over the prod stack's graph (its flight
agent waits for a person before ``book_flight``); Alice and Bob each have a key.
"""

from __future__ import annotations

import hashlib
import json
import socket
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from served_api import ALICE_KEY, BOB_KEY, Served, serving

from agentry_stacks.client import (
    AgentsClient,
    ApiError,
    Decision,
    TimelineKind,
    UsageError,
    Watcher,
    exit_code_for,
)
from agentry_stacks.local.serve import LocalApiServer
from agentry_stacks.local.signature import KeyTable

GOAL = "Book a flight from New York to San Francisco for tomorrow"


@pytest.fixture(scope="module")
def served(prod_graph_document: dict[str, Any]) -> Iterator[Served]:
    """One server for the module (an environment takes a second to build)."""
    with serving(prod_graph_document) as running:
        yield running


@pytest.fixture(autouse=True)
def _clock_back(served: Served) -> Iterator[None]:
    yield
    served.clock.shift = timedelta()


def _settled_watcher(client: AgentsClient, agent_id: str) -> Watcher:
    """A watcher that must never wait: each request settles the environment first."""

    def no_sleep(_: float) -> None:
        raise AssertionError("the agent was not settled: the server answers settled states")

    return Watcher(client, agent_id, interval=0, sleep=no_sleep)


def _send(served: Served, request: AWSRequest) -> tuple[int, Any]:
    """Send a request exactly as built (signed or not); the status and JSON body."""
    sent = urllib.request.Request(
        request.url, data=request.body, headers=dict(request.headers.items()), method=request.method
    )
    try:
        with urllib.request.urlopen(sent, timeout=30) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read() or b"null")


def _signed(
    served: Served,
    body: dict[str, Any] | None = None,
    *,
    service: str = "execute-api",
    region: str | None = None,
    secret: str = ALICE_KEY.secret_access_key,
    path: str = "/agents",
) -> AWSRequest:
    data = json.dumps(body).encode() if body is not None else None
    request = AWSRequest(
        method="POST" if body is not None else "GET",
        url=served.server.url + path,
        data=data,
        headers={"Content-Type": "application/json"} if data else {},
    )
    credentials = Credentials(ALICE_KEY.access_key_id, secret)
    SigV4Auth(credentials, service, region or served.server.region).add_auth(request)
    return request


def test_a_full_run_with_an_approval_through_the_client(served: Served) -> None:
    alice = served.client(ALICE_KEY)
    # GIVEN an agent Alice starts through the server
    started = alice.start(GOAL)
    agent_id = started["agentId"]
    assert started["status"] == "INITIATED"
    # WHEN she watches it
    watcher = _settled_watcher(alice, agent_id)
    events = list(watcher.events())
    # THEN its timeline shows the turns up to the booking it wants, then the wait: exit 3
    assert watcher.status == "AWAITING_APPROVAL"
    assert exit_code_for(watcher.status) == 3
    assert events[-1].kind is TimelineKind.STATUS
    uses = [
        block["toolUse"]["name"]
        for event in events
        if event.kind is TimelineKind.MESSAGE
        for block in event.message["content"]
        if "toolUse" in block
    ]
    assert uses == ["get_flight_info", "book_flight"]
    seqs = [e.message["seq"] for e in events if e.kind is TimelineKind.MESSAGE]
    assert seqs == sorted(set(seqs))
    # AND nothing is booked until she decides
    with served.server.lock:
        assert served.env.bookings(agent_id) == []
    (held,) = alice.approvals(agent_id)["calls"]
    assert (held["toolName"], held["decision"]) == ("book_flight", "PENDING")
    # WHEN she approves every held call and watches on
    decided = alice.decide_pending(agent_id, approve=True)
    assert [c["decision"] for c in decided["calls"]] == ["APPROVED"]
    later = list(watcher.events())
    # THEN the booking happens, the new turns only are shown, and the agent completes: exit 0
    assert watcher.status == "COMPLETED"
    assert exit_code_for(watcher.status) == 0
    assert later[-1].previous == "AWAITING_APPROVAL"
    new_seqs = [e.message["seq"] for e in later if e.kind is TimelineKind.MESSAGE]
    assert new_seqs
    assert min(new_seqs) > max(seqs)
    with served.server.lock:
        assert len(served.env.bookings(agent_id)) == 1
    view = alice.get(agent_id)
    assert view["answer"]
    assert [e["status"] for e in view["plan"]] == ["COMPLETED", "COMPLETED"]
    # AND approving again asks nothing of the API: nothing waits
    with pytest.raises(UsageError, match="no call waits"):
        alice.decide_pending(agent_id, approve=True)


def test_a_rejection_reaches_the_agent_with_its_reason(served: Served) -> None:
    alice = served.client(ALICE_KEY)
    agent_id = alice.start(GOAL)["agentId"]
    (held,) = alice.approvals(agent_id)["calls"]
    # WHEN Alice rejects the booking by its id, saying why
    answer = alice.decide(agent_id, [Decision(held["toolUseId"], False, "too expensive")])
    # THEN it is recorded as hers, and nothing is booked
    (call,) = answer["calls"]
    assert (call["decision"], call["reason"]) == ("REJECTED", "too expensive")
    assert call["decidedBy"] == "arn:aws:iam::123456789012:role/team-a"
    watcher = _settled_watcher(alice, agent_id)
    list(watcher.events())
    with served.server.lock:
        assert served.env.bookings(agent_id) == []


def test_two_keys_are_two_callers(served: Served) -> None:
    alice, bob = served.client(ALICE_KEY), served.client(BOB_KEY)
    # GIVEN Alice's agent
    agent_id = alice.start(GOAL)["agentId"]
    # WHEN Bob reads or acts on it
    for call in (
        lambda: bob.get(agent_id),
        lambda: bob.approvals(agent_id),
        lambda: bob.decide_pending(agent_id, approve=True),
        lambda: bob.cancel(agent_id),
    ):
        with pytest.raises(ApiError) as refused:
            call()
        # THEN it does not exist for him: 404 naming the id, as for an unknown agent
        assert refused.value.status == 404
        assert refused.value.code == "AgentNotFound"
        assert refused.value.fields == [{"field": "id", "reason": "no such agent"}]
    # AND each lists only their own agents
    assert agent_id in {a["agentId"] for a in alice.list(limit=100)["agents"]}
    assert agent_id not in {a["agentId"] for a in bob.list(limit=100)["agents"]}
    assert alice.get(agent_id)["status"] == "AWAITING_APPROVAL"


def test_a_deleted_agent_stops_nothing_else(served: Served) -> None:
    alice = served.client(ALICE_KEY)
    # GIVEN an agent the server follows, deleted by its owner
    agent_id = alice.start(GOAL)["agentId"]
    assert alice.request("DELETE", f"/agents/{agent_id}")["deleted"] is True
    with pytest.raises(ApiError) as gone:
        alice.get(agent_id)
    assert gone.value.status == 404
    # WHEN another agent starts
    other = alice.start(GOAL)["agentId"]
    # THEN the environment still runs it to its wait
    assert alice.get(other)["status"] == "AWAITING_APPROVAL"


def test_the_query_string_is_signed_as_sent(served: Served) -> None:
    alice = served.client(ALICE_KEY)
    # WHEN a query value needs percent-encoding (space, +, /, =)
    with pytest.raises(ApiError) as refused:
        alice.list(cursor="not a cursor+/=")
    # THEN the signature verifies and the api function judges the value: 400 naming it
    assert refused.value.status == 400
    assert refused.value.fields[0]["field"] == "cursor"
    assert alice.list(status="COMPLETED", limit=5)["agents"] is not None


def _agents_of_alice(served: Served) -> list[str]:
    return [a["agentId"] for a in served.client(ALICE_KEY).list(limit=100)["agents"]]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        pytest.param({"service": "lambda"}, "correct service: 'execute-api'", id="other-service"),
        pytest.param({"region": "eu-west-1"}, "valid region, not 'eu-west-1'", id="other-region"),
        pytest.param({"secret": "not-alice-secret"}, "does not match", id="wrong-secret"),
    ],
)
def test_a_request_signed_otherwise_is_refused(
    served: Served, change: dict[str, Any], reason: str
) -> None:
    before = _agents_of_alice(served)
    # WHEN Alice's key id signs a start for another service or region, or with a wrong secret
    status, body = _send(served, _signed(served, {"goal": GOAL}, **change))
    # THEN API Gateway's 403 answers, saying why, and no agent was started
    assert status == 403
    assert set(body) == {"message"}
    assert reason in body["message"]
    assert _agents_of_alice(served) == before


def test_the_client_signing_for_another_region_is_refused(served: Served) -> None:
    with pytest.raises(ApiError) as refused:
        served.client(ALICE_KEY, region="us-west-2").start(GOAL)
    assert refused.value.status == 403
    assert "us-west-2" in str(refused.value)


def test_a_tampered_body_is_refused(served: Served) -> None:
    before = _agents_of_alice(served)
    # GIVEN a request Alice signed
    request = _signed(served, {"goal": GOAL})
    # WHEN its body is changed on the way (same length, so only the signature can tell)
    request.data = json.dumps({"goal": GOAL.replace("New York", "Newark!!")}).encode()
    assert len(request.data) == len(json.dumps({"goal": GOAL}).encode())
    status, body = _send(served, request)
    # THEN it is refused
    assert status == 403
    assert "does not match" in body["message"]
    # AND a body whose claimed hash is not its own is refused too
    request = _signed(served, {"goal": GOAL})
    request.headers["X-Amz-Content-SHA256"] = hashlib.sha256(b"other").hexdigest()
    assert _send(served, request)[0] == 403
    assert _agents_of_alice(served) == before


@pytest.mark.parametrize(
    ("authorization", "reason"),
    [
        pytest.param(None, "Missing Authentication Token", id="missing"),
        pytest.param("Bearer abc", "AWS4-HMAC-SHA256", id="other-scheme"),
        pytest.param("AWS4-HMAC-SHA256 garbage", "malformed", id="garbled"),
        pytest.param(
            "AWS4-HMAC-SHA256 Credential=AKIAALICE00000000001/20240101/us-east-1/execute-api/"
            "aws4_request, SignedHeaders=host;x-amz-date, Signature=zz",
            "Signature is malformed",
            id="bad-signature-text",
        ),
    ],
)
def test_a_missing_or_garbled_authorization_is_refused(
    served: Served, authorization: str | None, reason: str
) -> None:
    request = _signed(served, {"goal": GOAL})
    del request.headers["Authorization"]
    if authorization is not None:
        request.headers["Authorization"] = authorization
    status, body = _send(served, request)
    assert status == 403
    assert reason in body["message"]


def test_an_unknown_key_and_a_stale_date_are_refused(served: Served) -> None:
    stranger = KeyTable().add_generated("arn:aws:iam::123456789012:user/mallory")
    # WHEN a key the server does not know signs
    with pytest.raises(ApiError) as refused:
        served.client(stranger).get("agent-" + "0" * 32)
    assert refused.value.status == 403
    assert "not one of this server's keys" in str(refused.value)
    # WHEN the server's clock is six minutes past the signature's date
    served.clock.shift = timedelta(minutes=6)
    with pytest.raises(ApiError) as stale:
        served.client(ALICE_KEY).list()
    assert stale.value.status == 403
    assert "Signature expired" in str(stale.value)
    # AND four minutes is within the skew AWS allows
    served.clock.shift = timedelta(minutes=-4)
    assert served.client(ALICE_KEY).list()["agents"] is not None


def test_unknown_routes_are_404_before_any_signature_check(served: Served) -> None:
    # API Gateway matches the route first: no route, no authorizer
    request = AWSRequest(method="GET", url=served.server.url + "/nowhere")
    assert _send(served, request) == (404, {"message": "Not Found"})
    request = AWSRequest(method="PUT", url=served.server.url + "/agents")
    assert _send(served, request) == (404, {"message": "Not Found"})


def test_the_server_stops_and_releases_its_port(served: Served) -> None:
    # GIVEN a second server over the same environment, with a background tick
    server = LocalApiServer(served.env, served.server.keys, port=0, tick=0.05)
    server.lock = served.server.lock  # one environment, one lock
    server.start()
    port = server.port
    # WHEN it stops (what Ctrl-C does)
    server.stop()
    # THEN the port is free again and the first server still answers
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))
    assert served.client(ALICE_KEY).list()["agents"] is not None
