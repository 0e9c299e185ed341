"""The chaos world: the real loop and store on one moto table, with crashes injected on demand.

Nothing is simulated that the runtime does itself: ``AgentLoop``, ``AgentStore``, the model
client (boto3 ``bedrock-runtime`` against the fake Bedrock endpoint, with standard retries) and
the demo tools all run for real. What the chaos controls is everything around a worker:

- *delivery*: the publisher records events instead of putting them on a bus, and the schedule
  (``chaos_schedule``) plays SQS with them: redelivery, duplicates, reordering, two workers;
- *crashes*: a delivery may carry one ``CrashPoint``; the store and publisher wrappers raise
  ``SimulatedCrash`` when the worker reaches it, as if its process died there;
- *counting*: every tool execution is counted per ``(agent, toolUseId)``, so "executed exactly
  once" is measured, not assumed.
"""

from __future__ import annotations

import functools
import random
import threading
from collections import Counter
from collections.abc import Sequence
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from chaos_recovery import Recovery
from moto.core.botocore_stubber import MockRawResponse
from pydantic import BaseModel
from support.agents import flights_agent
from support.serialized import SerializedClient

from agentry_flights import registry as flights_registry
from agentry_offline.bedrock import FakeBedrockServer
from agentry_offline.model import OfflineModel
from agentry_runtime.agents import AgentCatalog
from agentry_runtime.contract import (
    PARTITION_KEY,
    SORT_KEY,
    DetailType,
    agent_pk,
    table_schema,
    tool_sk,
)
from agentry_runtime.events import Publisher
from agentry_runtime.loop import AgentLoop
from agentry_runtime.service import AgentService
from agentry_runtime.settings import LoopSettings
from agentry_runtime.state import ToolCallStatus, ToolInvocation
from agentry_runtime.store import AgentStore
from agentry_runtime.tools import ToolContext, ToolRegistry

REGION = "us-east-1"
MODEL_ID = "anthropic.claude-3-5-haiku-20241022-v1:0"
#: Short leases: the schedule moves the clock past them instead of waiting.
LEASE_SECONDS = 30


class SimulatedCrash(Exception):  # noqa: N818 - it is a crash, not an error of the code
    """The worker process "died" at an injected crash point."""


class CrashPoint(StrEnum):
    """Where a worker can die between two effects of a step."""

    BEFORE_COMMIT = "before-commit"
    AFTER_COMMIT = "after-commit"  # step committed, follow-up not published
    AFTER_PUBLISH = "after-publish"  # follow-up published, not recorded as published
    AFTER_CLAIM = "after-claim"  # tool call leased, not executed
    AFTER_EXECUTE = "after-execute"  # tool executed, outcome not recorded
    AFTER_FINISH = "after-finish"  # tool outcome recorded, step not committed


class _Crashes(threading.local):
    """The crash point armed for the delivery running on this thread (at most one)."""

    armed: CrashPoint | None = None


class CrashingStore(AgentStore):
    """The real store, with the crash points of the delivery on this thread armed."""

    def __init__(self, table_name: str, *, client: Any, interrupted: Counter[Any]) -> None:
        super().__init__(table_name, client=client)
        self.crashes = _Crashes()
        self.interrupted = interrupted
        self.fired: Counter[CrashPoint] = Counter()

    def fire(self, point: CrashPoint) -> None:
        """Raise ``SimulatedCrash`` if ``point`` is armed on this thread (then disarm it)."""
        if self.crashes.armed == point:
            self.crashes.armed = None
            self.fired[point] += 1
            raise SimulatedCrash(str(point))

    def commit(self, expected_version: int, header: Any, **items: Any) -> Any:
        """Commit a step, dying just before or just after it if armed."""
        self.fire(CrashPoint.BEFORE_COMMIT)
        written = super().commit(expected_version, header, **items)
        self.fire(CrashPoint.AFTER_COMMIT)
        return written

    def mark_published(self, agent_id: str, step: int) -> bool:
        """Record a publication, unless the worker dies first (the event is already out)."""
        self.fire(CrashPoint.AFTER_PUBLISH)
        return super().mark_published(agent_id, step)

    def claim_tool_call(
        self, agent_id: str, tool_use_id: str, *, lease_seconds: int
    ) -> ToolInvocation | None:
        """Lease a tool call, dying right after the lease if armed."""
        claimed = super().claim_tool_call(agent_id, tool_use_id, lease_seconds=lease_seconds)
        if claimed is not None:
            self.fire(CrashPoint.AFTER_CLAIM)
        return claimed

    def finish_tool_call(self, agent_id: str, tool_use_id: str, **outcome: Any) -> ToolInvocation:
        """Record a tool's outcome; the worker may die before (tool ran) or after recording."""
        if self.crashes.armed == CrashPoint.AFTER_EXECUTE:
            # The tool ran but its outcome is lost: a re-execution after the lease is expected.
            self.interrupted[(agent_id, tool_use_id)] += 1
        self.fire(CrashPoint.AFTER_EXECUTE)
        finished = super().finish_tool_call(agent_id, tool_use_id, **outcome)
        self.fire(CrashPoint.AFTER_FINISH)
        return finished


