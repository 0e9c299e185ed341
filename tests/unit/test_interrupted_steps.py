"""A step interrupted for good (dead-lettered, or an act that failed before recording its
calls): what it left (turns past the header, calls without results) joins the history before
a person's instruction or recovery's plan, so no call that ran is erased, none runs late, and
every later plan is a request Converse accepts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from support.agents import MODEL_ID
from support.memory_world import MemoryWorld

from agentry_offline.bedrock import validate_request
from agentry_offline.script import Script, ScriptedModel
from agentry_runtime.contract import ErrorType, StepKind, StepRequested
from agentry_runtime.errors import AgentError
from agentry_runtime.interrupted import NOT_RUN_REASON, settle, stated_result
from agentry_runtime.model import ModelClient, ModelSettings
from agentry_runtime.prompts import converse_messages
from agentry_runtime.state import (
    AgentHeader,
    ClaimStatus,
    Message,
    Origin,
    Outcome,
    Status,
    TextBlock,
    ToolClaim,
    ToolResult,
    ToolResultBlock,
    ToolUse,
    ToolUseBlock,
)
from agentry_runtime.tools import ToolContext, ToolRegistry

GOAL = "Charge the card once"
FIFTEEN_MINUTES = 900.0
World = Callable[..., MemoryWorld]


class _Empty(BaseModel):
    pass


def _call(name: str) -> dict[str, Any]:
    return {"toolUse": [{"name": name, "input": {}}]}


def _world(memory_world: World, turns: list[dict[str, Any]], **kwargs: Any) -> MemoryWorld:
    """An agent that can look up (read-only) and charge (an effect), scripted by ``turns``."""
    tools = ToolRegistry()

    @tools.tool(timeout_seconds=5, read_only=True)
    def lookup(args: _Empty, ctx: ToolContext) -> dict[str, Any]:
        """Looks something up."""
        return {"found": True}

    @tools.tool(timeout_seconds=5)
    def charge(args: _Empty, ctx: ToolContext) -> dict[str, Any]:
        """Charges a card."""
        world.charges.append(ctx.tool_use_id)
        return {"charged": True}

    script = ScriptedModel(Script.model_validate({"turns": turns}))
    world = memory_world(tools=tools, responder=script, **kwargs)
    world.charges = []  # type: ignore[attr-defined]
    return world


def _park(world: MemoryWorld, agent_id: str) -> None:
    """Hand the agent to a person, as the recovery machine's park does (what was written until
    then is not announced: nothing is delivered before the person acts)."""
    header = world.store.get_header(agent_id)
    world.store.commit(header.version, header.model_copy(update={"status": Status.NEEDS_HUMAN}))
    world.skip_announcements()


def _completed(world: MemoryWorld, agent_id: str) -> tuple[AgentHeader, list[Message]]:
    """The agent's header and counted history, once it completed (else its error fails)."""
    header = world.store.get_header(agent_id)
    assert header.status == Status.COMPLETED, header.last_error_type
    return header, world.store.messages(agent_id, last=header.message_count - 1)


def _next_step(world: MemoryWorld) -> StepRequested:
    """Announce what was committed, and take the step event it made."""
    world.announce()
    return world.queue.popleft()


def _stale_charge(message: Message) -> Message:
    """An older version of ``message``: a charge a failed step wrote at its seq."""
    call = ToolUse(tool_use_id="tooluse_old", name="charge", input={})
    return message.model_copy(
        update={"step": message.step - 1, "content": [ToolUseBlock(tool_use=call)]}
    )


