"""People approve side effects, and budgets cap them: a model that books too much, on prod.

The prod stack's flight agent needs a person's approval for each booking and may book once
in its life (``approvals`` and ``toolBudgets`` of its definition). A scripted model asks for
more bookings than the goal needs; the platform holds, asks, records and refuses.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from agentry_flights import registry as flights
from agentry_offline.script import Script
from agentry_runtime.tools import ToolContext
from agentry_stacks.local import LocalEnvironment

GOAL = "Book one flight from New York to San Francisco for tomorrow"


def _flights(day: str) -> list[str]:
    query = {"origin": "New York", "destination": "San Francisco", "date": day}
    ctx = ToolContext(agent_id="a", tool_use_id="t", table_name="-", dynamodb=None)
    outcome = flights.execute("get_flight_info", query, ctx)
    return [f["flight_id"] for f in outcome.content[0]["json"]["flights"]]


def _greedy_script(*, again: bool = True) -> Script:
    """Look up, then book two flights at once, then (``again``) try a third booking, then
    answer."""
    day = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)).isoformat()
    query = {"origin": "New York", "destination": "San Francisco", "date": day}
    first, second, *_ = _flights(day) * 2
    book = [{"name": "book_flight", "input": {**query, "flight_id": f}} for f in (first, second)]
    turns: list[dict[str, Any]] = [
        {"toolUse": [{"name": "get_flight_info", "input": query}]},
        {"toolUse": book},
    ]
    if again:
        turns.append({"toolUse": book[:1]})
    turns.append({"text": "Done."})
    return Script.model_validate({"turns": turns})


def _held(env: LocalEnvironment, agent_id: str) -> list[dict[str, Any]]:
    return [c for c in env.approvals(agent_id)["calls"] if c["decision"] == "PENDING"]


def test_nothing_is_booked_until_approved_and_the_budget_stops_a_second_booking(
    prod_graph: dict[str, Any],
) -> None:
    with LocalEnvironment(graph=prod_graph, script=_greedy_script()) as env:
        # GIVEN an agent whose model asks for two bookings in one turn
        agent_id = env.start(GOAL)
        env.run_until_idle()
        # THEN it waits for a person, nothing is booked, and the humans were told (ids only)
        assert env.agent(agent_id)["status"] == "AWAITING_APPROVAL"
        assert env.bookings(agent_id) == []
        (held,) = _held(env, agent_id)  # the second is over the budget: never even asked
        assert held["toolName"] == "book_flight"
        assert held["input"]["flight_id"]
        (notice,) = [
            n["message"] for n in env.notifications() if n["message"]["agentId"] == agent_id
        ]
        assert notice["status"] == "AWAITING_APPROVAL"
        assert notice["tools"] == ["book_flight"]
        assert "flight_id" not in json.dumps(notice)
        # WHEN the person approves it
        env.decide(agent_id, approve=True)
        env.run_until_idle()
        # THEN exactly one flight was booked; the call over budget was refused to the model,
        # and the model's next booking attempt, after being told, went to a human
        assert len(env.bookings(agent_id)) == 1
        view = env.agent(agent_id)
        statuses = [entry["status"] for entry in view["plan"] if entry["toolName"] == "book_flight"]
        assert statuses == ["COMPLETED", "SKIPPED", "SKIPPED"]
        assert view["status"] == "NEEDS_HUMAN"
        assert view["lastError"]["errorType"] == "BudgetExceeded"
        assert view["metadata"]["toolUses"] == {"book_flight": 1, "get_flight_info": 1}
        # AND a resume does not reset the budget: the next attempt is refused again
        env.resume(agent_id, "Try once more.")
        env.run_until_idle()
        assert len(env.bookings(agent_id)) == 1


def test_a_rejection_reaches_the_model_with_its_reason(prod_graph: dict[str, Any]) -> None:
    with LocalEnvironment(graph=prod_graph, script=_greedy_script()) as env:
        # GIVEN an agent waiting for approval of a booking
        agent_id = env.start(GOAL)
        env.run_until_idle()
        # WHEN the person rejects it, saying why
        env.decide(agent_id, approve=False, reason="Too expensive, ask the traveller first")
        env.run_until_idle()
        # THEN nothing was booked, and the model's next turn saw the rejection and the reason
        assert env.bookings(agent_id) == []
        _, page = env.call("GET", f"/agents/{agent_id}/messages", query={"limit": "100"})
        results = [
            block["toolResult"]
            for message in page["messages"]
            for block in message["content"]
            if "toolResult" in block
        ]
        reason = "Too expensive, ask the traveller first"
        (rejected,) = [r for r in results if reason in json.dumps(r)]
        assert rejected["status"] == "error"
        assert "a person rejected this call" in json.dumps(rejected)
        decided = env.agent(agent_id)["plan"]
        assert next(e["status"] for e in decided if e["toolName"] == "book_flight") == "REJECTED"


def test_an_unanswered_approval_is_rejected_when_its_window_closes(
    prod_graph: dict[str, Any],
) -> None:
    with LocalEnvironment(graph=prod_graph, script=_greedy_script(again=False)) as env:
        # GIVEN an agent waiting for approval, and a window that has closed
        agent_id = env.start(GOAL)
        env.run_until_idle()
        env.expire_approvals()
        # WHEN the reconciler runs, as its schedule would
        env.reconcile()
        env.run_until_idle()
        # THEN the held call was rejected by the platform and the agent went on without it
        assert env.bookings(agent_id) == []
        view = env.agent(agent_id)
        assert view["status"] != "AWAITING_APPROVAL"
        assert next(e["status"] for e in view["plan"] if e["toolName"] == "book_flight") == (
            "REJECTED"
        )


def test_decisions_on_calls_that_do_not_wait_are_refused(prod_graph: dict[str, Any]) -> None:
    with LocalEnvironment(graph=prod_graph, script=_greedy_script()) as env:
        agent_id = env.start(GOAL)
        env.run_until_idle()
        # WHEN a decision names a call that does not wait THEN 400 naming the decisions
        body = {"decisions": [{"toolUseId": "tooluse_nothing", "approve": True}]}
        status, answer = env.call("POST", f"/agents/{agent_id}/approvals", body)
        assert status == 400
        assert answer["error"]["fields"][0]["field"] == "decisions"
        # AND deciding the same call twice in one request is refused too
        (held,) = _held(env, agent_id)
        twice = {"decisions": [{"toolUseId": held["toolUseId"], "approve": True}] * 2}
        assert env.call("POST", f"/agents/{agent_id}/approvals", twice)[0] == 400
        assert env.bookings(agent_id) == []