class UnguardedClaimStore(CrashingStore):
    """A deliberately broken store: claiming a tool call ignores its idempotency record.

    The claim always succeeds, so two workers can both execute one committed call; the chaos
    invariants must catch that.
    """

    def claim_tool_call(
        self, agent_id: str, tool_use_id: str, *, lease_seconds: int
    ) -> ToolInvocation | None:
        """Mark the call in progress without any condition (the bug under test)."""
        record = self.get_tool_call(agent_id, tool_use_id)
        if record is None:
            return None
        self.client.update_item(
            TableName=self.table_name,
            Key={
                PARTITION_KEY: {"S": agent_pk(agent_id)},
                SORT_KEY: {"S": tool_sk(tool_use_id)},
            },
            UpdateExpression="SET #status = :claimed",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":claimed": {"S": ToolCallStatus.IN_PROGRESS.value}},
        )
        self.fire(CrashPoint.AFTER_CLAIM)
        return record.model_copy(update={"status": ToolCallStatus.IN_PROGRESS})


class RecordingPublisher(Publisher):
    """Records every event instead of putting it on a bus; the schedule delivers them."""

    def __init__(self) -> None:
        super().__init__("chaos", client=None)
        self._lock = threading.Lock()
        self._outbox: list[tuple[DetailType, BaseModel]] = []
        self.history: list[tuple[DetailType, BaseModel]] = []

    def publish(self, detail_type: DetailType, detail: BaseModel) -> None:
        """Accept one event."""
        with self._lock:
            self._outbox.append((detail_type, detail))
            self.history.append((detail_type, detail))

    def take(self) -> list[tuple[DetailType, BaseModel]]:
        """The events published since the last call."""
        with self._lock:
            taken, self._outbox = self._outbox, []
        return taken


def counting_tools(
    executions: Counter[Any], rng: random.Random, fail_rates: dict[str, float]
) -> ToolRegistry:
    """The demo tools, each execution counted; an agent's calls fail at its ``fail_rates``."""
    demo = flights_registry
    registry = ToolRegistry()
    lock = threading.Lock()
    # A call fails on every execution or on none: a re-run after a crash must see what the
    # first run saw, as it would with a real idempotent tool.
    failing: dict[tuple[str, str], bool] = {}
    for name in demo.names():
        tool = demo.get(name)

        def counted(args: Any, ctx: ToolContext, _fn: Any = tool.fn) -> Any:
            key = (ctx.agent_id, ctx.tool_use_id)
            with lock:
                executions[key] += 1
                if key not in failing:
                    failing[key] = rng.random() < fail_rates.get(ctx.agent_id, 0.0)
            if failing[key]:
                # Before the real function: a failed execution has no side effect.
                raise RuntimeError("injected tool failure")
            return _fn(args, ctx)

        # functools.wraps keeps the annotations the registry reads the input model from.
        registry.tool(name=name, description=tool.description)(functools.wraps(tool.fn)(counted))
    return registry


