"""The wire: every AWS request of a chaos world passes here, and faults are injected here.

Each boto3 client of the world is attached to the :class:`Wire`, which replaces moto's own
``before-send`` handler: a request is either forwarded to moto (or, for ``bedrock-runtime``, to
the offline model's endpoint in process) or answered with a fault. The fault is injected where
the network is, so everything above it runs for real: botocore's retry modes and quotas, its
error parsing, the runtime's translation of errors, and the runtime's own retries.

Fault kinds (:class:`FaultKind`), armed as bursts on one target (a client of the runtime, or
the recovery state machine's DynamoDB integration):

- ``THROTTLE`` and ``SERVER_ERROR``: the request is refused and not applied;
- ``LOST`` and ``LOST_5XX``: the request *is applied*, then the caller sees a read timeout or a
  5xx (a lost response): its retry meets its own write;
- ``PARTIAL``: PutEvents answers 200 with ``FailedEntryCount > 0``; the entries it reports
  failed are not on the bus, the others are;
- ``TX_CONFLICT``: TransactWriteItems is cancelled with ``TransactionConflict``.

Where moto departs from DynamoDB in a way faults expose, the wire keeps DynamoDB's behaviour: a
transaction retried with the same ``ClientRequestToken`` is answered as the first time.

The wire also yields to the conductor before every call (``before-parameter-build``: the
interleaving points) and records every event the bus accepted, and whether its publisher saw
the answer.
"""

from __future__ import annotations

import itertools
import json
import random
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.exceptions import ReadTimeoutError
from chaos_conductor import Conductor
from moto.core.botocore_stubber import MockRawResponse
from moto.core.models import botocore_stubber

from agentry_offline.bedrock import FakeBedrockServer


class FaultKind(StrEnum):
    """What a faulty request does (see the module doc)."""

    THROTTLE = "throttle"
    SERVER_ERROR = "5xx"
    LOST = "lost response"
    LOST_5XX = "applied, answered 5xx"
    PARTIAL = "partial failure"
    TX_CONFLICT = "transaction conflict"


class Target(StrEnum):
    """Who makes a request: the runtime's clients, recovery's integration, or the harness."""

    DYNAMODB = "dynamodb"
    EVENTS = "events"
    SQS = "sqs"
    BEDROCK = "bedrock"
    RECOVERY = "recovery"
    HARNESS = "harness"


#: Error code and status of a refused request, per target and kind.
_ERRORS: dict[tuple[Target, FaultKind], tuple[int, str]] = {
    (Target.DYNAMODB, FaultKind.THROTTLE): (400, "ProvisionedThroughputExceededException"),
    (Target.DYNAMODB, FaultKind.SERVER_ERROR): (500, "InternalServerError"),
    (Target.EVENTS, FaultKind.THROTTLE): (400, "ThrottlingException"),
    (Target.EVENTS, FaultKind.SERVER_ERROR): (500, "InternalException"),
    (Target.SQS, FaultKind.THROTTLE): (400, "ThrottlingException"),
    (Target.SQS, FaultKind.SERVER_ERROR): (500, "InternalError"),
    (Target.BEDROCK, FaultKind.THROTTLE): (429, "ThrottlingException"),
    (Target.BEDROCK, FaultKind.SERVER_ERROR): (503, "ServiceUnavailableException"),
    (Target.RECOVERY, FaultKind.THROTTLE): (400, "ProvisionedThroughputExceededException"),
    (Target.RECOVERY, FaultKind.SERVER_ERROR): (500, "InternalServerError"),
}


@dataclass
class Burst:
    """The next ``remaining`` matching requests of ``target`` fail with ``kind``."""

    target: Target
    kind: FaultKind
    remaining: int
    operation: str | None = None
    #: ``PARTIAL`` only: the share of entries that fail (1.0: an outage that answers 200).
    share: float = 0.5

    def matches(self, target: Target, operation: str) -> bool:
        """Whether this burst applies to a request."""
        if target != self.target or self.remaining <= 0:
            return False
        if self.operation is not None and operation != self.operation:
            return False
        if self.kind == FaultKind.PARTIAL:
            return operation == "PutEvents"
        if self.kind == FaultKind.TX_CONFLICT:
            return operation == "TransactWriteItems"
        return True


@dataclass(frozen=True)
class Delivery:
    """One event the bus accepted."""

    detail_type: str
    detail: dict[str, Any]
    #: The actor whose request put it there.
    actor: str
    #: Its publisher never saw the answer (a lost response): a retry may put it again.
    lost: bool


