"""What one step costs in the store and the model, per kind, against its floor and the baseline.

Runs the real ``AgentLoop`` and ``AgentStore`` on moto, with boto3 clients metered by
:class:`~agentry_stacks.bench.meter.AwsMeter` and a scripted model behind the fake Bedrock
endpoint. For each case (a history length, a goal length) an agent is seeded with that history
(a goal, then tool call / tool result turns with realistic payloads), one plan and one act are
run unmetered (so a compaction the history calls for has happened), then a plan and an act
are measured, each in a fresh invocation (``loop.handle`` without chaining: the step reads its
header and what it needs, as a step delivered by the queue does). Compaction is on, at the
stack's token budget. Then the next steps run as a chaining worker runs them: from a plan, in
one invocation of the worker's timeout, as many as the chain takes.

The *floor* of a step is the least a correct design can write: its own new items (found by
comparing the agent's partition before and after the step), each at one write unit per started
KB, plus one unit for the header that commits the step. Anything above it (a rewrite, an item
written twice, a transaction's double units, a header over 1 KB) shows as a ratio above 1.

The baseline is the article's sketch: the whole agent in one document, read with ``get_item``
and rewritten with an unconditional ``put_item`` every step, then an event published.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from moto import mock_aws
from pydantic import BaseModel

from agentry_offline.bedrock import FakeBedrockServer
from agentry_runtime.agents import Agent, AgentCatalog
from agentry_runtime.contract import (
    PARTITION_KEY,
    SORT_KEY,
    DetailType,
    StepKind,
    StepRequested,
    agent_pk,
    table_schema,
)
from agentry_runtime.events import Publisher
from agentry_runtime.loop import AgentLoop, StepOutcome
from agentry_runtime.model import SUMMARY_SYSTEM_PROMPT, ModelClient, ModelSettings, estimate_tokens
from agentry_runtime.prompts import converse_messages, system_prompt
from agentry_runtime.settings import LoopSettings
from agentry_runtime.state import (
    AgentHeader,
    AgentInfo,
    Message,
    Status,
    TextBlock,
    ToolResult,
    ToolResultBlock,
    ToolUse,
    ToolUseBlock,
)
from agentry_runtime.store import AgentStore, item_size
from agentry_runtime.tools import ToolContext, ToolRegistry
from agentry_stacks.bench.meter import AwsMeter, Usage, write_units
from agentry_stacks.bench.report import Case, CaseFigures, PromptTokens, StepCost

__all__ = ["CASES", "GOAL", "LONG_GOAL_CHARS", "measure_cases"]

REGION = "us-east-1"
MODEL_ID = "anthropic.claude-3-5-haiku-20241022-v1:0"
TABLE = "agentry-bench"
BUS = "agentry-bench"
GOAL = "Keep a travel log: look up every flight of the week and write one note per flight."
LONG_GOAL_CHARS = 4000
#: A day to date prompts with, so figures do not change from one day to the next.
TODAY = date(2026, 1, 5)
#: The lengths the figures are taken at, and the long goal's.
CASES: tuple[Case, ...] = (
    Case(name="10", history=10, goal_chars=len(GOAL)),
    Case(name="100", history=100, goal_chars=len(GOAL)),
    Case(name="300", history=300, goal_chars=len(GOAL)),
    Case(name="10+long goal", history=10, goal_chars=LONG_GOAL_CHARS),
    Case(name="300+long goal", history=300, goal_chars=LONG_GOAL_CHARS),
)
# One plan and one act run before the measured pair (see the module doc).
_WARM_UP = 2
# What the worker keeps back from its invocation's remaining time (handlers.worker).
_LAMBDA_MARGIN_SECONDS = 2.0


class NoteInput(BaseModel):
    """Input of the bench's ``note`` tool."""

    index: int


def _payload(index: int) -> dict[str, Any]:
    # About the size of a flight lookup's answer: a few flights with ids, times and prices.
    flights = [
        {"flight_id": f"AG{index:04d}{n}", "departure": f"{8 + n:02d}:15", "price_usd": 180 + n}
        for n in range(4)
    ]
    return {"index": index, "route": "JFK-SFO", "flights": flights, "note": "n" * 120}


def _registry() -> ToolRegistry:
    registry = ToolRegistry()

    @registry.tool(name="note", description="Writes down note number `index`.")
    def note(args: NoteInput, ctx: ToolContext) -> dict[str, Any]:
        return _payload(args.index)

    return registry


