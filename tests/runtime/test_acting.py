"""Acting at most once, wired: a dead worker's call taken over by its redelivered message, and
tool outputs moto's DynamoDB must take.

Each test runs an agent through the real api, announcer and worker handlers (``World``). The
loop's own answers (timeouts, cancels, hostile model turns, every odd tool output) are in
``tests/unit/test_act_at_most_once.py``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel
from support.world import World

from agentry_offline.script import Script, ScriptedModel
from agentry_runtime.contract import Status, agent_pk, tool_sk
from agentry_runtime.state import Outcome
from agentry_runtime.tools import ToolContext, ToolRegistry

GOAL = "Do the task"


class _Empty(BaseModel):
    pass


def _script(*turns: dict[str, Any]) -> ScriptedModel:
    return ScriptedModel(Script.model_validate({"turns": list(turns)}))


def _calls(*names: str) -> dict[str, Any]:
    return {"toolUse": [{"name": name, "input": {}} for name in names]}


def _results(world: World, agent_id: str) -> list[tuple[str | None, Outcome | None, str]]:
    """(tool name, outcome, text) of every tool result message of the agent."""
    found = []
    for message in world.store.messages(agent_id):
        if message.role == "user" and message.tool_name:
            found.append((message.tool_name, message.outcome, json.dumps(message.to_converse())))
    return found


# --- a worker that dies mid-call ---------------------------------------------------------------


@pytest.mark.parametrize("chained", [False, True])
def test_a_call_whose_worker_died_mid_call_is_never_run_again(
    world_factory: Callable[..., World], chained: bool
) -> None:
    # GIVEN a worker that dies right after a tool call took effect, before recording it; it
    # ran the call in its own step, or chained to it from the plan step
    tools = ToolRegistry()
    effects: list[str] = []

    @tools.tool(timeout_seconds=1)
    def transfer(args: _Empty, ctx: ToolContext) -> dict[str, Any]:
        """Moves money."""
        effects.append(ctx.tool_use_id)
        if len(effects) == 1:
            raise SystemExit("the process died")  # not an Exception: the worker dies with it
        return {"done": True}

    world = world_factory(
        tools=tools,
        responder=_script(_calls("transfer"), {"text": "Done."}),
        # 5 s leave room for the 1 s call, not for a chain to it (call + margin)
        worker_timeout_ms=60_000 if chained else 5_000,
    )
    in_flight: list[dict[str, Any]] = []
    agent_id = world.start(GOAL)
    with pytest.raises(SystemExit):
        world.pump(before_batch=in_flight.extend)
    header = world.store.get_header(agent_id)
    assert (header.runner_until is not None) == chained
    # WHEN the call's lease passes (and the chain's deadline, bringing its watchdog back), and
    # the redelivered event takes the step over
    (claim,) = world.store.claims(agent_id, 1)
    world.dynamodb.update_item(
        TableName=world.table_name,
        Key={"pk": {"S": agent_pk(agent_id)}, "sk": {"S": tool_sk(1, claim.tool_use_id)}},
        UpdateExpression="SET leaseUntil = :past",
        ExpressionAttributeValues={":past": {"N": str(time.time() - 1)}},
    )
    if chained:
        world.store.commit(header.version, header.model_copy(update={"runner_until": 1.0}))
        world.give_up_on_stream()  # the release above is announced by nobody: the watchdog acts
        world.sqs.change_message_visibility(
            QueueUrl=world.steps_url,
            ReceiptHandle=in_flight[-1]["ReceiptHandle"],
            VisibilityTimeout=0,
        )
    world.pump()
    # THEN the call is not run again: its outcome is recorded as unknown
    assert len(effects) == 1
    ((_, outcome, text),) = _results(world, agent_id)
    assert outcome == Outcome.UNKNOWN
    assert "stopped before recording" in text
    assert world.store.get_header(agent_id).status == Status.COMPLETED


# --- hostile tool outputs ----------------------------------------------------------------------


# What could break the write itself (text with no UTF-8 form, numbers DynamoDB cannot hold):
# here moto's DynamoDB takes the item. Every other odd output is in the unit layer.
_OUTPUTS: dict[str, Callable[[], Any]] = {
    "a lone surrogate": lambda: {"text": "bad \udc80 text"},
    "a lone surrogate string": lambda: "bad \ud800 text",
    "a huge integer and NaN": lambda: {"n": 10**400, "f": float("nan")},
}
_ERRORS: dict[str, Callable[[], BaseException]] = {
    "an error with a lone surrogate": lambda: ValueError("broken \udcff message"),
}


@pytest.mark.parametrize("case", sorted(_OUTPUTS) + sorted(_ERRORS))
def test_any_tool_output_is_stored_and_the_agent_goes_on(
    world_factory: Callable[..., World], case: str
) -> None:
    # GIVEN a tool that returns or raises something that cannot be stored as it is
    tools = ToolRegistry()

    @tools.tool(timeout_seconds=2)
    def odd(args: _Empty, ctx: ToolContext) -> Any:
        """Answers oddly."""
        if case in _ERRORS:
            raise _ERRORS[case]()
        return _OUTPUTS[case]()

    world = world_factory(tools=tools, responder=_script(_calls("odd"), {"text": "Done."}))
    agent_id = world.start(GOAL)
    # WHEN the agent runs
    world.pump()
    # THEN the outcome is recorded (valid UTF-8 JSON the store took), and the agent completed
    ((name, outcome, text),) = _results(world, agent_id)
    assert name == "odd"
    assert outcome in (Outcome.SUCCEEDED, Outcome.FAILED)
    text.encode("utf-8")
    assert world.store.get_header(agent_id).status == Status.COMPLETED
    # AND the call's claim points at its recorded outcome
    (claim,) = world.store.claims(agent_id, 1)
    recorded = world.store.get_message(agent_id, claim.result_seq, consistent=True)
    assert recorded is not None
    assert recorded.tool_name == "odd"
