"""The invariants every agent must satisfy once its schedule has settled.

Read from the raw items (not through the store's own reads), so a store bug cannot hide itself.
"""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from chaos_world import ChaosWorld, sorted_keys

from agentry_flights import BOOKING_PREFIX
from agentry_offline.bedrock import validate_request
from agentry_runtime.contract import (
    MESSAGE_PREFIX,
    META_SK,
    SUMMARY_PREFIX,
    TOOL_PREFIX,
    DetailType,
)
from agentry_runtime.prompts import converse_messages
from agentry_runtime.state import Message, Status, ToolCallStatus

#: Where every agent must end once no event is in flight.
END_STATES = frozenset({Status.COMPLETED, Status.NEEDS_HUMAN, Status.FAILED, Status.CANCELLED})
_FINISHED = (ToolCallStatus.SUCCEEDED.value, ToolCallStatus.FAILED.value)


class InvariantViolation(AssertionError):  # noqa: N818 - named after what it reports
    """An agent broke a chaos invariant; the message names the agent, seed and invariant."""


def check_agents(world: ChaosWorld, agent_ids: list[str], *, seed: int) -> None:
    """Raise ``InvariantViolation`` listing every broken invariant of every agent."""
    problems = [f"agent {a}: {p}" for a in agent_ids for p in agent_problems(world, a)]
    if world.responder.rejected:
        problems.append(f"Bedrock would have rejected a request: {world.responder.rejected[0]}")
    if problems:
        raise InvariantViolation(f"seed {seed}: " + "; ".join(problems[:8]))


def agent_problems(world: ChaosWorld, agent_id: str) -> list[str]:
    """Every invariant one agent breaks (empty when it is sound)."""
    raw = world.items(agent_id)
    plain = TypeDeserializer()

    def values(item: dict[str, Any]) -> dict[str, Any]:
        return {k: _number(plain.deserialize(v)) for k, v in item.items()}

    if sum(1 for i in raw if i["sk"]["S"] == META_SK) != 1:
        return ["not exactly one META item"]
    header = world.store.get_header(agent_id)
    messages = [
        Message.model_validate(
            {
                "seq": m["seq"],
                "role": m["role"],
                "step": m["step"],
                "created_at": m["createdAt"],
                "content": json.loads(m["content"]),
            }
        )
        for m in map(values, sorted_keys(raw, MESSAGE_PREFIX))
    ]
    tools = {t["toolUseId"]: t for t in map(values, sorted_keys(raw, TOOL_PREFIX))}
    bookings = [values(b) for b in sorted_keys(raw, BOOKING_PREFIX)]
    summaries = [values(s) for s in sorted_keys(raw, SUMMARY_PREFIX)]
    cancelled = header.status == Status.CANCELLED
    problems: list[str] = []

    # Every agent settles in an end state.
    if header.status not in END_STATES:
        problems.append(f"ends in {header.status} (next step {header.next_step})")
    if header.pending_tool_use_ids and header.status != Status.TOOL_EXECUTION_PENDING:
        problems.append(f"pending tool calls {header.pending_tool_use_ids} in {header.status}")

    # No message lost or duplicated: seqs 0..n-1, as many as the header counts.
    seqs = [m.seq for m in messages]
    if seqs != list(range(header.message_count)):
        problems.append(f"message seqs {seqs} but messageCount {header.message_count}")
    if messages and messages[0].role != "user":
        problems.append("the history does not start with a user turn")
    problems += _pairing_problems(messages, cancelled=cancelled)
    specs = world.tools.specs()
    # A cancelled agent may stop with its last tool calls unanswered: judge the rest.
    answered = messages[:-1] if cancelled and messages and messages[-1].tool_uses() else messages
    problem = validate_request(
        {"messages": converse_messages(answered), "toolConfig": {"tools": specs}}
    )
    if problem is not None:
        problems.append(f"history is not a valid Converse conversation: {problem}")

    # Each committed tool call executed exactly once (plus re-runs of interrupted executions).
    results = Counter(
        r.tool_result.tool_use_id for m in messages for r in m.content if hasattr(r, "tool_result")
    )
    uses = {u.tool_use_id for m in messages for u in m.tool_uses()}
    for tool_use_id, record in tools.items():
        key = (agent_id, tool_use_id)
        ran, lost = world.executions[key], world.interrupted[key]
        if tool_use_id not in uses:
            problems.append(f"tool record {tool_use_id} was never asked for in the history")
        if record["status"] in _FINISHED:
            if ran != 1 + lost:
                problems.append(f"tool call {tool_use_id} executed {ran} times ({lost} lost)")
            if results[tool_use_id] != 1 and not cancelled:
                problems.append(f"tool call {tool_use_id} answered {results[tool_use_id]} times")
        elif not cancelled or ran > lost:
            problems.append(f"tool call {tool_use_id} left {record['status']} after {ran} runs")
    for key, count in world.executions.items():
        if key[0] == agent_id and key[1] not in tools:
            problems.append(f"tool call {key[1]} executed {count} times with no record")

    # Side effects: one booking per succeeded booking call, and none without one.
    booked = {b["sk"].removeprefix(BOOKING_PREFIX) for b in bookings}
    succeeded = {
        i
        for i, r in tools.items()
        if r["name"] == "book_flight" and r["status"] == ToolCallStatus.SUCCEEDED.value
    }
    if booked != succeeded:
        problems.append(f"bookings {sorted(booked)}, succeeded booking calls {sorted(succeeded)}")

    # The header's counters agree with the items.
    finished = sum(1 for r in tools.values() if r["status"] in _FINISHED)
    if header.tool_call_count != finished and not (
        cancelled and header.tool_call_count <= finished
    ):
        problems.append(f"toolCallCount {header.tool_call_count} but {finished} finished records")
    if header.summary_upto_seq >= 0 and header.summary_upto_seq not in {
        s["uptoSeq"] for s in summaries
    }:
        problems.append(f"summaryUptoSeq {header.summary_upto_seq} has no summary item")
    if header.status == Status.COMPLETED:
        problems += _completion_problems(world, header, messages)
    if header.status == Status.NEEDS_HUMAN and agent_id not in world.recovery.notified:
        problems.append("needs a human but no human was notified")
    return problems