class Trace:
    """What happened, in order: printed with the seed when an invariant breaks."""

    def __init__(self, clock: Any) -> None:
        self.clock = clock
        self.lines: list[str] = []

    def note(self, text: str) -> None:
        """Add one line, stamped with the virtual time."""
        self.lines.append(f"{self.clock.now() - self.clock.start:10.3f} {text}")

    def tail(self, count: int) -> str:
        """The last ``count`` lines."""
        return "\n".join(self.lines[-count:])


class Wire:
    """Forwards or faults every request of the world's clients (see the module doc)."""

    def __init__(
        self, conductor: Conductor, bedrock: FakeBedrockServer, trace: Trace, seed: int
    ) -> None:
        self.conductor = conductor
        self.bedrock = bedrock
        self.trace = trace
        self.rng = random.Random(seed)
        self.bursts: list[Burst] = []
        self.deliveries: list[Delivery] = []
        self.injected: Counter[str] = Counter()
        self._ids = itertools.count(1)
        self._transactions: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self._share = 0.5
        #: Conditional writes that found the item otherwise (concurrency, not faults).
        self.conflicts = 0

    def attach(self, client: Any, target: Target) -> Any:
        """Route ``client``'s requests through the wire; returns the client."""
        events = client.meta.events
        events.unregister("before-send", botocore_stubber)

        def send(request: AWSPreparedRequest, event_name: str, **_: Any) -> AWSResponse:
            return self._send(target, request, event_name)

        def before_call(model: Any, params: dict[str, Any], **_: Any) -> None:
            # The call's own parameters (before serialisation): the label names what it touches.
            self.conductor.yield_point(_label(model, params), params)

        events.register("before-send", send)
        events.register("before-parameter-build", before_call)
        return client

    def arm(self, burst: Burst) -> bool:
        """Arm a burst of faults, unless one is pending on the same target (faults stay
        bounded: a run of failures is one burst long, never bursts back to back)."""
        if any(b.target == burst.target for b in self.bursts):
            return False
        self.bursts.append(burst)
        operation = f" {burst.operation}" if burst.operation else ""
        self.trace.note(f"arm {burst.remaining} x {burst.kind} on {burst.target}{operation}")
        return True

    def disarm(self) -> None:
        """Drop every burst not yet spent (the calm after the chaos)."""
        self.bursts.clear()

    # --- requests ---------------------------------------------------------------------------

    def _send(self, target: Target, request: AWSPreparedRequest, event_name: str) -> AWSResponse:
        operation = event_name.rsplit(".", 1)[-1]
        kind = self._take(target, operation)
        if kind == FaultKind.TX_CONFLICT and self._replayed(request):
            kind = None  # DynamoDB answers a retried transaction from its token, first
        if kind is None:
            return self._forward(target, request, event_name, lost=False)
        self.injected[f"{target} {kind}"] += 1
        actor = self.conductor.current
        if actor is not None:
            actor.faults += 1
        self.trace.note(f"  {kind} on {target} {operation}" + (f" ({actor.name})" if actor else ""))
        if kind == FaultKind.PARTIAL:
            return self._partial(request, event_name)
        if kind == FaultKind.TX_CONFLICT:
            return self._transaction_conflict(request)
        if kind in (FaultKind.LOST, FaultKind.LOST_5XX):
            self._forward(target, request, event_name, lost=True)
            if kind == FaultKind.LOST and target != Target.RECOVERY:
                raise ReadTimeoutError(endpoint_url=request.url)
            kind = FaultKind.SERVER_ERROR
        status, code = _ERRORS[(target, kind)]
        return self._error(request, status, code, f"injected {kind}")

    def _replayed(self, request: AWSPreparedRequest) -> bool:
        return json.loads(request.body or b"{}").get("ClientRequestToken") in self._transactions

    def _take(self, target: Target, operation: str) -> FaultKind | None:
        if target == Target.HARNESS:
            return None
        for burst in self.bursts:
            if burst.matches(target, operation):
                burst.remaining -= 1
                if burst.remaining == 0:
                    self.bursts.remove(burst)
                self._share = burst.share
                return burst.kind
        return None

    def _forward(
        self, target: Target, request: AWSPreparedRequest, event_name: str, *, lost: bool
    ) -> AWSResponse:
        if target == Target.BEDROCK:
            status, headers, body = self.bedrock.handle(
                urlsplit(request.url).path, request.body or b""
            )
            headers = {**headers, "x-amzn-RequestId": self._request_id()}
            return AWSResponse(request.url, status, headers, MockRawResponse(body))
        token = None
        if event_name.endswith(".TransactWriteItems"):
            # DynamoDB makes a transaction idempotent on its ClientRequestToken (botocore fills
            # one in, the same for every retry): a retry gets the first answer, and nothing is
            # applied twice. moto ignores the token, so the wire keeps DynamoDB's promise.
            token = json.loads(request.body or b"{}").get("ClientRequestToken")
            if token in self._transactions:
                status, headers, body = self._transactions[token]
                return AWSResponse(request.url, status, headers, MockRawResponse(body))
        response = botocore_stubber(event_name=event_name, request=request)
        if response is None:
            raise RuntimeError(f"moto does not answer {event_name} at {request.url}")
        if token is not None:
            self._transactions[token] = (
                response.status_code,
                dict(response.headers),
                response.content,
            )
        if event_name.endswith(".PutEvents"):
            self._note_deliveries(request, response, lost=lost)
        elif response.status_code == 400 and b"ConditionalCheckFailed" in (response.content or b""):
            self.conflicts += 1  # not injected: the writers' own races
        return response

    def _note_deliveries(
        self, request: AWSPreparedRequest, response: AWSResponse, *, lost: bool
    ) -> None:
        entries = json.loads(request.body or b"{}").get("Entries", [])
        results = json.loads(response.content or b"{}").get("Entries", [])
        actor = self.conductor.current.name if self.conductor.current else "-"
        for entry, result in zip(entries, results, strict=False):
            if result.get("EventId") and not result.get("ErrorCode"):
                self.deliveries.append(
                    Delivery(entry["DetailType"], json.loads(entry["Detail"]), actor, lost)
                )

    def _partial(self, request: AWSPreparedRequest, event_name: str) -> AWSResponse:
        """PutEvents answers 200, some entries failed (those are not on the bus)."""
        body = json.loads(request.body or b"{}")
        entries = body.get("Entries", [])
        failing = {i for i in range(len(entries)) if self.rng.random() < self._share}
        failing = failing or {self.rng.randrange(len(entries))}
        kept = [e for i, e in enumerate(entries) if i not in failing]
        accepted: list[dict[str, Any]] = []
        if kept:
            subset = AWSPreparedRequest(
                method=request.method,
                url=request.url,
                headers=request.headers,
                body=json.dumps({**body, "Entries": kept}).encode(),
                stream_output=False,
            )
            forwarded = self._forward(Target.EVENTS, subset, event_name, lost=False)
            accepted = json.loads(forwarded.content or b"{}").get("Entries", [])
        answers = iter(accepted)
        results = [
            {"ErrorCode": "InternalFailure", "ErrorMessage": "injected partial failure"}
            if i in failing
            else next(answers)
            for i in range(len(entries))
        ]
        payload = {"FailedEntryCount": len(failing), "Entries": results}
        return self._response(request, 200, payload)

    def _transaction_conflict(self, request: AWSPreparedRequest) -> AWSResponse:
        items = json.loads(request.body or b"{}").get("TransactItems", [])
        reasons = [{"Code": "TransactionConflict", "Message": "injected"}] + [
            {"Code": "None"} for _ in items[1:]
        ]
        payload = {
            "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
            "message": "Transaction cancelled, please refer cancellation reasons for specific "
            "reasons [TransactionConflict]",
            "CancellationReasons": reasons,
        }
        return self._response(request, 400, payload, code="TransactionCanceledException")

    def _error(self, request: AWSPreparedRequest, status: int, code: str, message: str) -> Any:
        return self._response(request, status, {"__type": code, "message": message}, code=code)

    def _response(
        self,
        request: AWSPreparedRequest,
        status: int,
        payload: dict[str, Any],
        *,
        code: str | None = None,
    ) -> AWSResponse:
        headers = {"content-type": "application/x-amz-json-1.0", "x-amzn-RequestId": ""}
        headers["x-amzn-RequestId"] = self._request_id()
        if code is not None:
            headers["x-amzn-ErrorType"] = code
        raw = MockRawResponse(json.dumps(payload).encode())
        return AWSResponse(request.url, status, headers, raw)

    def _request_id(self) -> str:
        return f"chaos-{next(self._ids):08d}"


def _label(model: Any, params: dict[str, Any]) -> str:
    """``dynamodb.PutItem MSG`` : the service, the operation, and the item kind it touches."""
    service = model.service_model.service_id.hyphenize()
    key = params.get("Key") or params.get("Item") or {}
    partition = key.get("pk", {}).get("S", "") if isinstance(key, dict) else ""
    sort_key = key.get("sk", {}).get("S", "") if isinstance(key, dict) else ""
    if partition and not partition.startswith("AGENT#"):
        sort_key = partition  # Powertools' idempotency records
    kind = sort_key.split("#", 1)[0] if sort_key else ""
    return f"{service}.{model.name}" + (f" {kind}" if kind else "")
