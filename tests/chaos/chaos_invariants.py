"""The invariants every batch must satisfy once its world is at rest.

Read from the raw items, the table's stream (every write, in order), the bus (every event it
accepted), the tool executions and the humans' mailbox, not through the store's own reads, so a
store bug cannot hide itself. Each check names the agent and what broke; a batch reports them all
with its seed and the tail of its schedule.

At rest, for every agent:

- it is *settled*: ended (completed, cancelled, failed) or waiting for a person (needs human,
  awaiting approval); nothing of the platform's own is left to move it (the schedule drained
  every queue and stream and let the reconciler sweep past every lease and staleness);
- its history is whole: messages ``0..messageCount-1``, a valid Converse conversation; its
  counters agree with its items; a completed agent's last turn is its answer;
- every tool call ran at most once per (agent, toolUseId); every call that ran has its outcome
  recorded (unless the worker that ran it died, or its writes kept failing, before recording it
  and the agent never came back to it); the outcome recorded is the one that happened
  (``UNKNOWN`` may stand for anything); a call that never ran is never ``SUCCEEDED``/``FAILED``;
  every side effect (booking, ledger item) belongs to a call that ran;
- once a cancel is committed, each worker invocation starts at most one more of its calls
  with an effect (the one already past its check; read-only lookups are not re-checked);
- its header only moves forward: version and step never decrease, every status change is an
  allowed transition;
- each lifecycle transition is announced at least once (unless its stream record was given up
  during an announcer outage) and never twice for one header version and nonce, beyond what a
  lost PutEvents response or a publisher that died (or whose mark failed) before marking it
  explains; a human is mailed once per failure parked for them, and every agent parked for a
  human was mailed.

And for the batch: no error that no fault, crash or race explains; no request Bedrock would
reject; no stream record given up while the announcer was up; one agent per create request.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from chaos_agents import LEDGER_PREFIX
from chaos_world import ChaosWorld

from agentry_flights import BOOKING_PREFIX
from agentry_offline.bedrock import validate_request
from agentry_runtime.contract import (
    FAILURES,
    HUMAN_WAITS,
    INFO_SK,
    MESSAGE_PREFIX,
    META_SK,
    SUMMARY_PREFIX,
    TERMINAL,
    TOOL_PREFIX,
    DetailType,
    Status,
)
from agentry_runtime.prompts import converse_messages
from agentry_runtime.sanitize import REPLACED_NOTE
from agentry_runtime.state import ALLOWED_TRANSITIONS, AgentHeader, Message, Origin, Outcome
from agentry_runtime.store import header_from_image

#: Where an agent may rest: ended, or waiting for a person.
SETTLED = TERMINAL | HUMAN_WAITS
LIFECYCLE = (
    DetailType.AGENT_COMPLETED,
    DetailType.AGENT_ERROR,
    DetailType.AGENT_NEEDS_HUMAN,
    DetailType.AGENT_NEEDS_APPROVAL,
)
_plain = TypeDeserializer()


class InvariantViolation(AssertionError):  # noqa: N818 - named after what it reports
    """A batch broke chaos invariants; the message names the seed, the agents and the checks."""


@dataclass
class _Agent:
    agent_id: str
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Every header this agent's stream records carried: ``(record index, old, new)``.
    writes: list[tuple[int, AgentHeader | None, AgentHeader]] = field(default_factory=list)


def check(world: ChaosWorld, *, ended_badly: set[str]) -> tuple[list[str], Counter[str]]:
    """Every invariant the batch breaks (empty when it is sound), and what its agents went
    through (to show that the chaos reached them)."""
    agents = _read_agents(world)
    problems: list[str] = []
    for agent in agents.values():
        problems += [f"agent {agent.agent_id[-8:]}: {p}" for p in _agent(world, agent, ended_badly)]
    problems += _batch(world, agents)
    return problems, _seen(agents)


def _seen(agents: dict[str, _Agent]) -> Counter[str]:
    seen: Counter[str] = Counter()
    for agent in agents.values():
        if META_SK not in agent.items:
            continue
        seen[f"ends {header_from_image(agent.items[META_SK]).status.value}"] += 1
        seen["chained commits"] += sum(1 for _, _, new in agent.writes if new.runner_until)
        seen["nonce pokes"] += sum(
            1 for _, old, new in agent.writes if old is not None and old.nonce != new.nonce
        )
        for message in _messages(agent).values():
            if message.origin == Origin.TOOL and message.outcome is not None:
                seen[f"outcome {message.outcome.value}"] += 1
                if REPLACED_NOTE in json.dumps(message.to_converse()):
                    seen["hostile outputs stored"] += 1
            if message.origin == Origin.PLATFORM and message.text().startswith(
                "Your previous answer could not be used"
            ):
                seen["structural corrections"] += 1
    return seen


# --- reading ---------------------------------------------------------------------------------


def _read_agents(world: ChaosWorld) -> dict[str, _Agent]:
    agents: dict[str, _Agent] = {}
    paginator = world.harness.get_paginator("scan")
    for page in paginator.paginate(TableName=world.names, ConsistentRead=True):
        for raw in page["Items"]:
            pk = raw["pk"]["S"]
            if not pk.startswith("AGENT#"):
                continue  # Powertools' idempotency records
            agent_id = pk.removeprefix("AGENT#")
            agent = agents.setdefault(agent_id, _Agent(agent_id))
            agent.items[raw["sk"]["S"]] = raw
    for index, record in enumerate(world.stream_records()):
        data = record.to_json()["dynamodb"]
        if data["Keys"]["sk"]["S"] != META_SK or "NewImage" not in data:
            continue
        agent_id = data["Keys"]["pk"]["S"].removeprefix("AGENT#")
        old = header_from_image(data["OldImage"]) if "OldImage" in data else None
        agents.setdefault(agent_id, _Agent(agent_id)).writes.append(
            (index, old, header_from_image(data["NewImage"]))
        )
    return agents


def _values(raw: dict[str, Any]) -> dict[str, Any]:
    return {name: _number(_plain.deserialize(value)) for name, value in raw.items()}


def _number(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _messages(agent: _Agent) -> dict[int, Message]:
    messages = {}
    for sk, raw in agent.items.items():
        if not sk.startswith(MESSAGE_PREFIX):
            continue
        item = _values(raw)
        messages[int(item["seq"])] = Message.model_validate(
            {
                "seq": item["seq"],
                "role": item["role"],
                "step": item["step"],
                "origin": item.get("origin", "caller"),
                "outcome": item.get("outcome"),
                "tool_name": item.get("toolName"),
                "created_at": item["createdAt"],
                "content": json.loads(item["content"]),
            }
        )
    return messages


# --- one agent -------------------------------------------------------------------------------


def _agent(world: ChaosWorld, agent: _Agent, ended_badly: set[str]) -> list[str]:
    if META_SK not in agent.items:
        return ["no header"] if agent.items else []
    if INFO_SK not in agent.items:
        return ["a header without its info item"]
    header = header_from_image(agent.items[META_SK])
    problems: list[str] = []
    if header.status not in SETTLED:
        problems.append(
            f"stranded in {header.status} (step {header.step}, next {header.next_step}, "
            f"runner {header.runner_until}) with nothing left to move it"
        )
    messages = _messages(agent)
    counted = [messages.get(seq) for seq in range(header.message_count)]
    if None in counted:
        missing = [seq for seq, m in enumerate(counted) if m is None]
        return [*problems, f"messages {missing} of {header.message_count} are missing"]
    history: list[Message] = [m for m in counted if m is not None]
    problems += _history(world, agent, header, history)
    problems += _tools(world, agent, header, messages, history, ended_badly)
    problems += _writes(agent)
    problems += _lifecycle(world, agent, ended_badly)
    return problems


def _history(
    world: ChaosWorld, agent: _Agent, header: AgentHeader, history: list[Message]
) -> list[str]:
    problems: list[str] = []
    if not history or history[0].role != "user":
        problems.append("the history does not start with the goal")
    cancelled = header.status == Status.CANCELLED
    # A cancelled agent may stop with its last calls unanswered: judge the rest.
    answered = history[:-1] if cancelled and history and history[-1].tool_uses() else history
    agent_name = header.agent or "flights"
    tools = world.runtime.agents.get(agent_name).tools.specs()
    problem = validate_request(
        {"messages": converse_messages(answered), "toolConfig": {"tools": tools}}
    )
    if problem is not None:
        problems.append(f"history is not a valid Converse conversation: {problem}")
    if header.status == Status.COMPLETED:
        last = history[-1] if history else None
        if last is None or last.role != "assistant" or last.tool_uses() or not last.text():
            problems.append("COMPLETED, but its last turn is not an answer")
    ran = sum(
        1
        for m in history
        for _ in m.tool_results()
        if m.origin == Origin.TOOL and m.outcome not in (Outcome.REJECTED, Outcome.SKIPPED)
    )
    if header.tool_call_count != ran:
        problems.append(f"toolCallCount {header.tool_call_count}, but {ran} calls ran")
    # toolUses counts what tool budgets count: the calls that took effect, or may have.
    budgeted = sum(
        1
        for m in history
        for _ in m.tool_results()
        if m.origin == Origin.TOOL and m.outcome in (Outcome.SUCCEEDED, Outcome.UNKNOWN)
    )
    if sum(header.tool_uses.values()) != budgeted:
        problems.append(f"toolUses {header.tool_uses}, but {budgeted} calls took effect")
    if header.summary_upto_seq >= 0 and (
        f"{SUMMARY_PREFIX}{header.summary_upto_seq:08d}" not in agent.items
    ):
        problems.append(f"summaryUptoSeq {header.summary_upto_seq} has no summary")
    return problems


def _tools(
    world: ChaosWorld,
    agent: _Agent,
    header: AgentHeader,
    messages: dict[int, Message],
    history: list[Message],
    ended_badly: set[str],
) -> list[str]:
    problems: list[str] = []
    agent_id = agent.agent_id
    runs = [e for e in world.executions.log if e.agent_id == agent_id]
    counts = Counter(e.tool_use_id for e in runs)
    for tool_use_id, count in counts.items():
        if count > 1:
            problems.append(f"tool call {tool_use_id[-8:]} executed {count} times")
    executed = {e.tool_use_id: e for e in runs}
    claims = {
        _values(raw)["toolUseId"]: _values(raw)
        for sk, raw in agent.items.items()
        if sk.startswith(TOOL_PREFIX)
    }
    # A chain writes each turn before its calls and the header only later: a cancel that
    # lands in between leaves turns past the header's count, whose calls were claimed.
    asked = {
        use.tool_use_id: (message.seq, use.name, index)
        for message in messages.values()
        for index, use in enumerate(message.tool_uses())
    }
    for tool_use_id in claims:
        if tool_use_id not in asked:
            problems.append(f"claim {tool_use_id[-8:]} for a call no turn of the model asked")
    for tool_use_id, execution in executed.items():
        claim = claims.get(tool_use_id)
        if claim is None:
            problems.append(f"tool call {tool_use_id[-8:]} ran without a claim")
            continue
        answer = messages.get(int(claim["resultSeq"]))
        recorded = answer is not None and any(
            r.tool_use_id == tool_use_id for r in answer.tool_results()
        )
        if not recorded and execution.actor not in ended_badly:
            problems.append(
                f"tool call {tool_use_id[-8:]} ({execution.name}) ran in {execution.actor}, "
                "which lived on, but its outcome was never recorded"
            )
    # Every answered call of the history: the outcome recorded is the one that happened.
    for message in history:
        for result in message.tool_results():
            outcome = message.outcome
            run = executed.get(result.tool_use_id)
            if run is None and outcome in (Outcome.SUCCEEDED, Outcome.FAILED):
                if message.origin.value == "tool":
                    problems.append(
                        f"tool call {result.tool_use_id[-8:]} never ran but is {outcome}"
                    )
            elif run is not None and outcome in (Outcome.SUCCEEDED, Outcome.FAILED):
                if outcome.value != run.expected:
                    problems.append(
                        f"tool call {result.tool_use_id[-8:]} ({run.name}) recorded {outcome}, "
                        f"but its execution was {run.expected}"
                    )
            elif outcome in (Outcome.REJECTED, Outcome.SKIPPED):
                problems.append(
                    f"tool call {result.tool_use_id[-8:]} is {outcome} (nobody said so)"
                )
    # Side effects belong to calls that ran; a call that succeeded left its side effect.
    effects = {
        sk.split("#", 1)[1]: sk.split("#", 1)[0]
        for sk in agent.items
        if sk.startswith((BOOKING_PREFIX, LEDGER_PREFIX))
    }
    for tool_use_id in effects:
        if tool_use_id not in executed:
            problems.append(f"side effect of {tool_use_id[-8:]} without an execution")
    for message in history:
        for result in message.tool_results():
            run = executed.get(result.tool_use_id)
            if (
                message.outcome == Outcome.SUCCEEDED
                and run is not None
                and run.name in ("book_flight", "charge")
                and result.tool_use_id not in effects
            ):
                problems.append(f"{run.name} {result.tool_use_id[-8:]} succeeded, no side effect")
    problems += _cancellation(agent, [e for e in runs if e.name not in _READ_ONLY])
    return problems


#: Tools declared read-only: the loop does not re-read the header before them, so a cancel
#: stops them only at the chain's next commit (they change nothing).
_READ_ONLY = frozenset({"get_flight_info", "note"})


def _cancellation(agent: _Agent, runs: list[Any]) -> list[str]:
    """At most the call in flight when a cancel commits runs after it (tools with effects)."""
    cancelled_at = next(
        (
            index
            for index, old, new in agent.writes
            if new.status == Status.CANCELLED and (old is None or old.status != Status.CANCELLED)
        ),
        None,
    )
    if cancelled_at is None:
        return []
    after = Counter(e.actor for e in runs if e.position > cancelled_at)
    return [
        f"{actor} started {count} tool calls after the cancel was committed"
        for actor, count in sorted(after.items())
        if count > 1
    ]


def _reachable(status: Status) -> set[Status]:
    """Every status some sequence of allowed transitions leads to from ``status``."""
    seen: set[Status] = set()
    todo = list(ALLOWED_TRANSITIONS[status])
    while todo:
        if (current := todo.pop()) not in seen:
            seen.add(current)
            todo.extend(ALLOWED_TRANSITIONS[current])
    return seen


def _writes(agent: _Agent) -> list[str]:
    problems: list[str] = []
    previous: AgentHeader | None = None
    for index, old, new in agent.writes:
        before = old or previous
        if before is not None:
            if new.version < before.version or new.step < before.step:
                problems.append(
                    f"stream record {index}: header went back from version {before.version} "
                    f"step {before.step} to version {new.version} step {new.step}"
                )
            # A chain writes one header for several steps: its statuses may skip those between.
            allowed = (
                _reachable(before.status)
                if new.step > before.step + 1
                else ALLOWED_TRANSITIONS[before.status]
            )
            if new.status != before.status and new.status not in allowed:
                problems.append(f"stream record {index}: {before.status} -> {new.status}")
        previous = new
    return problems


def _lifecycle(world: ChaosWorld, agent: _Agent, ended_badly: set[str]) -> list[str]:
    """Announced at least once, never twice (beyond what lost answers and deaths explain)."""
    problems: list[str] = []
    given_up = [(first, last) for first, last, forced in world.seen.given_up if forced]
    due: dict[tuple[str, int], set[tuple[int, int]]] = defaultdict(set)
    skippable: dict[tuple[str, int], bool] = defaultdict(lambda: True)
    for index, old, new in agent.writes:
        kind = _lifecycle_kind(old, new)
        if kind is None:
            continue
        key = (kind, new.step)
        due[key].add((new.version, new.nonce))
        if not any(first <= index <= last for first, last in given_up):
            skippable[key] = False
    delivered: Counter[tuple[str, int]] = Counter()
    excused: Counter[tuple[str, int]] = Counter()
    for delivery in world.wire.deliveries:
        if delivery.detail_type not in LIFECYCLE or delivery.detail["agentId"] != agent.agent_id:
            continue
        key = (delivery.detail_type, int(delivery.detail["step"]))
        delivered[key] += 1
        if delivery.lost or delivery.actor in ended_badly or delivery.actor in world.seen.unmarked:
            excused[key] += 1
    for key in sorted(set(due) | set(delivered)):
        kind, step = key
        if delivered[key] > len(due.get(key, ())) + excused[key]:
            problems.append(
                f"{kind} of step {step} published {delivered[key]} times for "
                f"{len(due.get(key, ()))} header versions"
            )
        if key in due and not delivered[key] and not skippable[key]:
            problems.append(f"{kind} of step {step} was never published")
    # One notice per failure and kind: "needs a human", or "could not park it" (parking failed).
    notices = Counter(
        (int(n["step"]), n["status"])
        for n in world.seen.notifications
        if n["agentId"] == agent.agent_id
    )
    for (step, status), count in sorted(notices.items()):
        if count > 1:
            problems.append(f"humans were mailed {count} times ({status}) for step {step}")
    mailed = {step for step, status in notices if status == Status.NEEDS_HUMAN.value}
    for _, old, new in agent.writes:
        parked = new.status == Status.NEEDS_HUMAN and (old is None or old.status in FAILURES)
        if parked and new.step not in mailed:
            problems.append(f"parked for a human at step {new.step}, but nobody was mailed")
    return problems


def _lifecycle_kind(old: AgentHeader | None, new: AgentHeader) -> str | None:
    """The lifecycle event a header write is due to announce (from the design, not the code):
    one per status change into an announced status, and a failure again when poked."""
    changed = old is None or old.status != new.status
    if new.status == Status.COMPLETED and changed:
        return DetailType.AGENT_COMPLETED.value
    if new.status in FAILURES and new.next_step is None and new.last_error_type is not None:
        poked = old is not None and old.nonce != new.nonce
        if changed or poked:
            return DetailType.AGENT_ERROR.value
        return None
    if new.status == Status.NEEDS_HUMAN and changed:
        return DetailType.AGENT_NEEDS_HUMAN.value
    if new.status == Status.AWAITING_APPROVAL and changed:
        return DetailType.AGENT_NEEDS_APPROVAL.value
    return None


# --- the batch -------------------------------------------------------------------------------


def _batch(world: ChaosWorld, agents: dict[str, _Agent]) -> list[str]:
    problems = [f"{actor}: unexpected error:\n{text}" for actor, text in world.seen.unexpected]
    problems += [f"Bedrock would have rejected: {r}" for r in world.router.rejected[:3]]
    for first, last, forced in world.seen.given_up:
        if not forced:
            problems.append(
                f"the stream mapping gave up records {first}..{last} while the announcer was up"
            )
    goals: Counter[str] = Counter()
    for agent in agents.values():
        info = agent.items.get(INFO_SK)
        if info is not None:
            goals[_values(info)["goal"]] += 1
    for goal, count in sorted(goals.items()):
        if count > 1:
            problems.append(f"one create request made {count} agents: {goal!r}")
    return problems