class ValidatingResponder:
    """The offline model behind the fake endpoint; remembers every request Bedrock would reject.

    ``OfflineModel`` validates each request the way Bedrock does and answers ``400
    ValidationException`` otherwise; the loop would turn that into a (legitimate-looking) agent
    error, so the chaos records it to fail the invariants instead.
    """

    def __init__(self, model: OfflineModel) -> None:
        self.model = model
        self.rejected: list[str] = []

    def __call__(self, model_id: str, request: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        """Answer one Converse request, noting a validation rejection."""
        status, headers, body = self.model(model_id, request)
        if status == 400:
            self.rejected.append(f"{body.decode(errors='replace')} in {_outline(request)}")
        return status, headers, body


def in_process_bedrock(responder: Any) -> Any:
    """A ``bedrock-runtime`` client whose requests the fake endpoint answers in process.

    The real client path runs (serialisation, standard retries, error parsing); only the socket
    is skipped: a ``before-send`` hook hands the request to ``FakeBedrockServer.handle``, which
    is ~15 ms faster per call than a loopback HTTP round trip.
    """
    endpoint = FakeBedrockServer(responder)  # never started: no socket
    client = boto3.client(
        "bedrock-runtime",
        region_name=REGION,
        endpoint_url="http://offline-bedrock.invalid",
        config=Config(retries={"mode": "standard", "total_max_attempts": 4}),
    )

    def send(request: Any, **_: Any) -> AWSResponse:
        status, headers, body = endpoint.handle(urlsplit(request.url).path, request.body or b"")
        headers = {**headers, "x-amzn-RequestId": endpoint.next_request_id()}
        return AWSResponse(request.url, status, headers, MockRawResponse(body))

    client.meta.events.register("before-send.bedrock-runtime", send)
    return client


def _outline(request: dict[str, Any]) -> str:
    """The turns of a request as ``role[kind:id ...]``: enough to see a broken pairing."""
    turns = []
    for message in request.get("messages", []):
        blocks = []
        for block in message.get("content", []):
            kind = next(iter(block), "?")
            inner = block.get(kind)
            ident = inner.get("toolUseId", "") if isinstance(inner, dict) else ""
            blocks.append(f"{kind}:{ident[-6:]}" if ident else kind)
        turns.append(f"{message.get('role')}[{' '.join(blocks)}]")
    return " ".join(turns)


class ChaosWorld:
    """One moto table with the runtime wired over it; build one per batch of agents."""

    def __init__(
        self,
        table_name: str,
        *,
        responder: ValidatingResponder,
        seed: int,
        broken: bool = False,
        settings: LoopSettings | None = None,
    ) -> None:
        self.table_name = table_name
        self.rng = random.Random(seed)
        self.responder = responder
        # Parameter validation off: the same requests are validated by moto itself, and the chaos
        # makes ~10 000 calls per run.
        self.dynamodb = SerializedClient(
            boto3.client("dynamodb", region_name=REGION, config=Config(parameter_validation=False))
        )
        _create_table(self.dynamodb, table_name)
        self.executions: Counter[Any] = Counter()
        self.interrupted: Counter[Any] = Counter()
        self.fail_rates: dict[str, float] = {}
        store_type = UnguardedClaimStore if broken else CrashingStore
        self.store = store_type(table_name, client=self.dynamodb, interrupted=self.interrupted)
        bedrock = in_process_bedrock(responder)
        self.publisher = RecordingPublisher()
        self.tools = counting_tools(self.executions, random.Random(seed + 1), self.fail_rates)
        self.settings = settings or LoopSettings(
            max_steps=24, max_tool_failures=2, max_plan_retries=2, tool_lease_seconds=LEASE_SECONDS
        )
        self.agent = flights_agent(
            tools=self.tools, bedrock=bedrock, settings=self.settings, model_id=MODEL_ID
        )
        agents = AgentCatalog.of(self.agent)
        self.loop = AgentLoop(store=self.store, agents=agents, publisher=self.publisher)
        self.service = AgentService(
            store=self.store, publisher=self.publisher, agents=agents, runtime_version="chaos"
        )
        self.recovery = Recovery(self.dynamodb, table_name)

    def items(self, agent_id: str) -> list[dict[str, Any]]:
        """Every raw item of one agent's partition."""
        paginator = self.dynamodb.get_paginator("query")
        pages = paginator.paginate(
            TableName=self.table_name,
            ConsistentRead=True,
            KeyConditionExpression="#pk = :pk",
            ExpressionAttributeNames={"#pk": PARTITION_KEY},
            ExpressionAttributeValues={":pk": {"S": agent_pk(agent_id)}},
        )
        return [item for page in pages for item in page["Items"]]

    def drop(self) -> None:
        """Delete the table (moto copies a whole table per transaction: keep tables small)."""
        self.dynamodb.delete_table(TableName=self.table_name)


def _create_table(client: Any, name: str) -> None:
    client.create_table(**table_schema(name))


def sorted_keys(items: Sequence[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    """The items whose sort key starts with ``prefix``, in key order."""
    chosen = [i for i in items if i[SORT_KEY]["S"].startswith(prefix)]
    return sorted(chosen, key=lambda i: i[SORT_KEY]["S"])
