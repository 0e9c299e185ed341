"""Acting at most once, with an outcome always recorded, on the in-memory table and model.

Timeouts, workers that die mid-call, cancels during a step, hostile model turns and hostile
tool outputs: the loop's answers to each, with each step event handed to ``AgentLoop.handle``.
The only thread is the tool timeout's. ``tests/runtime/test_acting.py`` keeps the takeover by
a redelivered SQS message on moto.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel
from support.memory_world import TABLE, MemoryWorld

from agentry_offline.model import OfflineResponder
from agentry_offline.script import Script, ScriptedModel
from agentry_runtime.contract import ErrorType, Status, agent_pk, tool_sk
from agentry_runtime.loop import MAX_CALLS_PER_TURN
from agentry_runtime.settings import LoopSettings
from agentry_runtime.state import Outcome
from agentry_runtime.tools import MAX_ERROR_CHARS, ToolContext, ToolRegistry

GOAL = "Do the task"
World = Callable[..., MemoryWorld]


class _Empty(BaseModel):
    pass


def _script(*turns: dict[str, Any]) -> ScriptedModel:
    return ScriptedModel(Script.model_validate({"turns": list(turns)}))


def _calls(*names: str) -> dict[str, Any]:
    return {"toolUse": [{"name": name, "input": {}} for name in names]}


def _results(world: MemoryWorld, agent_id: str) -> list[tuple[str | None, Outcome | None, str]]:
    """(tool name, outcome, text) of every tool result message of the agent."""
    return [
        (m.tool_name, m.outcome, json.dumps(m.to_converse()))
        for m in world.store.messages(agent_id)
        if m.role == "user" and m.tool_name
    ]


# --- timeouts ----------------------------------------------------------------------------------


def test_a_tool_that_hangs_past_its_timeout_is_recorded_unknown_and_not_run_again(
    memory_world: World,
) -> None:
    # GIVEN a tool whose effect lands after its own timeout has passed
    tools = ToolRegistry()
    effects: list[str] = []
    landed = threading.Event()

    @tools.tool(timeout_seconds=0.2)
    def transfer(args: _Empty, ctx: ToolContext) -> dict[str, Any]:
        """Moves money (slowly)."""
        assert ctx.deadline is not None
        assert ctx.remaining_seconds() is not None
        time.sleep(0.5)
        effects.append(ctx.tool_use_id)
        landed.set()
        return {"done": True}

    world = memory_world(tools=tools, responder=_script(_calls("transfer"), {"text": "Done."}))
    agent_id = world.start(GOAL)
    # WHEN the agent runs, every step event delivered twice
    world.run(duplicate=True)
    landed.wait(5)
    # THEN the call ran once, its outcome is recorded as unknown (it did land), the model was
    # told to check before calling it again, and the agent went on to its answer
    assert len(effects) == 1
    ((name, outcome, text),) = _results(world, agent_id)
    assert (name, outcome) == ("transfer", Outcome.UNKNOWN)
    assert "Outcome unknown" in text
    assert "0.2 s" in text
    assert world.store.get_header(agent_id).status == Status.COMPLETED


@pytest.mark.parametrize("chained", [False, True])
def test_a_call_whose_worker_died_mid_call_is_never_run_again(
    memory_world: World, chained: bool
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

    world = memory_world(
        tools=tools,
        responder=_script(_calls("transfer"), {"text": "Done."}),
        # 5 s leave room for the 1 s call, not for a chain to it (call + margin)
        worker_seconds=60 if chained else 5,
    )
    agent_id = world.start(GOAL)
    with pytest.raises(SystemExit):
        world.run()
    in_flight = world.delivered[-1]
    header = world.store.get_header(agent_id)
    assert (header.runner_until is not None) == chained
    # WHEN the call's lease passes (and the chain's deadline), and the event in flight is
    # delivered again
    (claim,) = world.store.claims(agent_id, 1)
    world.dynamodb.update_item(
        TableName=TABLE,
        Key={"pk": {"S": agent_pk(agent_id)}, "sk": {"S": tool_sk(1, claim.tool_use_id)}},
        UpdateExpression="SET leaseUntil = :past",
        ExpressionAttributeValues={":past": {"N": str(time.time() - 1)}},
    )
    if chained:
        world.store.commit(header.version, header.model_copy(update={"runner_until": 1.0}))
        world.skip_announcements()  # the release is announced by nobody: the watchdog acts
    world.queue.clear()
    world.deliver(in_flight)
    world.run()
    # THEN the call is not run again: its outcome is recorded as unknown
    assert len(effects) == 1
    ((_, outcome, text),) = _results(world, agent_id)
    assert outcome == Outcome.UNKNOWN
    assert "stopped before recording" in text
    assert world.store.get_header(agent_id).status == Status.COMPLETED


# --- cancellation ------------------------------------------------------------------------------


@pytest.mark.parametrize("recheck", [True, False])
def test_a_cancel_during_the_first_call_stops_the_next_call_of_the_step(
    memory_world: World, recheck: bool
) -> None:
    # GIVEN a step with two calls, and a person who cancels the agent while the first runs
    tools = ToolRegistry()
    ran: list[str] = []
    cancel: list[Callable[[str], Any]] = []

    @tools.tool(timeout_seconds=5)
    def first(args: _Empty, ctx: ToolContext) -> dict[str, Any]:
        """The first call."""
        ran.append("first")
        cancel[0](ctx.agent_id)
        return {}

    @tools.tool(timeout_seconds=5)
    def second(args: _Empty, ctx: ToolContext) -> dict[str, Any]:
        """The second call."""
        ran.append("second")
        return {}

    world = memory_world(tools=tools, responder=_script(_calls("first", "second"), {"text": "x"}))
    cancel.append(world.service.cancel)
    world.loop.recheck_cancellation = recheck
    agent_id = world.start(GOAL)
    # WHEN the agent runs
    world.run()
    # THEN the cancel stopped the second call (and only the re-read of the header does that)
    assert world.store.get_header(agent_id).status == Status.CANCELLED
    assert ran == (["first"] if recheck else ["first", "second"])


# --- hostile model turns -----------------------------------------------------------------------


class _Hostile(OfflineResponder):
    """Plays raw answers, in order, then a final text: whatever Bedrock could send back."""

    def __init__(self, answers: list[tuple[list[dict[str, Any]], str]]) -> None:
        super().__init__()
        self.answers = answers

    def _answer(self, request: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
        index = self.calls - 1  # one request per plan step here: no faults, no retries
        if index < len(self.answers):
            return self.answers[index]
        return [{"text": f"{self.LABEL} done"}], "end_turn"


def _use(tool_use_id: str, name: str = "noop") -> dict[str, Any]:
    return {"toolUse": {"toolUseId": tool_use_id, "name": name, "input": {}}}


def _noop_tools(counter: Counter[str]) -> ToolRegistry:
    tools = ToolRegistry()

    @tools.tool(timeout_seconds=2)
    def noop(args: _Empty, ctx: ToolContext) -> dict[str, Any]:
        """Does nothing, and counts it."""
        counter[ctx.tool_use_id] += 1
        return {}

    return tools


_HOSTILE_TURNS: dict[str, tuple[list[tuple[list[dict[str, Any]], str]], str]] = {
    "too many calls": (
        [([_use(f"t{i}") for i in range(MAX_CALLS_PER_TURN + 5)], "tool_use")],
        f"more than {MAX_CALLS_PER_TURN}",
    ),
    "repeated ids": ([([_use("same"), _use("same")], "tool_use")], "repeated within the turn"),
    "reused id": (
        [([_use("first")], "tool_use"), ([_use("first")], "tool_use")],
        "already used earlier",
    ),
    "huge answer": ([([{"text": "x" * 500_000}], "end_turn")], "bytes, more than"),
}


@pytest.mark.parametrize("case", sorted(_HOSTILE_TURNS))
def test_a_hostile_turn_becomes_a_correction_the_model_can_act_on(
    memory_world: World, case: str
) -> None:
    # GIVEN a model that answers once with a turn the platform cannot store or run
    answers, reason = _HOSTILE_TURNS[case]
    counter: Counter[str] = Counter()
    world = memory_world(tools=_noop_tools(counter), responder=_Hostile(answers))
    agent_id = world.start(GOAL)
    # WHEN the agent runs
    world.run()
    # THEN the model was told why, plainly, and answered again: the agent completed, no call of
    # the hostile turn ran, and each call that ran ran once
    assert world.store.get_header(agent_id).status == Status.COMPLETED
    corrections = [m.text() for m in world.store.messages(agent_id) if m.origin == "platform"]
    assert any(reason in text for text in corrections), corrections
    assert all(count == 1 for count in counter.values())
    assert "t0" not in counter
    assert "same" not in counter


def test_a_model_that_stays_hostile_ends_in_a_typed_planning_failure(
    memory_world: World,
) -> None:
    # GIVEN a model that repeats ids in every answer
    counter: Counter[str] = Counter()
    repeated = ([_use("same"), _use("same")], "tool_use")
    world = memory_world(
        tools=_noop_tools(counter),
        responder=_Hostile([repeated] * 10),
        settings=LoopSettings(max_plan_retries=2),
    )
    agent_id = world.start(GOAL)
    # WHEN the agent runs
    world.run()
    # THEN after the bounded corrections it fails with PlanningFailed; nothing ran
    header = world.store.get_header(agent_id)
    assert (header.status, header.last_error_type) == (
        Status.PLANNING_FAILED,
        ErrorType.PLANNING_FAILED,
    )
    assert not counter


def test_the_most_calls_a_turn_may_hold_all_run_once_with_their_outcomes(
    memory_world: World,
) -> None:
    # GIVEN a turn with as many calls as a turn may hold
    counter: Counter[str] = Counter()
    calls = [_use(f"t{i}") for i in range(MAX_CALLS_PER_TURN)]
    world = memory_world(tools=_noop_tools(counter), responder=_Hostile([(calls, "tool_use")]))
    agent_id = world.start(GOAL)
    # WHEN the agent runs, every event delivered twice
    world.run(duplicate=True)
    # THEN each ran exactly once, each with its recorded outcome
    assert world.store.get_header(agent_id).status == Status.COMPLETED
    assert counter == Counter({f"t{i}": 1 for i in range(MAX_CALLS_PER_TURN)})
    outcomes = [outcome for _, outcome, _ in _results(world, agent_id)]
    assert outcomes == [Outcome.SUCCEEDED] * MAX_CALLS_PER_TURN


# --- hostile tool outputs ----------------------------------------------------------------------


def _circular() -> dict[str, Any]:
    loop: dict[str, Any] = {"name": "loop"}
    loop["self"] = loop
    return loop


class _UnprintableError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no message")


_OUTPUTS: dict[str, Callable[[], Any]] = {
    "an object": lambda: {"value": object()},
    "a circular structure": _circular,
    "bytes": lambda: {"blob": b"\x00\xff\xfe"},
    "a lone surrogate": lambda: {"text": "bad \udc80 text"},
    "a lone surrogate string": lambda: "bad \ud800 text",
    "a huge integer and NaN": lambda: {"n": 10**400, "f": float("nan")},
    "not a dict": lambda: ["a", "list"],
    "a huge output": lambda: {"text": "n" * 600_000},
}
_ERRORS: dict[str, Callable[[], BaseException]] = {
    "an error with a lone surrogate": lambda: ValueError("broken \udcff message"),
    "an error whose message cannot be read": _UnprintableError,
    "a huge error message": lambda: RuntimeError("e" * 50_000),
}


@pytest.mark.parametrize("case", sorted(_OUTPUTS) + sorted(_ERRORS))
def test_any_tool_output_is_stored_and_the_agent_goes_on(memory_world: World, case: str) -> None:
    # GIVEN a tool that returns or raises something that cannot be stored as it is
    tools = ToolRegistry()

    @tools.tool(timeout_seconds=2)
    def odd(args: _Empty, ctx: ToolContext) -> Any:
        """Answers oddly."""
        if case in _ERRORS:
            raise _ERRORS[case]()
        return _OUTPUTS[case]()

    world = memory_world(tools=tools, responder=_script(_calls("odd"), {"text": "Done."}))
    agent_id = world.start(GOAL)
    # WHEN the agent runs
    world.run()
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
    # AND what the model reads of an error is bounded (the logs keep the rest)
    if case in _ERRORS:
        assert len(text) < MAX_ERROR_CHARS + 1000
