"""A 300-step conversation: bounded items, constant bytes per step, bounded prompts and views.

The first steps and the last ones run for real (api, stream, announcer, queue, worker, model,
tool); the steps between are seeded the way the bench seeds history
(``agentry_stacks.bench.store_cost``): the messages the loop would have written, stored
directly, and one header commit that counts them. The running worker's event goes stale under
that commit and is dropped, as any stale event is; the commit announces the next plan.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from pydantic import BaseModel
from support.world import REGION, World

from agentry_offline.bedrock import error_response, validate_request
from agentry_runtime.model import SUMMARY_SYSTEM_PROMPT
from agentry_runtime.settings import LoopSettings
from agentry_runtime.state import (
    Message,
    Origin,
    Outcome,
    Status,
    TokenUsage,
    ToolResult,
    ToolResultBlock,
    ToolUse,
    ToolUseBlock,
)
from agentry_runtime.store import item_size
from agentry_runtime.tools import ToolContext, ToolRegistry

pytestmark = pytest.mark.slow

STEPS = 300
#: Steps run for real at the start (the compared steps 10 and 11 among them) and at the end.
EARLY_STEPS, LATE_STEPS = 24, 40
#: Notes whose output is huge: one in each real part, never on the compared notes (6, 150).
BIG_NOTES = frozenset({8, 140})
BIG, SMALL = 600_000, 200
USAGE = {"inputTokens": 10, "outputTokens": 5, "totalTokens": 15}


class NoteInput(BaseModel):
    """Input of the scripted ``note`` tool."""

    index: int


def _note(index: int) -> dict[str, Any]:
    return {"index": index, "text": "n" * (BIG if index in BIG_NOTES else SMALL)}


def _registry() -> ToolRegistry:
    registry = ToolRegistry()

    @registry.tool(name="note", description="Writes down note number `index`.")
    def note(args: NoteInput, ctx: ToolContext) -> dict[str, Any]:
        # Now and then a huge output, which must never make an item near 400 KB.
        return _note(args.index)

    return registry


class ScriptedModel:
    """Calls ``note`` once per plan until the plan budget is spent, then answers.

    Every request is first checked by the offline model's Bedrock request validation, so
    compaction can never send Bedrock something it would reject.
    """

    def __init__(self, plans: int) -> None:
        self.plans = plans
        self.planned = 0
        self.prompt_tokens: list[int] = []
        self.summaries = 0

    def __call__(self, model_id: str, request: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        problem = validate_request(request)
        if problem is not None:
            return error_response(400, "ValidationException", problem)
        system = "".join(b.get("text", "") for b in request.get("system", []))
        if system.startswith(SUMMARY_SYSTEM_PROMPT):
            self.summaries += 1
            content: list[dict[str, Any]] = [{"text": f"notes 0..{self.planned} written"}]
            stop = "end_turn"
        else:
            self.prompt_tokens.append(len(json.dumps(request)) // 4)
            self.planned += 1
            if self.planned < self.plans:
                content, stop = [{"toolUse": _use(self.planned)}], "tool_use"
            else:
                content, stop = [{"text": "all notes written"}], "end_turn"
        body = {
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": stop,
            "usage": USAGE,
            "metrics": {"latencyMs": 1},
        }
        return 200, {"content-type": "application/json"}, json.dumps(body).encode()


def _use(index: int) -> dict[str, Any]:
    return {"toolUseId": f"t{index}", "name": "note", "input": {"index": index}}


def _seed(world: World, model: ScriptedModel, agent_id: str, rounds: int) -> None:
    """Store ``rounds`` more plan/act rounds as the loop writes them, and commit their header.

    Seeded like the bench's history: each round is the model's turn (one ``note`` call) and
    its result, at the seqs and steps the loop would give them.
    """
    store = world.runtime.store
    header = store.get_header(agent_id)
    seq, step = header.message_count, header.step
    for index in range(model.planned + 1, model.planned + 1 + rounds):
        use = ToolUse.model_validate(_use(index))
        turn = Message(
            seq=seq,
            role="assistant",
            content=[ToolUseBlock(tool_use=use)],
            step=step,
            origin=Origin.MODEL,
            stop_reason="tool_use",
            usage=TokenUsage(input_tokens=10, output_tokens=5),
        )
        result = Message(
            seq=seq + 1,
            role="user",
            content=[
                ToolResultBlock(
                    tool_result=ToolResult(
                        tool_use_id=use.tool_use_id,
                        content=[{"json": _note(index)}],
                        status="success",
                    )
                )
            ],
            step=step + 1,
            origin=Origin.TOOL,
            outcome=Outcome.SUCCEEDED,
            tool_name="note",
        )
        for message in (turn, result):
            assert store.put_step_message(agent_id, message, header.ttl) is None
        seq, step = seq + 2, step + 2
    model.planned += rounds
    store.commit(
        header.version,
        header.model_copy(
            update={
                "message_count": seq,
                "step": step,
                "tool_call_count": header.tool_call_count + rounds,
                "tool_uses": {"note": header.tool_uses.get("note", 0) + rounds},
                "usage": header.usage.plus(TokenUsage(input_tokens=10 * rounds)),
            }
        ),
    )


def test_a_300_step_conversation_keeps_items_and_writes_bounded(
    world_factory: Callable[..., World], agent_table: str
) -> None:
    # GIVEN a model that keeps calling a tool for 150 rounds, and a tight token budget
    model = ScriptedModel(plans=STEPS // 2 + 1)
    world = world_factory(
        responder=model,
        tools=_registry(),
        settings=LoopSettings(max_steps=STEPS + 10, token_budget=3000),
    )
    written: dict[int, int] = defaultdict(int)
    summarised: set[int] = set()
    current = {"step": -1}

    def record_writes(params: dict[str, Any], **_: Any) -> None:
        # Each item counts for the step that wrote it: a message names its step, a header the
        # step after the one it commits; a summary belongs to the plan delivered (a worker
        # chains an act after its plan, so a delivery can hold two steps).
        items = [params["Item"]] if "Item" in params else []
        for action in params.get("TransactItems", []):
            items += [a["Item"] for a in action.values() if "Item" in a]
        for item in items:
            sk = item["sk"]["S"]
            step = current["step"]
            if current["step"] >= 0 and sk.startswith("MSG#"):
                step = int(item["step"]["N"])
            elif current["step"] >= 0 and sk == "META":
                step = int(item["step"]["N"]) - 1
            elif sk.startswith("SUMMARY#"):
                summarised.add(step)
            written[step] += item_size(item)

    client = world.dynamodb._client
    for operation in ("PutItem", "TransactWriteItems"):
        client.meta.events.register(f"provide-client-params.dynamodb.{operation}", record_writes)
    agent_id = world.start("Write the notes")
    seed_at = EARLY_STEPS
    late_from = STEPS - LATE_STEPS

    def track(messages: list[dict[str, Any]]) -> None:
        step = json.loads(messages[0]["Body"])["detail"]["step"]
        if step == seed_at:
            # The steps between the two real parts, seeded: this event goes stale under it.
            current["step"] = -1
            _seed(world, model, agent_id, rounds=(late_from - seed_at) // 2)
        current["step"] = step

    # WHEN every step event is delivered
    world.pump(max_batches=STEPS, before_batch=track)
    header = world.runtime.store.get_header(agent_id)
    status, view = world.call("GET", f"/agents/{agent_id}")

    # THEN the conversation completed after 300 steps, the middle ones seeded
    assert header.status == Status.COMPLETED
    assert header.step >= STEPS
    assert set(range(late_from, STEPS + 1)) <= set(written)
    # no item comes near DynamoDB's 400 KB limit, huge outputs included
    scan = boto3.client("dynamodb", region_name=REGION).scan(TableName=agent_table)["Items"]
    assert max(item_size(item) for item in scan) < 350_000
    # bytes written per step do not grow with the history (steps of the same kind compared)
    for early, late in ((10, 300), (11, 299)):
        assert written[late] <= 1.2 * written[early], (early, late, written[early], written[late])
    # (every late step, in fact, but those that summarise or record a huge output)
    big_acts = {2 * note - 1 for note in BIG_NOTES}
    for step in set(range(late_from, STEPS)) - summarised - big_acts:
        assert written[step] <= 1.2 * written[10 + step % 2], (step, written[step])
    # and compaction kept every late prompt within the budget's reach
    assert model.summaries > 0
    assert summarised & set(range(late_from, STEPS + 1))
    assert max(model.prompt_tokens[-(LATE_STEPS // 2) :]) <= 2 * 3000
    # and the agent's view stays bounded however long it ran (a Lambda response is <= 6 MB)
    assert status == 200
    assert len(view["context"]["conversationHistory"]) == 50
    assert view["context"]["historyTruncated"] is True
    assert 0 < len(view["plan"]) <= 50
    assert view["planTruncated"] is True
    assert len(json.dumps(view)) < 1_000_000
