"""Per-step store cost and prompt size at a given history length, ours against the baseline.

Runs on the moto-backed runtime machinery (the real ``AgentLoop`` and ``AgentStore``, boto3
clients on moto, a scripted model behind the fake Bedrock endpoint). For each history length
``L`` an agent is seeded with ``L`` messages (a goal, then tool call / tool result turns with
realistic payloads) and two steps are measured: the one that runs at ``L`` and the next (one
act and one plan). The baseline is the article's sketch: the whole agent document in one item,
read with ``get_item`` and rewritten with an unconditional ``put_item`` every step.

The store figures are taken with compaction off, so both strategies keep the same history;
the prompt figures compare a plan step's prompt without and with compaction.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.types import TypeSerializer
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
from agentry_runtime.loop import AgentLoop
from agentry_runtime.model import SUMMARY_SYSTEM_PROMPT, ModelClient, ModelSettings, estimate_tokens
from agentry_runtime.prompts import system_prompt
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
from agentry_runtime.store import AgentStore
from agentry_runtime.tools import ToolContext, ToolRegistry
from agentry_stacks.bench.meter import AwsMeter, cost
from agentry_stacks.bench.report import PromptTokens, StepCost

REGION = "us-east-1"
MODEL_ID = "anthropic.claude-3-5-haiku-20241022-v1:0"
TABLE = "agentry-bench"
BUS = "agentry-bench"
GOAL = "Keep a travel log: look up every flight of the week and write one note per flight."
#: A day to date prompts with, so figures do not change from one day to the next.
TODAY = date(2026, 1, 5)
_NO_COMPACTION = 10**9


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


@dataclass
class LengthFigures:
    """What was measured at one history length."""

    ours: StepCost
    baseline: StepCost
    prompt: PromptTokens


class _Bench:
    """moto table and bus, fake Bedrock, and metered clients; one per bench run."""

    def __init__(self, server: FakeBedrockServer, model: ScriptedModel) -> None:
        session = boto3.session.Session(region_name=REGION)
        self.reader = session.client("dynamodb")
        self.meter = AwsMeter(self.reader)
        self.dynamodb = self.meter.attach(session.client("dynamodb"))
        self.events = self.meter.attach(session.client("events"))
        self.bedrock = self.meter.attach(
            session.client(
                "bedrock-runtime",
                endpoint_url=server.endpoint_url,
                config=Config(retries={"mode": "standard", "total_max_attempts": 2}),
            )
        )
        self.model = model
        session.client("events").create_event_bus(Name=BUS)
        self.tools = _registry()
        self.publisher = Publisher(BUS, client=self.events)
        self.client = ModelClient(ModelSettings(model_id=MODEL_ID), client=self.bedrock)

    def table(self, name: str) -> AgentStore:
        """A fresh table (moto copies a whole table per transaction: one table per agent)."""
        self.reader.create_table(**table_schema(name))
        return AgentStore(name, client=self.dynamodb)

    def loop(self, store: AgentStore, token_budget: int) -> AgentLoop:
        """The real loop over the metered clients."""
        agent = Agent(
            name="bench",
            system_prompt="You answer with tool calls until you are done.",
            tools=self.tools,
            model=self.client,
            settings=LoopSettings(max_steps=10_000, token_budget=token_budget),
        )
        return AgentLoop(store=store, agents=AgentCatalog.of(agent), today=lambda: TODAY)


def measure(lengths: list[int], token_budget: int) -> dict[int, LengthFigures]:
    """Store cost (ours, baseline) and prompt tokens at each history length."""
    model = ScriptedModel()
    with mock_aws(), FakeBedrockServer(model) as server:
        bench = _Bench(server, model)
        return {length: _at_length(bench, length, token_budget) for length in lengths}


def _at_length(bench: _Bench, length: int, token_budget: int) -> LengthFigures:
    history = _history(length)
    # Ours: the real loop, compaction off (the baseline keeps everything too). Of the two
    # steps measured one is a plan: its prompt is the one without compaction.
    store = bench.table(f"{TABLE}-{length}")
    header = _seed(store, f"agent-{length:032x}", history)
    loop = bench.loop(store, _NO_COMPACTION)
    before = len(bench.model.prompt_tokens)
    ours = _mean([_step(bench, store, loop, header.agent_id) for _ in range(2)])
    (without,) = bench.model.prompt_tokens[before:]
    # The same two steps with compaction at the token budget: the plan's prompt.
    store = bench.table(f"{TABLE}-{length}-compacting")
    header = _seed(store, f"agent-{length:032x}", history)
    loop = bench.loop(store, token_budget)
    before = len(bench.model.prompt_tokens)
    for _ in range(2):
        _step(bench, store, loop, header.agent_id)
    (with_compaction,) = bench.model.prompt_tokens[before:]
    # The baseline: the whole document rewritten every step.
    baseline = _mean(_baseline_steps(bench, f"baseline-{length}", history))
    return LengthFigures(
        ours=ours,
        baseline=baseline,
        prompt=PromptTokens(without_compaction=without, with_compaction=with_compaction),
    )


def _step(bench: _Bench, store: AgentStore, loop: AgentLoop, agent_id: str) -> Counter[str]:
    header = store.get_header(agent_id)
    assert header.next_step is not None, "the bench agent stopped"
    event = StepRequested(agent_id=agent_id, step=header.step, kind=header.next_step)
    with bench.meter.window() as window:
        loop.handle(event)
    return window


def _mean(windows: list[Counter[str]]) -> StepCost:
    costs = [cost(w) for w in windows]
    count = len(costs)
    return StepCost(
        bytes_written=round(sum(c[0] for c in costs) / count, 1),
        write_units=round(sum(c[1] for c in costs) / count, 2),
        aws_calls=round(sum(c[2] for c in costs) / count, 2),
        steps_measured=count,
    )


# --- seeding ------------------------------------------------------------------------------------


def _history(length: int) -> list[Message]:
    """``length`` turns: the goal, then alternating tool calls and their results."""
    messages = [Message(seq=0, role="user", content=[TextBlock(text=GOAL)])]
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


def _seed(store: AgentStore, agent_id: str, history: list[Message]) -> AgentHeader:
    """Store an agent whose history is ``history``, waiting for its next step."""
    header = AgentHeader(agent_id=agent_id, agent="bench", message_count=1)
    info = AgentInfo(
        agent_id=agent_id, agent="bench", goal=GOAL, model_id=MODEL_ID, runtime_version="bench"
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


def _baseline_steps(bench: _Bench, agent_id: str, history: list[Message]) -> list[Counter[str]]:
    """Two steps of the sketch's strategy over the same history: read all, rewrite all."""
    table = bench.table(f"{TABLE}-{agent_id}").table_name
    document = {
        PARTITION_KEY: agent_pk(agent_id),
        SORT_KEY: "STATE",
        "agentId": agent_id,
        "status": "TOOL_EXECUTION_SUCCESS",
        "goal": GOAL,
        "context": {"conversationHistory": [m.to_converse() for m in history]},
        "plan": [
            {"toolUseId": u.tool_use_id, "toolName": u.name, "parameters": u.input}
            for m in history
            for u in m.tool_uses()
        ],
        "metadata": {"invocationCount": len(history)},
    }
    bench.reader.put_item(TableName=table, Item=_item(document))
    windows = []
    for kind in _baseline_kinds(history):
        with bench.meter.window() as window, _baseline_step(bench, table, agent_id) as state:
            turns = state["context"]["conversationHistory"]
            if kind == StepKind.PLAN:
                turn = bench.client.converse(
                    system=system_prompt(GOAL, TODAY), messages=turns, tools=bench.tools.specs()
                )
                turns.append({"role": "assistant", "content": turn.content})
            else:
                use = turns[-1]["content"][-1]["toolUse"]
                result = _payload(int(use["input"]["index"]))
                block = {"toolUseId": use["toolUseId"], "content": [{"json": result}]}
                turns.append({"role": "user", "content": [{"toolResult": block}]})
                state["plan"].append({"toolUseId": use["toolUseId"], "result": result})
        windows.append(window)
    return windows


def _baseline_kinds(history: list[Message]) -> list[StepKind]:
    first = StepKind.ACT if history[-1].tool_uses() else StepKind.PLAN
    second = StepKind.PLAN if first == StepKind.ACT else StepKind.ACT
    return [first, second]


@contextmanager
def _baseline_step(bench: _Bench, table: str, agent_id: str) -> Iterator[dict[str, Any]]:
    """Load the whole document, let the step change it, put it back whole and announce."""
    key = {PARTITION_KEY: {"S": agent_pk(agent_id)}, SORT_KEY: {"S": "STATE"}}
    item = bench.dynamodb.get_item(TableName=table, Key=key)["Item"]
    state = _plain(boto3.dynamodb.types.TypeDeserializer().deserialize({"M": item}))
    yield state
    state["metadata"]["invocationCount"] += 1
    bench.dynamodb.put_item(TableName=table, Item=_item(state))  # no condition, as sketched
    step = StepRequested(agent_id=agent_id, step=state["metadata"]["invocationCount"], kind="plan")
    bench.publisher.publish_one(DetailType.STEP_REQUESTED, step)


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
