"""Chained steps on the in-memory table: a worker runs an agent's next steps while each one's
worst case fits, writes the header when the chain starts, at least every 10 s and at its end,
and a takeover of a dead chain adopts what it wrote.

The model client here gives up after one 5 s attempt, so its worst case (10 s) fits many times
in a 15-minute invocation; the default client's does not, and then only acts chain.
``tests/runtime/test_chaining.py`` keeps, on moto, what the stream and the queue add: the
header writes the stream carries and the watchdog message that takes a dead chain over.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel
from support.agents import MODEL_ID
from support.memory_world import MemoryWorld

from agentry_offline.bedrock import error_response
from agentry_offline.script import Script, ScriptedModel
from agentry_runtime.contract import StepKind, StepRequested
from agentry_runtime.model import ModelClient, ModelSettings
from agentry_runtime.state import Outcome, Status
from agentry_runtime.tools import ToolContext, ToolRegistry

GOAL = "Book a flight from New York to San Francisco for tomorrow"
#: Lambda's longest invocation.
FIFTEEN_MINUTES = 900.0
World = Callable[..., MemoryWorld]


def _quick_model(world: MemoryWorld) -> None:
    settings = ModelSettings(model_id=MODEL_ID, max_attempts=1, read_timeout_seconds=5)
    world.agent.model = ModelClient(settings, client=world.bedrock)


def test_a_whole_agent_runs_in_one_delivery_with_three_header_writes(
    memory_world: World,
) -> None:
    # GIVEN a worker with fifteen minutes and a model whose worst case fits
    world = memory_world(worker_seconds=FIFTEEN_MINUTES)
    _quick_model(world)
    agent_id = world.start(GOAL)
    # WHEN its first step event is delivered
    deliveries = world.run()
    # THEN one delivery ran all five steps (plan, act, plan, act, answer) with one booking, and
    # the header was written at creation, when the chain started and at its end: the steps in
    # between (well within COMMIT_EVERY_SECONDS) folded into the last commit
    header = world.store.get_header(agent_id)
    assert header.status == Status.COMPLETED
    assert header.step == 5
    assert deliveries == 1
    assert world.results[0].steps == 5
    assert len(world.bookings(agent_id)) == 1
    assert world.header_writes(agent_id) == 3
    assert header.runner_until is None


def test_without_room_for_the_models_worst_case_only_acts_chain(memory_world: World) -> None:
    # GIVEN the default model client (four attempts of 120 s) and a two-minute worker
    world = memory_world(worker_seconds=120)
    agent_id = world.start(GOAL)
    # WHEN it runs THEN each plan waited for its own event: three deliveries, one per plan
    assert world.run() == 3
    assert world.store.get_header(agent_id).status == Status.COMPLETED


@pytest.mark.parametrize("crash_at_plan", [2, 3])
def test_a_chain_that_dies_after_a_folded_act_is_taken_over_without_running_a_tool_again(
    memory_world: World, monkeypatch: pytest.MonkeyPatch, crash_at_plan: int
) -> None:
    # GIVEN a chaining worker whose process dies when it starts the nth plan, after the act
    # before it ran its tool and recorded the outcome, but wrote no header
    world = memory_world(worker_seconds=FIFTEEN_MINUTES)
    _quick_model(world)
    plan = world.loop._plan
    plans = {"n": 0}

    def dying_plan(*args: Any, **kwargs: Any) -> Any:
        plans["n"] += 1
        if plans["n"] == crash_at_plan:
            raise SystemExit("the worker's process died")
        return plan(*args, **kwargs)

    monkeypatch.setattr(world.loop, "_plan", dying_plan)
    agent_id = world.start(GOAL)
    with pytest.raises(SystemExit):
        world.run()
    in_flight = world.delivered[-1]
    held = world.store.get_header(agent_id)
    assert held.next_step == StepKind.ACT  # the act ran, its header was never written
    assert held.runner_until is not None
    tool_runs = len(world.bookings(agent_id))
    # WHEN the chain's deadline passes and its first event (the watchdog) comes back
    world.store.commit(held.version, held.model_copy(update={"runner_until": 1.0}))
    world.skip_announcements()
    world.deliver(in_flight)
    world.run()
    # THEN the agent completed, the act's tool did not run again, and no outcome is unknown
    header = world.store.get_header(agent_id)
    assert header.status == Status.COMPLETED
    assert len(world.bookings(agent_id)) == max(tool_runs, 1)
    outcomes = [m.outcome for m in world.store.messages(agent_id) if m.outcome is not None]
    assert Outcome.UNKNOWN not in outcomes
    assert outcomes.count(Outcome.SUCCEEDED) == 2


def test_a_live_chain_holds_the_agent_against_other_deliveries(memory_world: World) -> None:
    # GIVEN an agent held by a chaining worker whose deadline has not passed
    world = memory_world()
    agent_id = world.start(GOAL)
    header = world.store.get_header(agent_id)
    far = world.loop._clock() + 600
    world.store.commit(header.version, header.model_copy(update={"runner_until": far}))
    # WHEN its step event is delivered to another worker
    result = world.deliver(StepRequested(agent_id=agent_id, step=0, kind=StepKind.PLAN))
    # THEN that worker leaves it alone
    assert result.reason == "a chaining worker holds it"
    assert world.store.get_header(agent_id).step == 0


class _Empty(BaseModel):
    pass


@pytest.mark.parametrize("recheck", [True, False])
def test_a_cancel_that_lands_mid_chain_stops_the_next_call_with_an_effect(
    memory_world: World, recheck: bool
) -> None:
    # GIVEN a chaining agent that looks something up, then charges; a person cancels it while
    # the lookup runs (a step the chain folds: its header is not written)
    tools = ToolRegistry()
    ran: list[str] = []
    cancel: list[Callable[[str], Any]] = []

    @tools.tool(timeout_seconds=5, read_only=True)
    def lookup(args: _Empty, ctx: ToolContext) -> dict[str, Any]:
        """Looks something up."""
        ran.append("lookup")
        cancel[0](ctx.agent_id)
        return {}

    @tools.tool(timeout_seconds=5)
    def charge(args: _Empty, ctx: ToolContext) -> dict[str, Any]:
        """Charges a card."""
        ran.append("charge")
        return {}

    script = Script.model_validate(
        {"turns": [_call("lookup"), _call("charge"), {"text": "Charged."}]}
    )
    world = memory_world(tools=tools, responder=ScriptedModel(script))
    world.worker_seconds = FIFTEEN_MINUTES
    _quick_model(world)
    cancel.append(world.service.cancel)
    world.loop.recheck_cancellation = recheck
    agent_id = world.start(GOAL)
    # WHEN its first step event is delivered and the chain runs on
    world.run()
    # THEN the chain read the header before the charge, found the cancel and charged nothing
    # (without that read, the stale in-memory header lets the charge run)
    assert world.store.get_header(agent_id).status == Status.CANCELLED
    assert ran == (["lookup"] if recheck else ["lookup", "charge"])


def _call(name: str) -> dict[str, Any]:
    return {"toolUse": [{"name": name, "input": {}}]}


def test_a_takeover_commits_every_turn_its_dead_chain_wrote_without_asking_the_model(
    memory_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a chaining worker that looked up twice, then charged, and died as it started the
    # answer's plan, having written the header only when the chain began
    tools = ToolRegistry()
    charges: list[str] = []

    @tools.tool(timeout_seconds=5, read_only=True)
    def lookup(args: _Empty, ctx: ToolContext) -> dict[str, Any]:
        """Looks something up."""
        return {"found": True}

    @tools.tool(timeout_seconds=5)
    def charge(args: _Empty, ctx: ToolContext) -> dict[str, Any]:
        """Charges a card."""
        charges.append(ctx.tool_use_id)
        return {"charged": True}

    script = ScriptedModel(
        Script.model_validate(
            {"turns": [_call("lookup"), _call("lookup"), _call("charge"), {"text": "Done."}]}
        )
    )
    down: list[bool] = []

    def responder(model_id: str, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        if down:
            return error_response(503, "ServiceUnavailableException", "Bedrock is down")
        return script(model_id, body)

    world = memory_world(tools=tools, responder=responder, worker_seconds=FIFTEEN_MINUTES)
    _quick_model(world)
    plan = world.loop._plan
    plans = {"n": 0}

    def dying_plan(*args: Any, **kwargs: Any) -> Any:
        plans["n"] += 1
        if plans["n"] == 4:
            raise SystemExit("the worker's process died")
        return plan(*args, **kwargs)

    agent_id = world.start(GOAL)
    with monkeypatch.context() as dying:
        dying.setattr(world.loop, "_plan", dying_plan)
        with pytest.raises(SystemExit):
            world.run()
    in_flight = world.delivered[-1]
    held = world.store.get_header(agent_id)
    assert held.message_count == 2  # only the first turn is counted: the rest lies past it
    assert len(charges) == 1
    # WHEN the chain's deadline passes and its event comes back while the model is down
    world.store.commit(held.version, held.model_copy(update={"runner_until": 1.0}))
    world.skip_announcements()
    asked = len(world.bedrock.requests)
    down.append(True)
    world.deliver(in_flight)
    # THEN the takeover committed each turn the dead chain wrote, in order, and asked the model
    # only for the answer after them (which fails while it is down); nothing was charged twice
    header = world.store.get_header(agent_id)
    history = world.store.messages(agent_id, last=header.message_count - 1)
    assert [m.tool_name for m in history if m.tool_name] == ["lookup", "lookup", "charge"]
    assert len(world.bedrock.requests) - asked == world.bedrock.total_max_attempts
    assert len(charges) == 1


def test_a_takeover_writes_its_own_lease_before_its_first_step_folds(memory_world: World) -> None:
    # GIVEN an agent whose chaining worker died (its lease passed)
    world = memory_world(worker_seconds=FIFTEEN_MINUTES)
    _quick_model(world)
    agent_id = world.start(GOAL)
    header = world.store.get_header(agent_id)
    world.store.commit(header.version, header.model_copy(update={"runner_until": 1.0}))
    world.skip_announcements()
    writes = world.header_writes(agent_id)
    leases: list[float | None] = []
    commit = world.store.commit

    def observed(expected: int, after: Any) -> Any:
        leases.append(after.runner_until)
        return commit(expected, after)

    world.store.commit = observed  # type: ignore[method-assign]
    # WHEN its event is delivered again and the new worker chains
    world.deliver(StepRequested(agent_id=agent_id, step=0, kind=StepKind.PLAN))
    # THEN its first commit carries its own lease (so other stale deliveries leave the agent to
    # it), and the rest of the chain folds as usual
    assert leases[0] is not None
    assert leases[0] > 1.0
    assert world.header_writes(agent_id) - writes == 2
    assert world.store.get_header(agent_id).status == Status.COMPLETED
