"""The api handler's fuzzing world: a moto table and bus, agents in every state, a write hook."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, settings

from agentry_offline.events import LambdaContext, decode_body, http_api_event
from agentry_runtime.contract import PARTITION_KEY, SORT_KEY
from agentry_runtime.handlers import api
from agentry_runtime.identity import caller_of
from agentry_runtime.runtime import Runtime
from agentry_runtime.state import Status

TABLE = "agentry-fuzz-agents"
GOAL = "Book a flight from New York to San Francisco for tomorrow"

#: Bounded (seconds per test); reproducible in CI, a fresh random search anywhere else.
FUZZ = settings(
    max_examples=120,
    deadline=None,
    derandomize=bool(os.environ.get("CI")),
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


_WRITES = ("PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem")


@dataclass
class ApiWorld:
    """The api handler's world: its runtime, and agents in each state.

    ``writes`` lists the DynamoDB writes that succeeded during the last call (an ``after-call``
    hook on the one client the runtime uses): a full scan costs ~50 ms in moto, so tests scan
    only now and then and rely on the hook for every example.
    """

    runtime: Runtime
    dynamodb: Any
    agents: dict[Status, str]
    writes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for operation in _WRITES:
            self.dynamodb.meta.events.register(
                f"after-call.dynamodb.{operation}", self._record_write
            )

    def _record_write(self, http_response: Any, model: Any, **_: Any) -> None:
        if 200 <= http_response.status_code < 300:
            self.writes.append(model.name)

    def call(self, event: dict[str, Any]) -> tuple[int, Any, str]:
        """Invoke the real handler; return status, decoded JSON body (or None), raw body."""
        self.writes.clear()
        response = api.handler(event, LambdaContext(function_name="agentry-api"))
        raw = response.get("body") or ""
        try:
            body = decode_body(response)
        except ValueError:
            body = None
        return response["statusCode"], body, raw

    def snapshot(self) -> list[dict[str, Any]]:
        """Every stored item, in key order."""
        items = self.dynamodb.scan(TableName=TABLE, ConsistentRead=True)["Items"]
        return sorted(items, key=lambda i: (i[PARTITION_KEY]["S"], i[SORT_KEY]["S"]))


def make_agents(runtime: Runtime) -> dict[Status, str]:
    """One agent in each state a request may meet, made through the service and store, owned
    by the caller that signs the fuzzed requests (another caller's agent answers 404 before any
    parameter is read)."""
    service, store = runtime.service, runtime.store
    owner = caller_of(http_api_event("GET", "/agents"))
    agents: dict[Status, str] = {}
    for status in (Status.INITIATED, Status.COMPLETED, Status.NEEDS_HUMAN, Status.CANCELLED):
        header = service.create(GOAL, caller=owner)
        agents[status] = header.agent_id
        if status == Status.CANCELLED:
            service.cancel(header.agent_id)
        elif status != Status.INITIATED:
            # Set the status directly: how the agent got there does not matter to the api.
            store.commit(
                header.version, header.model_copy(update={"status": status, "next_step": None})
            )
    return agents


def request(
    method: str,
    path: str,
    *,
    body: str | None = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An HTTP API v2 event (``invoke.http_api_event``), also for bodies that are not JSON."""
    return http_api_event(method, path, body=body, headers=headers, query=query)
