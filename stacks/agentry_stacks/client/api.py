"""``AgentsClient``: the HTTP API's routes as methods, each request signed with SigV4.

Signing is botocore's (``SigV4Auth``, service ``execute-api``, the target's region), with
credentials from the usual chain (environment, profile, SSO, instance role...) unless given::

    client = AgentsClient(resolve_target(url="https://abc.execute-api.us-east-1.amazonaws.com"))
    agent_id = client.start("Book a flight from New York to San Francisco")["agentId"]
    client.get(agent_id)["status"]
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, ReadOnlyCredentials
from botocore.exceptions import BotoCoreError

from agentry_stacks.client.errors import ApiError, TargetError, UsageError
from agentry_stacks.client.target import LOCAL_PORT, SERVICE, Target, resolve_target
from agentry_stacks.client.transport import HttpRequest, Transport, UrllibTransport

__all__ = [
    "AgentsClient",
    "Decision",
    "connect",
    "default_credentials",
    "default_region",
    "sign",
]

_USER_AGENT = "agentry-cli"


@dataclass(frozen=True)
class Decision:
    """A person's decision on one held tool call (``POST /agents/{id}/approvals``)."""

    tool_use_id: str
    approve: bool
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The decision as the API reads it."""
        body: dict[str, Any] = {"toolUseId": self.tool_use_id, "approve": self.approve}
        if self.reason:
            body["reason"] = self.reason
        return body


def default_credentials(profile: str | None = None) -> Credentials:
    """Credentials from the usual chain (of ``profile`` if given); ``TargetError`` if none."""
    try:
        credentials = boto3.Session(profile_name=profile).get_credentials()
    except BotoCoreError as exc:  # an unknown profile, an expired SSO token, a bad config
        raise TargetError(f"AWS credentials: {exc}") from exc
    if credentials is None:
        raise TargetError(
            "no AWS credentials found (environment, --profile, ~/.aws, SSO or instance role); "
            "for --local, export the key `agentry local serve` printed"
        )
    return credentials


def default_region(profile: str | None = None) -> str | None:
    """The region the AWS config names (``AWS_REGION``, the profile's), if any."""
    try:
        return boto3.Session(profile_name=profile).region_name
    except BotoCoreError as exc:
        raise TargetError(f"AWS config: {exc}") from exc


def sign(
    request: HttpRequest, credentials: Credentials | ReadOnlyCredentials, region: str
) -> HttpRequest:
    """``request`` with the headers SigV4 adds for ``execute-api`` in ``region``.

    The ``Host`` header is set from the URL as written, so what is signed is what is sent.
    """
    headers = {**request.headers, "Host": urlsplit(request.url).netloc}
    aws = AWSRequest(method=request.method, url=request.url, data=request.body, headers=headers)
    SigV4Auth(credentials, SERVICE, region).add_auth(aws)
    return HttpRequest(request.method, request.url, dict(aws.headers.items()), request.body)


class AgentsClient:
    """The agent routes of one API; see the module doc.

    ``credentials`` default to the usual chain (``profile``), read again for every request
    so refreshed credentials are used; ``transport`` defaults to :class:`UrllibTransport`.
    """

    def __init__(
        self,
        target: Target,
        *,
        credentials: Credentials | ReadOnlyCredentials | None = None,
        profile: str | None = None,
        transport: Transport | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.target = target
        self._credentials = credentials if credentials is not None else default_credentials(profile)
        self._transport = transport or UrllibTransport(timeout=timeout)

    # --- one request ------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Send a signed request; the decoded JSON answer, or ``ApiError`` for an error status."""
        url = self.target.url_for(path)
        if query:
            # RFC 3986 encoding (%20, not +), as SigV4's canonical query string has it.
            url += "?" + urlencode(dict(query), quote_via=quote, safe="-_.~")
        sent = {"Accept": "application/json", "User-Agent": _USER_AGENT, **(headers or {})}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        signed = sign(HttpRequest(method, url, sent, data), self._frozen(), self.target.region)
        answer = self._transport.send(signed)
        decoded = _decode(answer.body)
        if not 200 <= answer.status < 300:
            raise ApiError(method, path, answer.status, decoded)
        return decoded

    def _frozen(self) -> Credentials | ReadOnlyCredentials:
        # Refreshable credentials (SSO, assumed roles) are read once per request, so the
        # access key, secret and token always belong together.
        freeze = getattr(self._credentials, "get_frozen_credentials", None)
        return freeze() if callable(freeze) else self._credentials

    # --- the routes -------------------------------------------------------------------------

    def start(
        self,
        goal: str,
        *,
        prompt: str | None = None,
        agent: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """``POST /agents``: start an agent; ``{"agentId", "agent", "status"}``."""
        body: dict[str, Any] = {"goal": goal}
        if prompt is not None:
            body["prompt"] = prompt
        if agent is not None:
            body["agent"] = agent
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return dict(self.request("POST", "/agents", body, headers=headers))

    def get(self, agent_id: str) -> dict[str, Any]:
        """``GET /agents/{id}``: the agent (status, plan, history in view, answer, metadata)."""
        return dict(self.request("GET", f"/agents/{_segment(agent_id)}"))

    def list(
        self, *, status: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> dict[str, Any]:
        """``GET /agents``: one page of the caller's agents, newest first."""
        query = _query(status=status, limit=limit, cursor=cursor)
        return dict(self.request("GET", "/agents", query=query))

    def messages(
        self, agent_id: str, *, limit: int | None = None, cursor: str | None = None
    ) -> dict[str, Any]:
        """``GET /agents/{id}/messages``: one page of the agent's messages, oldest first."""
        query = _query(limit=limit, cursor=cursor)
        return dict(self.request("GET", f"/agents/{_segment(agent_id)}/messages", query=query))

    def resume(self, agent_id: str, instruction: str) -> dict[str, Any]:
        """``POST /agents/{id}/resume``: give an agent waiting for a person an instruction."""
        body = {"instruction": instruction}
        return dict(self.request("POST", f"/agents/{_segment(agent_id)}/resume", body))

    def cancel(self, agent_id: str, *, reason: str | None = None) -> dict[str, Any]:
        """``POST /agents/{id}/cancel``: cancel an agent that has not ended."""
        body = {"reason": reason} if reason else None
        return dict(self.request("POST", f"/agents/{_segment(agent_id)}/cancel", body))

    def approvals(self, agent_id: str) -> dict[str, Any]:
        """``GET /agents/{id}/approvals``: the held calls, with their inputs and decisions."""
        return dict(self.request("GET", f"/agents/{_segment(agent_id)}/approvals"))

    def decide(self, agent_id: str, decisions: Sequence[Decision]) -> dict[str, Any]:
        """``POST /agents/{id}/approvals``: record decisions; the agent acts once all are in."""
        body = {"decisions": [d.to_json() for d in decisions]}
        return dict(self.request("POST", f"/agents/{_segment(agent_id)}/approvals", body))

    def decide_pending(
        self, agent_id: str, *, approve: bool, reason: str | None = None
    ) -> dict[str, Any]:
        """Approve (or reject) every call that still waits; ``UsageError`` if none does."""
        view = self.approvals(agent_id)
        pending = [c["toolUseId"] for c in view.get("calls", []) if c.get("decision") == "PENDING"]
        if not pending:
            raise UsageError(f"{agent_id} is {view.get('status')}: no call waits for a decision")
        return self.decide(agent_id, [Decision(p, approve, reason) for p in pending])


def _segment(value: str) -> str:
    # An id is one path segment: a slash or '?' in it must not reach another route.
    return quote(value, safe="")


def _query(**values: object) -> dict[str, str]:
    return {name: str(value) for name, value in values.items() if value is not None}


def _decode(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", errors="replace")


def connect(
    *,
    stack: str | None = None,
    url: str | None = None,
    local: bool = False,
    port: int = LOCAL_PORT,
    region: str | None = None,
    profile: str | None = None,
    project_dir: Path | None = None,
    timeout: float = 30.0,
) -> AgentsClient:
    """A client for the API ``agentry agents`` options name (see :func:`resolve_target`),
    signing with the credentials of the usual chain (``profile``)."""
    configured = None if region is not None else default_region(profile)
    target = resolve_target(
        stack=stack,
        url=url,
        local=local,
        port=port,
        region=region,
        default_region=configured,
        project_dir=project_dir,
    )
    return AgentsClient(target, profile=profile, timeout=timeout)