def goal_of(chars: int) -> str:
    """A goal of exactly ``chars`` characters (the bench's goal, padded with a plausible brief)."""
    if chars <= len(GOAL):
        return GOAL[:chars]
    brief = " Note the flight number, the departure time and the price of each one, in order."
    text = GOAL + brief * (chars // len(brief) + 1)
    return text[:chars]


class ScriptedModel:
    """Always asks for one more note (a fresh toolUseId each time); answers summaries."""

    def __init__(self) -> None:
        self.calls = 0
        self.prompt_tokens: list[int] = []

    def __call__(self, model_id: str, request: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        """Answer one Converse request body."""
        self.calls += 1
        system = "".join(b.get("text", "") for b in request.get("system", []))
        if system.startswith(SUMMARY_SYSTEM_PROMPT):
            content: list[dict[str, Any]] = [{"text": "Notes written so far: all of them."}]
            stop = "end_turn"
        else:
            tools = (request.get("toolConfig") or {}).get("tools", [])
            self.prompt_tokens.append(
                estimate_tokens(system=system, messages=request["messages"], tools=tools)
            )
            use = {"toolUseId": f"bench-{self.calls}", "name": "note", "input": {"index": 1}}
            content, stop = [{"text": "Writing the next note."}, {"toolUse": use}], "tool_use"
        body = {
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": stop,
            "usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 15},
            "metrics": {"latencyMs": 1},
        }
        return 200, {"content-type": "application/json"}, json.dumps(body).encode()


class _Bench:
    """moto table and bus, fake Bedrock, and the meter; one per bench run."""

    def __init__(self, server: FakeBedrockServer, model: ScriptedModel, meter: AwsMeter) -> None:
        session = boto3.session.Session(region_name=REGION)
        self.reader = meter.reader
        self.meter = meter
        self.dynamodb = session.client("dynamodb")
        self.events = session.client("events")
        self.bedrock = session.client(
            "bedrock-runtime",
            endpoint_url=server.endpoint_url,
            config=Config(retries={"mode": "standard", "total_max_attempts": 2}),
        )
        self.model = model
        self.events.create_event_bus(Name=BUS)
        self.tools = _registry()
        self.publisher = Publisher(BUS, client=self.events)
        self.client = ModelClient(ModelSettings(model_id=MODEL_ID), client=self.bedrock)

    def table(self, name: str) -> AgentStore:
        """A fresh table (moto copies a whole table per transaction: one table per agent)."""
        self.reader.create_table(**table_schema(name))
        return AgentStore(name, client=self.dynamodb)

    def loop(self, store: AgentStore, token_budget: int) -> AgentLoop:
        """The real loop over the bench's clients."""
        agent = Agent(
            name="bench",
            system_prompt="You answer with tool calls until you are done.",
            tools=self.tools,
            model=self.client,
            settings=LoopSettings(max_steps=10_000, token_budget=token_budget),
        )
        return AgentLoop(store=store, agents=AgentCatalog.of(agent), today=lambda: TODAY)

    def partition(self, store: AgentStore, agent_id: str) -> dict[str, int]:
        """Every item of the agent, by sort key, with its size (read unmetered)."""
        with self.meter.disarmed():
            paginator = self.reader.get_paginator("query")
            sizes = {}
            for page in paginator.paginate(
                TableName=store.table_name,
                KeyConditionExpression="#pk = :pk",
                ExpressionAttributeNames={"#pk": PARTITION_KEY},
                ExpressionAttributeValues={":pk": {"S": agent_pk(agent_id)}},
                ConsistentRead=True,
            ):
                for item in page["Items"]:
                    sizes[item[SORT_KEY]["S"]] = item_size(item)
        return sizes


@dataclass
class _Measured:
    kind: StepKind
    usage: Usage
    new_items: dict[str, int]
    header_bytes: int
    steps: int


def measure_cases(
    meter: AwsMeter,
    token_budget: int,
    invocation_seconds: float,
    cases: tuple[Case, ...] = CASES,
) -> dict[str, CaseFigures]:
    """Per-step figures (ours and the baseline's) for every case, keyed by case name.

    ``meter`` must be installed; moto is started here. A chained pair starts with a plan in an
    invocation of ``invocation_seconds`` (the worker's timeout), as the worker would run it.
    """
    model = ScriptedModel()
    with mock_aws(), FakeBedrockServer(model) as server:
        meter.reader = boto3.client("dynamodb", region_name=REGION)
        bench = _Bench(server, model, meter)
        return {case.name: _case(bench, case, token_budget, invocation_seconds) for case in cases}


def _case(bench: _Bench, case: Case, token_budget: int, invocation_seconds: float) -> CaseFigures:
    goal = goal_of(case.goal_chars)
    history = _history(case.history - _WARM_UP, goal)
    slug = case.name.replace(" ", "-").replace("+", "-")
    store = bench.table(f"{TABLE}-{slug}")
    header = _seed(store, f"agent-{len(slug):08x}{case.history:024x}", history, goal)
    loop = bench.loop(store, token_budget)
    for _ in range(_WARM_UP):
        _step(bench, store, loop, header.agent_id, metered=False)
    with bench.meter.disarmed():
        if store.get_header(header.agent_id).next_step != StepKind.PLAN:
            _step(bench, store, loop, header.agent_id, metered=False)
    before = len(bench.model.prompt_tokens)
    first = _step(bench, store, loop, header.agent_id, metered=True)
    second = _step(bench, store, loop, header.agent_id, metered=True)
    measured = {m.kind: m for m in (first, second)}
    (with_compaction,) = bench.model.prompt_tokens[before:]
    # The same agent goes on with a plan again: this time as a chaining worker runs it.
    deadline = time.time() + invocation_seconds - _LAMBDA_MARGIN_SECONDS
    chained = _step(bench, store, loop, header.agent_id, metered=True, deadline=deadline)
    full = _history(case.history, goal)
    without = estimate_tokens(
        system=system_prompt("You answer with tool calls until you are done.", TODAY),
        messages=converse_messages(full),
        tools=bench.tools.specs(),
    )
    baseline = _baseline_steps(bench, f"baseline-{slug}", full, goal)
    return CaseFigures(
        case=case,
        plan=_cost(measured[StepKind.PLAN]),
        act=_cost(measured[StepKind.ACT]),
        baseline_plan=_baseline_cost(baseline[StepKind.PLAN]),
        baseline_act=_baseline_cost(baseline[StepKind.ACT]),
        chained_pair=_cost(chained),
        chained_steps=chained.steps,
        header_bytes=measured[StepKind.PLAN].header_bytes,
        prompt=PromptTokens(without_compaction=without, with_compaction=with_compaction),
    )


def _step(
    bench: _Bench,
    store: AgentStore,
    loop: AgentLoop,
    agent_id: str,
    *,
    metered: bool,
    deadline: float | None = None,
) -> _Measured:
    """Handle the step the agent waits for (and, with a ``deadline``, chain as the worker does)."""
    with bench.meter.disarmed():
        header = store.get_header(agent_id)
    assert header.next_step is not None, "the bench agent stopped"
    kind = header.next_step
    event = StepRequested(agent_id=agent_id, step=header.step, kind=kind)
    before = bench.partition(store, agent_id)
    chain = deadline is not None
    if metered:
        with bench.meter.window() as usage:
            result = loop.handle(event, deadline=deadline, chain=chain)
    else:
        with bench.meter.disarmed():
            result = loop.handle(event, deadline=deadline, chain=chain)
        usage = Counter()
    assert result.outcome == StepOutcome.COMMITTED, result
    after = bench.partition(store, agent_id)
    new = {sk: size for sk, size in after.items() if sk not in before}
    return _Measured(
        kind=kind, usage=usage, new_items=new, header_bytes=after["META"], steps=result.steps
    )


def _cost(measured: _Measured) -> StepCost:
    usage = measured.usage
    # The steps' own new items at their least, and one unit per header commit (one per step).
    floor = measured.steps + sum(write_units(size) for size in measured.new_items.values())
    return StepCost(
        write_units=float(usage["write_units"]),
        read_units=float(usage["read_units"]),
        bytes_written=int(usage["bytes_written"]),
        bytes_read=int(usage["bytes_read"]),
        floor_write_units=float(floor),
        write_units_over_floor=round(usage["write_units"] / floor, 3),
        dynamodb_calls=int(usage["calls.dynamodb"]),
        model_calls=int(usage["calls.bedrock-runtime"]),
        eventbridge_calls=int(usage["calls.events"]),
        operations=_operations(usage),
        new_items=sorted({sk.split("#", 1)[0] for sk in measured.new_items}),
    )


def _operations(usage: Usage) -> dict[str, int]:
    return {
        key.removeprefix("op."): int(count)
        for key, count in sorted(usage.items())
        if key.startswith("op.") and count
    }


# --- seeding ------------------------------------------------------------------------------------


def _history(length: int, goal: str) -> list[Message]:
    """``length`` turns: the goal, then alternating tool calls and their results."""
    messages = [Message(seq=0, role="user", content=[TextBlock(text=goal)])]
    for seq in range(1, length):
        call_id = f"seed-{seq - (seq % 2 == 0)}"
        if seq % 2:
            use = ToolUse(tool_use_id=call_id, name="note", input={"index": seq})
            content: list[Any] = [
                TextBlock(text=f"Writing note {seq}."),
                ToolUseBlock(tool_use=use),
            ]
            messages.append(Message(seq=seq, role="assistant", content=content, step=seq - 1))
        else:
            result = ToolResult(
                tool_use_id=call_id, status="success", content=[{"json": _payload(seq - 1)}]
            )
            block = ToolResultBlock(tool_result=result)
            messages.append(Message(seq=seq, role="user", content=[block], step=seq - 1))
    return messages


def _seed(store: AgentStore, agent_id: str, history: list[Message], goal: str) -> AgentHeader:
    """Store an agent whose history is ``history``, waiting for its next step."""
    header = AgentHeader(agent_id=agent_id, agent="bench", message_count=1)
    info = AgentInfo(
        agent_id=agent_id, agent="bench", goal=goal, model_id=MODEL_ID, runtime_version="bench"
    )
    store.create(header, info, history[0])
    for message in history[1:]:
        store.put_step_message(agent_id, message, None)
    last = history[-1]
    update: dict[str, Any] = {"message_count": len(history), "step": last.step + 1}
    if last.tool_uses():
        update |= {"status": Status.TOOL_EXECUTION_PENDING, "next_step": StepKind.ACT}
    else:
        update |= {"status": Status.TOOL_EXECUTION_SUCCESS, "next_step": StepKind.PLAN}
    return store.commit(header.version, header.model_copy(update=update))


# --- the baseline -------------------------------------------------------------------------------

_serializer = TypeSerializer()


def _baseline_steps(
    bench: _Bench, agent_id: str, history: list[Message], goal: str
) -> dict[StepKind, Usage]:
    """One plan and one act of the sketch's strategy over the same history: read all, rewrite
    all, publish."""
    table = bench.table(f"{TABLE}-{agent_id}").table_name
    document = {
        PARTITION_KEY: agent_pk(agent_id),
        SORT_KEY: "STATE",
        "agentId": agent_id,
        "status": "TOOL_EXECUTION_SUCCESS",
        "goal": goal,
        "context": {"conversationHistory": [m.to_converse() for m in history]},
        "plan": [
            {"toolUseId": u.tool_use_id, "toolName": u.name, "parameters": u.input}
            for m in history
            for u in m.tool_uses()
        ],
        "metadata": {"invocationCount": len(history)},
    }
    with bench.meter.disarmed():
        bench.reader.put_item(TableName=table, Item=_item(document))
    windows = {}
    for kind in _baseline_kinds(history):
        with bench.meter.window() as window, _baseline_step(bench, table, agent_id) as state:
            turns = state["context"]["conversationHistory"]
            if kind == StepKind.PLAN:
                turn = bench.client.converse(
                    system=system_prompt(goal, TODAY), messages=turns, tools=bench.tools.specs()
                )
                turns.append({"role": "assistant", "content": turn.content})
            else:
                use = turns[-1]["content"][-1]["toolUse"]
                result = _payload(int(use["input"]["index"]))
                block = {"toolUseId": use["toolUseId"], "content": [{"json": result}]}
                turns.append({"role": "user", "content": [{"toolResult": block}]})
                state["plan"].append({"toolUseId": use["toolUseId"], "result": result})
        windows[kind] = window
    return windows


def _baseline_cost(usage: Usage) -> StepCost:
    return StepCost(
        write_units=float(usage["write_units"]),
        read_units=float(usage["read_units"]),
        bytes_written=int(usage["bytes_written"]),
        bytes_read=int(usage["bytes_read"]),
        floor_write_units=None,
        write_units_over_floor=None,
        dynamodb_calls=int(usage["calls.dynamodb"]),
        model_calls=int(usage["calls.bedrock-runtime"]),
        eventbridge_calls=int(usage["calls.events"]),
        operations=_operations(usage),
        new_items=[],
    )


def _baseline_kinds(history: list[Message]) -> list[StepKind]:
    first = StepKind.ACT if history[-1].tool_uses() else StepKind.PLAN
    second = StepKind.PLAN if first == StepKind.ACT else StepKind.ACT
    return [first, second]


@contextmanager
def _baseline_step(bench: _Bench, table: str, agent_id: str) -> Iterator[dict[str, Any]]:
    """Load the whole document, let the step change it, put it back whole and announce."""
    key = {PARTITION_KEY: {"S": agent_pk(agent_id)}, SORT_KEY: {"S": "STATE"}}
    item = bench.dynamodb.get_item(TableName=table, Key=key)["Item"]
    state = _plain(TypeDeserializer().deserialize({"M": item}))
    yield state
    state["metadata"]["invocationCount"] += 1
    bench.dynamodb.put_item(TableName=table, Item=_item(state))  # no condition, as sketched
    step = StepRequested(agent_id=agent_id, step=state["metadata"]["invocationCount"], kind="plan")
    bench.publisher.publish([(DetailType.STEP_REQUESTED, step)])


def _item(document: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(_decimals(v)) for k, v in document.items()}


def _decimals(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: _decimals(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decimals(v) for v in value]
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
