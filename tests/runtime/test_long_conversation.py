"""A scripted 300-step conversation: bounded items, constant bytes per step, bounded prompts."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import boto3
from pydantic import BaseModel
from support.world import REGION, World

from agentry_offline.bedrock import error_response, validate_request
from agentry_runtime.model import SUMMARY_SYSTEM_PROMPT
from agentry_runtime.settings import LoopSettings
from agentry_runtime.state import Status
from agentry_runtime.store import item_size
from agentry_runtime.tools import ToolContext, ToolRegistry

STEPS = 300
BIG_OUTPUT_EVERY = 40  # never on the compared steps (notes 6 and 150)


class NoteInput(BaseModel):
    """Input of the scripted ``note`` tool."""

    index: int


def _registry() -> ToolRegistry:
    registry = ToolRegistry()

    @registry.tool(name="note", description="Writes down note number `index`.")
    def note(args: NoteInput, ctx: ToolContext) -> dict[str, Any]:
        # Every so often a huge output, which must never make an item near 400 KB.
        size = 600_000 if args.index % BIG_OUTPUT_EVERY == 0 else 200
        return {"index": args.index, "text": "n" * size}

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
                use = {
                    "toolUseId": f"t{self.planned}",
                    "name": "note",
                    "input": {"index": self.planned},
                }
                content, stop = [{"toolUse": use}], "tool_use"
            else:
                content, stop = [{"text": "all notes written"}], "end_turn"
        body = {
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": stop,
            "usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 15},
            "metrics": {"latencyMs": 1},
        }
        return 200, {"content-type": "application/json"}, json.dumps(body).encode()


def test_a_300_step_conversation_keeps_items_and_writes_bounded(agent_table: str) -> None:
    # GIVEN a model that keeps calling a tool for 150 rounds, and a tight token budget
    model = ScriptedModel(plans=STEPS // 2 + 1)
    world = World(
        agent_table,
        responder=model,
        tools=_registry(),
        settings=LoopSettings(max_steps=STEPS + 10, token_budget=3000),
    )
    written: dict[int, int] = defaultdict(int)
    current = {"step": -1}

    def record_writes(params: dict[str, Any], **_: Any) -> None:
        items = [params["Item"]] if "Item" in params else []
        for action in params.get("TransactItems", []):
            items += [a["Item"] for a in action.values() if "Item" in a]
        written[current["step"]] += sum(item_size(i) for i in items)

    client = world.dynamodb._client
    for operation in ("PutItem", "TransactWriteItems"):
        client.meta.events.register(f"provide-client-params.dynamodb.{operation}", record_writes)

    def track(messages: list[dict[str, Any]]) -> None:
        current["step"] = json.loads(messages[0]["Body"])["detail"]["step"]

    try:
        agent_id = world.start("Write the notes")
        # WHEN every step event is delivered
        world.pump(max_batches=STEPS * 2, before_batch=track)
        header = world.runtime.store.get_header(agent_id)
        status, view = world.call("GET", f"/agents/{agent_id}")
    finally:
        world.close()

    # THEN the conversation completed after 300 steps
    assert header.status == Status.COMPLETED
    assert header.step >= STEPS
    # no item comes near DynamoDB's 400 KB limit
    scan = boto3.client("dynamodb", region_name=REGION).scan(TableName=agent_table)["Items"]
    assert max(item_size(item) for item in scan) < 350_000
    # bytes written per step do not grow with the history (steps of the same kind compared)
    for early, late in ((10, 300), (11, 299)):
        assert written[late] <= 1.2 * written[early], (early, late, written[early], written[late])
    # and compaction kept every prompt within the budget's reach
    assert model.summaries > 0
    assert max(model.prompt_tokens[-50:]) <= 2 * 3000
    # and the agent's view stays bounded however long it ran (a Lambda response is <= 6 MB)
    assert status == 200
    assert len(view["context"]["conversationHistory"]) == 50
    assert view["context"]["historyTruncated"] is True
    assert 0 < len(view["plan"]) <= 50
    assert view["planTruncated"] is True
    assert len(json.dumps(view)) < 1_000_000
