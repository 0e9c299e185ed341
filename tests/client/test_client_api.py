"""``AgentsClient`` over an in-memory transport: what it sends (signed by botocore for
execute-api in the target's region) and how it reads answers and errors."""

from __future__ import annotations

import json
import socket
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.credentials import Credentials

import agentry_stacks.client as client_package
from agentry_stacks.client import (
    AgentsClient,
    ApiError,
    Decision,
    Target,
    TargetError,
    TransportError,
    UsageError,
)
from agentry_stacks.client.transport import HttpRequest, HttpResponse

TARGET = Target("https://abc123.execute-api.eu-west-1.amazonaws.com", "eu-west-1")
CREDENTIALS = Credentials("AKIAEXAMPLE000000001", "secret", "session-token")
AGENT = "agent-" + "a" * 32


class MockTransport:
    """Answers each request with the next canned response, and keeps what was sent."""

    def __init__(self, *answers: tuple[int, Any]) -> None:
        self.answers = list(answers)
        self.sent: list[HttpRequest] = []

    def send(self, request: HttpRequest) -> HttpResponse:
        self.sent.append(request)
        status, body = self.answers.pop(0)
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return HttpResponse(status, data)


def _client(*answers: tuple[int, Any]) -> tuple[AgentsClient, MockTransport]:
    transport = MockTransport(*answers)
    return AgentsClient(TARGET, credentials=CREDENTIALS, transport=transport), transport


def test_requests_are_signed_for_execute_api_in_the_targets_region() -> None:
    client, transport = _client((202, {"agentId": AGENT, "status": "INITIATED"}))
    # WHEN an agent is started with an idempotency key
    answer = client.start("Book a flight", agent="flights", idempotency_key="k-1")
    # THEN the body, headers and SigV4 scope are what API Gateway's IAM authorizer checks
    assert answer["agentId"] == AGENT
    (sent,) = transport.sent
    assert (sent.method, sent.url) == ("POST", TARGET.url + "/agents")
    assert json.loads(sent.body or b"") == {"goal": "Book a flight", "agent": "flights"}
    headers = {k.lower(): v for k, v in sent.headers.items()}
    assert headers["host"] == "abc123.execute-api.eu-west-1.amazonaws.com"
    assert headers["idempotency-key"] == "k-1"
    assert headers["x-amz-security-token"] == "session-token"
    authorization = headers["authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE000000001/")
    assert "/eu-west-1/execute-api/aws4_request" in authorization
    signed = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    assert {"host", "x-amz-date", "idempotency-key", "content-type"} <= set(signed)


def test_query_values_are_rfc3986_encoded_and_ids_stay_one_segment() -> None:
    client, transport = _client((200, {"agents": []}), (200, {"messages": []}))
    client.list(status="COMPLETED", cursor="a b+c/=")
    client.messages("../agents", limit=5)
    listed, paged = transport.sent
    assert urlsplit(listed.url).query == "status=COMPLETED&cursor=a%20b%2Bc%2F%3D"
    assert urlsplit(paged.url).path == "/agents/..%2Fagents/messages"


def test_decisions_and_decide_pending() -> None:
    pending = {
        "agentId": AGENT,
        "status": "AWAITING_APPROVAL",
        "calls": [
            {"toolUseId": "t1", "decision": "PENDING"},
            {"toolUseId": "t0", "decision": "APPROVED"},
            {"toolUseId": "t2", "decision": "PENDING"},
        ],
    }
    client, transport = _client((200, pending), (200, {"calls": []}))
    # WHEN every pending call is rejected with a reason
    client.decide_pending(AGENT, approve=False, reason="not now")
    # THEN only the pending ones are decided
    posted = json.loads(transport.sent[1].body or b"")
    assert posted == {
        "decisions": [
            {"toolUseId": "t1", "approve": False, "reason": "not now"},
            {"toolUseId": "t2", "approve": False, "reason": "not now"},
        ]
    }
    assert Decision("t", True).to_json() == {"toolUseId": "t", "approve": True}
    # AND when nothing waits, nothing is posted
    client, transport = _client((200, {"status": "COMPLETED", "calls": []}))
    with pytest.raises(UsageError, match="is COMPLETED: no call waits"):
        client.decide_pending(AGENT, approve=True)
    assert len(transport.sent) == 1


def test_errors_name_the_field_or_say_what_api_gateway_said() -> None:
    invalid = {
        "error": {
            "code": "ValidationError",
            "message": "goal: required field is missing",
            "fields": [{"field": "goal", "reason": "required field is missing"}],
        }
    }
    client, _ = _client(
        (400, invalid), (403, {"message": "Forbidden"}), (502, b"<html>Bad Gateway</html>")
    )
    with pytest.raises(ApiError) as bad:
        client.request("POST", "/agents", {})
    assert bad.value.fields == [{"field": "goal", "reason": "required field is missing"}]
    assert str(bad.value) == "POST /agents: 400 ValidationError: goal: required field is missing"
    with pytest.raises(ApiError, match=r"GET /agents: 403 Forbidden$"):
        client.list()
    with pytest.raises(ApiError, match="502 <html>Bad Gateway</html>") as gateway:
        client.list()
    assert gateway.value.code is None


def test_no_credentials_is_a_target_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    # No instance metadata either: this machine must not be asked over the network.
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    with pytest.raises(TargetError, match="no AWS credentials found"):
        AgentsClient(TARGET, transport=MockTransport())
    with pytest.raises(TargetError, match=r"AWS credentials: .*nobody"):
        AgentsClient(TARGET, profile="nobody", transport=MockTransport())


def test_the_default_transport_maps_a_refused_connection() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = AgentsClient(Target(f"http://127.0.0.1:{port}", "us-east-1"), credentials=CREDENTIALS)
    with pytest.raises(TransportError, match=r"cannot reach 127.0.0.1:.*connection refused"):
        client.list()


def test_the_public_names() -> None:
    assert set(client_package.__all__) == {
        "LOCAL_PORT",
        "SERVICE",
        "AgentsClient",
        "ApiError",
        "ClientError",
        "Decision",
        "Target",
        "TargetError",
        "TimelineEvent",
        "TimelineKind",
        "TransportError",
        "UsageError",
        "WatchTimeoutError",
        "Watcher",
        "connect",
        "default_credentials",
        "default_region",
        "exit_code_for",
        "resolve_target",
        "sign",
    }
    assert all(hasattr(client_package, name) for name in client_package.__all__)