def test_a_resume_after_an_act_that_failed_before_its_calls_answers_them_and_runs_on(
    memory_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an agent whose plan asked for a charge, whose act failed before running it (its
    # definition left the stack's config), and which a person now holds
    world = _world(memory_world, [_call("charge"), {"text": "Done."}])
    agent_id = world.start(GOAL)
    world.deliver(_next_step(world), chain=False)
    act = _next_step(world)

    def undefined(header: AgentHeader) -> Any:
        raise AgentError(ErrorType.AGENT_NOT_DEFINED, "the definition left the config")

    with monkeypatch.context() as gone:
        gone.setattr(world.loop, "_agent", undefined)
        world.deliver(act, chain=False)
    assert world.store.get_header(agent_id).status == Status.TOOL_EXECUTION_FAILED
    _park(world, agent_id)
    # WHEN the person resumes it (the definition is back)
    world.service.resume(agent_id, "Go on.")
    world.run()
    # THEN the agent completes: the charge was answered "not executed" before the instruction
    # (a history with a call and no result is a request Bedrock refuses), and never ran
    _, history = _completed(world, agent_id)
    assert [(m.role, m.outcome) for m in history][1:4] == [
        ("assistant", None),
        ("user", Outcome.SKIPPED),
        ("user", None),
    ]
    assert world.charges == []  # type: ignore[attr-defined]
    # AND no late worker of the interrupted step can run it: its claim is a rejection
    turn = history[1]
    claim = world.store.get_claim(agent_id, turn.seq, turn.tool_uses()[0].tool_use_id)
    assert claim is not None
    assert claim.status == ClaimStatus.REJECTED
    assert claim.reason == NOT_RUN_REASON


def test_a_resume_keeps_every_turn_a_dead_chain_wrote_past_its_header(
    memory_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a chaining worker that looked up, then charged, and died as it started the next
    # plan; its step was dead-lettered (its redeliveries never adopted what it wrote) and a
    # person holds the agent
    world = _world(
        memory_world,
        [_call("lookup"), _call("charge"), {"text": "Done."}],
        worker_seconds=FIFTEEN_MINUTES,
    )
    settings = ModelSettings(model_id=MODEL_ID, max_attempts=1, read_timeout_seconds=5)
    world.agent.model = ModelClient(settings, client=world.bedrock)
    plan = world.loop._plan
    plans = {"n": 0}

    def dying_plan(*args: Any, **kwargs: Any) -> Any:
        plans["n"] += 1
        if plans["n"] == 3:
            raise SystemExit("the worker's process died")
        return plan(*args, **kwargs)

    agent_id = world.start(GOAL)
    with monkeypatch.context() as dying:
        dying.setattr(world.loop, "_plan", dying_plan)
        with pytest.raises(SystemExit):
            world.run()
    held = world.store.get_header(agent_id)
    assert held.message_count == 2  # the lookup's turn; its result and the charge lie past it
    assert len(world.charges) == 1  # type: ignore[attr-defined]
    dead_lettered = held.model_copy(
        update={
            "status": Status.TOOL_EXECUTION_FAILED,
            "step": held.step + 1,
            "next_step": None,
            "runner_until": None,
            "last_error_type": ErrorType.STEP_DEAD_LETTERED,
        }
    )
    world.store.commit(held.version, dead_lettered)  # as the reconciler writes it
    _park(world, agent_id)
    # WHEN the person resumes it
    world.service.resume(agent_id, "Go on.")
    world.run()
    # THEN the lookup, the charge and their results are in the history before the instruction,
    # the charge ran once, and the budgets count it
    header, history = _completed(world, agent_id)
    results = [(m.tool_name, m.outcome) for m in history if m.outcome is not None]
    assert results == [("lookup", Outcome.SUCCEEDED), ("charge", Outcome.SUCCEEDED)]
    assert [m.origin for m in history].index(Origin.OPERATOR) == 5
    assert len(world.charges) == 1  # type: ignore[attr-defined]
    assert header.tool_uses == {"lookup": 1, "charge": 1}
    assert header.tool_call_count == 2


# --- settle, directly ----------------------------------------------------------------------------


def _turn(seq: int, *names: str) -> Message:
    return Message(
        seq=seq,
        role="assistant",
        content=[
            ToolUseBlock(tool_use=ToolUse(tool_use_id=f"t{seq}-{i}", name=name, input={}))
            for i, name in enumerate(names)
        ],
        step=seq,
    )


def _user(seq: int) -> Message:
    return Message(seq=seq, role="user", content=[TextBlock(text="hi")], step=seq)


def _claim(turn: Message, index: int, status: ClaimStatus) -> ToolClaim:
    call = turn.tool_uses()[index]
    return ToolClaim(
        agent_id="a",
        turn_seq=turn.seq,
        tool_use_id=call.tool_use_id,
        name=call.name,
        result_seq=turn.seq + 1 + index,
        status=status,
    )


def test_a_history_that_ends_whole_settles_to_nothing() -> None:
    # GIVEN a history whose last counted message is a person's, with nothing past it
    # WHEN settled THEN nothing is counted or written
    settled = settle("a", 1, [_user(0)], {}, step=9)
    assert settled.count == 0
    assert settled.unrun == []


def test_a_turn_past_the_header_none_of_whose_calls_was_claimed_is_left() -> None:
    # GIVEN a plan's turn written past the header, whose calls no worker claimed
    stored = [_user(0), _turn(1, "charge")]
    # WHEN settled THEN it changed nothing: it is not counted (the person's message replaces it)
    assert settle("a", 1, stored, {}, step=9).count == 0


def test_a_claimed_call_without_a_result_is_stated_unknown_and_counted() -> None:
    # GIVEN a turn past the header with two calls: the first claimed (its worker died mid-call)
    turn = _turn(1, "charge", "charge")
    claims = {(1, "t1-0"): _claim(turn, 0, ClaimStatus.IN_PROGRESS)}
    # WHEN settled
    settled = settle("a", 1, [_user(0), turn], claims, step=9)
    # THEN the turn is counted, the first call's outcome is unknown (budgeted), the second was
    # never run (and is to be rejected before anyone can claim it)
    assert settled.adopted == [turn]
    assert [(m.seq, m.outcome, m.step) for m in settled.written] == [
        (2, Outcome.UNKNOWN, 9),
        (3, Outcome.SKIPPED, 9),
    ]
    assert [c.tool_use_id for c in settled.unrun] == ["t1-1"]
    assert settled.tool_uses({}) == {"charge": 1}
    assert settled.calls_run == 1


def test_an_approval_no_worker_took_is_withheld_and_a_rejection_is_kept() -> None:
    # GIVEN a counted turn with an approved call and a rejected one, neither run
    turn = _turn(1, "charge", "refund")
    claims = {
        (1, "t1-0"): _claim(turn, 0, ClaimStatus.APPROVED),
        (1, "t1-1"): _claim(turn, 1, ClaimStatus.REJECTED),
    }
    # WHEN settled
    settled = settle("a", 2, [turn], claims, step=9)
    # THEN both are answered "not executed"; only the approval is to be withheld
    assert [m.outcome for m in settled.written] == [Outcome.SKIPPED, Outcome.REJECTED]
    assert [c.tool_use_id for c in settled.unrun] == ["t1-0"]
    assert settled.calls_run == 0


def test_a_recovery_after_an_act_that_failed_before_its_calls_plans_with_them_answered(
    memory_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an agent whose act failed with an internal error before running its charge (a
    # retryable error: the recovery machine asks for a new plan, as it writes it)
    world = _world(memory_world, [_call("charge"), {"text": "Done."}])
    agent_id = world.start(GOAL)
    world.deliver(_next_step(world), chain=False)
    act = _next_step(world)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise AgentError(ErrorType.INTERNAL, "an item could not be read")

    with monkeypatch.context() as failing:
        failing.setattr(world.loop, "_act", broken)
        world.deliver(act, chain=False)
    failed = world.store.get_header(agent_id)
    assert failed.last_error_type == ErrorType.INTERNAL
    world.store.commit(
        failed.version,
        failed.model_copy(
            update={
                "status": Status.RECOVERING,
                "step": failed.step + 1,
                "next_step": StepKind.PLAN,
                "recovery_attempts": 1,
            }
        ),
    )
    # WHEN the recovery's plan runs
    world.run()
    # THEN it asked the model with the charge answered "not executed" (a request with an
    # unanswered call is refused, and the agent would go to a person for nothing), and the
    # agent completed without charging
    _, history = _completed(world, agent_id)
    assert [m.outcome for m in history if m.outcome] == [Outcome.SKIPPED]
    assert world.charges == []  # type: ignore[attr-defined]


def test_an_act_never_runs_the_calls_of_an_overwritten_turn_a_stale_read_returns(
    memory_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an agent whose plan committed a lookup at a message an earlier, failed step had
    # written a charge at, and an eventually consistent read that still returns the charge
    world = _world(memory_world, [_call("lookup"), {"text": "Done."}])
    agent_id = world.start(GOAL)
    world.deliver(_next_step(world), chain=False)
    header = world.store.get_header(agent_id)
    committed = world.store.messages(agent_id)[header.message_count - 1]
    stale = _stale_charge(committed)
    read = world.store.get_message

    def lagging(agent: str, seq: int, *, consistent: bool = False) -> Message | None:
        if seq == committed.seq and not consistent:
            return stale
        return read(agent, seq, consistent=consistent)

    monkeypatch.setattr(world.store, "get_message", lagging)
    # WHEN the act runs
    world.deliver(_next_step(world), chain=False)
    # THEN it ran the committed turn's lookup, and never the charge
    assert world.charges == []  # type: ignore[attr-defined]
    history = world.store.messages(agent_id)
    assert [m.tool_name for m in history if m.tool_name] == ["lookup"]


def test_a_plan_never_prompts_with_an_overwritten_turn_a_stale_read_returns(
    memory_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an agent that looked something up, whose lookup's turn overwrote a charge an
    # earlier, failed step had written there, and an eventually consistent read that still
    # returns the charge (contiguous, but answered by a result for another call)
    world = _world(memory_world, [_call("lookup"), {"text": "Done."}])
    agent_id = world.start(GOAL)
    world.deliver(_next_step(world), chain=False)
    world.deliver(_next_step(world), chain=False)
    committed = world.store.messages(agent_id)[1]
    stale = _stale_charge(committed)
    read = world.store.messages

    def lagging(agent: str, **kwargs: Any) -> list[Message]:
        messages = read(agent, **kwargs)
        if kwargs.get("consistent", True):
            return messages
        return [stale if m.seq == stale.seq else m for m in messages]

    monkeypatch.setattr(world.store, "messages", lagging)
    # WHEN the next plan runs
    world.deliver(_next_step(world), chain=False)
    # THEN the model was asked with the committed lookup, never the stale charge
    prompt = json.dumps(world.bedrock.requests[-1])
    assert committed.tool_uses()[0].tool_use_id in prompt
    assert "tooluse_old" not in prompt
    assert world.store.get_header(agent_id).status == Status.COMPLETED


# --- settle, over every way a step can be interrupted ------------------------------------------

_TOOLS = {"tools": [{"toolSpec": {"name": "charge", "inputSchema": {"json": {"type": "object"}}}}]}


def _result(seq: int, turn: Message, index: int) -> Message:
    call = turn.tool_uses()[index]
    return stated_result(seq, turn.step + 1, call, "ok", Outcome.SUCCEEDED).model_copy(
        update={
            "content": [
                ToolResultBlock(
                    tool_result=ToolResult(
                        tool_use_id=call.tool_use_id, content=[{"text": "ok"}], status="success"
                    )
                )
            ]
        }
    )


@st.composite
def _interrupted(draw: st.DrawFn) -> tuple[int, list[Message], dict[tuple[int, str], ToolClaim]]:
    """A history cut by a dead step: the header's count, every stored message, the claims.

    The acts ran their calls in order: those before the cut have a claim and a result; the one
    it died in may have a claim; the rest have none, or a person's decision (a counted turn).
    Turns past the header come from a chain (each after the results of the one before).
    """
    messages: list[Message] = [_user(0)]
    claims: dict[tuple[int, str], ToolClaim] = {}
    for _ in range(draw(st.integers(0, 2))):  # whole exchanges before
        turn = _turn(len(messages), *["charge"] * draw(st.integers(1, 3)))
        messages += [
            turn,
            *(_result(turn.seq + 1 + i, turn, i) for i in range(len(turn.tool_uses()))),
        ]
    count = len(messages)
    counted_turn = draw(st.booleans())
    turns = draw(st.integers(1, 3)) if counted_turn else draw(st.integers(0, 3))
    for number in range(turns):
        calls = draw(st.integers(1, 3))
        turn = _turn(len(messages), *["charge"] * calls)
        messages.append(turn)
        if counted_turn and number == 0:
            count = len(messages)
        last = number == turns - 1
        done = draw(st.integers(0, calls)) if last else calls
        for index in range(calls):
            if index < done:
                claims[(turn.seq, turn.tool_uses()[index].tool_use_id)] = _claim(
                    turn, index, ClaimStatus.IN_PROGRESS
                )
                messages.append(_result(turn.seq + 1 + index, turn, index))
                continue
            status = draw(
                st.sampled_from(
                    [None, ClaimStatus.IN_PROGRESS]
                    if index == done
                    else [None]
                    + ([ClaimStatus.APPROVED, ClaimStatus.REJECTED] if number == 0 else [])
                )
            )
            if status is not None:
                claims[(turn.seq, turn.tool_uses()[index].tool_use_id)] = _claim(
                    turn, index, status
                )
        if done < calls:
            break
    return count, messages, claims


@given(_interrupted())
@settings(max_examples=300, deadline=None)
def test_whatever_a_dead_step_left_the_settled_history_is_valid_and_keeps_every_claimed_call(
    case: tuple[int, list[Message], dict[tuple[int, str], ToolClaim]],
) -> None:
    count, stored, claims = case
    # GIVEN a history cut anywhere by a dead step WHEN settled for a person's instruction
    settled = settle("a", count, stored[count - 1 :], claims, step=99)
    history = [*stored[:count], *settled.adopted, *settled.written]
    history.append(_user(len(history)).model_copy(update={"origin": Origin.OPERATOR}))
    # THEN the history is contiguous and a request Bedrock accepts (every call answered once)
    assert [m.seq for m in history] == list(range(len(history)))
    request = {"modelId": MODEL_ID, "messages": converse_messages(history), "toolConfig": _TOOLS}
    assert validate_request(request) is None, validate_request(request)
    # AND every call a worker claimed is in it, with the result its worker recorded or an
    # unknown outcome, never "not executed"; only calls nothing ran are withheld
    outcomes = {r.tool_use_id: m.outcome for m in history for r in m.tool_results() if m.outcome}
    for (_, tool_use_id), claim in claims.items():
        if claim.status == ClaimStatus.IN_PROGRESS:
            assert outcomes[tool_use_id] in (Outcome.SUCCEEDED, Outcome.UNKNOWN)
    withheld = {c.tool_use_id for c in settled.unrun}
    assert withheld == {
        tool_use_id for tool_use_id, outcome in outcomes.items() if outcome == Outcome.SKIPPED
    }
    for tool_use_id in withheld:
        claim = next((c for c in claims.values() if c.tool_use_id == tool_use_id), None)
        assert claim is None or claim.status == ClaimStatus.APPROVED