def _pairing_problems(messages: list[Message], *, cancelled: bool) -> list[str]:
    """Every toolResult answers the previous turn's toolUse, and every toolUse is answered."""
    problems: list[str] = []
    seen: set[str] = set()
    for index, message in enumerate(messages):
        ids = [u.tool_use_id for u in message.tool_uses()]
        if seen & set(ids) or len(set(ids)) != len(ids):
            problems.append(f"message {message.seq} repeats a toolUseId")
        seen |= set(ids)
        answered = [b.tool_result.tool_use_id for b in message.content if hasattr(b, "tool_result")]
        previous = {u.tool_use_id for u in messages[index - 1].tool_uses()} if index else set()
        if answered and (message.role != "user" or not set(answered) <= previous):
            problems.append(f"message {message.seq} answers tool calls the turn before never made")
        if not ids:
            continue
        if index + 1 == len(messages):
            if not cancelled:
                problems.append(f"message {message.seq}: tool calls {ids} never answered")
            continue
        reply = messages[index + 1]
        replied = [b.tool_result.tool_use_id for b in reply.content if hasattr(b, "tool_result")]
        if sorted(replied) != sorted(ids):
            problems.append(f"message {reply.seq} answers {replied}, not {ids}")
    return problems


def _completion_problems(world: ChaosWorld, header: Any, messages: list[Message]) -> list[str]:
    problems: list[str] = []
    if not messages or messages[-1].role != "assistant" or messages[-1].text() != header.answer:
        problems.append("COMPLETED, but the last turn is not the answer")
    if header.published_step != header.step:
        problems.append(f"COMPLETED at step {header.step}, announced {header.published_step}")
    announced = [
        d
        for t, d in world.publisher.history
        if t == DetailType.AGENT_COMPLETED and getattr(d, "agent_id", None) == header.agent_id
    ]
    if not announced:
        problems.append("COMPLETED, but no Agent Completed event was published")
    return problems


def _number(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _number(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_number(v) for v in value]
    return value
