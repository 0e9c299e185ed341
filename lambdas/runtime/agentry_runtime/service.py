"""What the HTTP API can do to agents: create, read, follow up, resume, cancel.

Every change is one conditional commit (the header, with a person's message where there is
one); the announcer turns it into the next event. Reading builds the article's agent document
from the header, the info item and the latest messages, bounded in bytes.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from agentry_runtime.agents import AgentCatalog
from agentry_runtime.contract import ACTIVE_SHARDS, PUBLIC_ERROR_MESSAGES, TERMINAL, StepKind
from agentry_runtime.errors import (
    AgentNotFoundError,
    StaleStepError,
    TooManyAgentsError,
    UnknownToolCallError,
)
from agentry_runtime.identity import Caller, Operators
from agentry_runtime.interrupted import Settlement, settle_stored
from agentry_runtime.pricing import cost_view
from agentry_runtime.state import (
    AgentHeader,
    AgentInfo,
    ClaimStatus,
    IllegalTransitionError,
    Message,
    Origin,
    Outcome,
    Status,
    TextBlock,
    ToolClaim,
    ToolUse,
    check_transition,
    utcnow,
)
from agentry_runtime.store import AgentStore

__all__ = ["HISTORY_IN_VIEW", "MAX_VIEW_BYTES", "AgentService", "Decision", "new_agent_id"]

#: How many of the latest turns ``GET /agents/{id}`` shows at most; the rest is at ``/messages``.
HISTORY_IN_VIEW = 50
#: The most bytes of history and plan a view holds (Lambda answers at most 6 MB).
MAX_VIEW_BYTES = 1_000_000
#: Each tool input or result in the view is cut to this many characters.
RESULT_IN_VIEW = 4000

_PLAN_STATUS = {
    None: "PENDING",
    Outcome.SUCCEEDED: "COMPLETED",
    Outcome.FAILED: "FAILED",
    Outcome.UNKNOWN: "UNKNOWN",
    Outcome.REJECTED: "REJECTED",
    Outcome.SKIPPED: "SKIPPED",
}


@dataclass(frozen=True)
class Decision:
    """A person's decision on one held call."""

    tool_use_id: str
    approve: bool
    reason: str | None = None


def new_agent_id() -> str:
    """A fresh agent id."""
    return f"agent-{uuid.uuid4().hex}"


def shard_of(agent_id: str) -> str:
    """The agent's shard of the reconciler's index (stable, evenly spread)."""
    digest = hashlib.sha256(agent_id.encode()).digest()
    return str(digest[0] % ACTIVE_SHARDS)


class AgentService:
    """Agent operations behind the API, over the store.

    Every operation on an existing agent takes the ``caller``: only the agent's owner or an
    operator may act on it, and anyone else is told there is no such agent (404, not 403: no
    existence oracle). ``caller=None`` is the platform itself (the reconciler, the local CLI).
    """

    def __init__(
        self,
        *,
        store: AgentStore,
        agents: AgentCatalog,
        runtime_version: str,
        ttl_days: int = 30,
        operators: Operators | None = None,
        max_active_per_caller: int = 1000,
    ) -> None:
        self.store = store
        self.agents = agents
        self.runtime_version = runtime_version
        self.ttl_days = ttl_days
        self.operators = operators or Operators([])
        self.max_active_per_caller = max_active_per_caller

    def header(self, agent_id: str, caller: Caller | None) -> AgentHeader:
        """The agent's header, if ``caller`` may act on it; else ``AgentNotFoundError``."""
        header = self.store.get_header(agent_id)
        if caller is None or caller in self.operators or header.owner == caller.principal:
            return header
        raise AgentNotFoundError(f"agent {agent_id!r} not found")

    def create(
        self,
        goal: str,
        prompt: str | None = None,
        *,
        agent: str | None = None,
        caller: Caller | None = None,
    ) -> AgentHeader:
        """Store a new agent (header, info, first turn) in one transaction; its first plan is
        announced from the commit.

        ``agent`` names the definition to run (the stack's default agent if ``None``); an
        unknown name raises ``UnknownAgentError`` before anything is stored. A caller with
        ``max_active_per_caller`` agents that have not ended gets ``TooManyAgentsError`` (the
        count and the create are not atomic: concurrent creates may pass the cap by a few).
        """
        owner = caller.principal if caller else ""
        if caller is not None and caller not in self.operators:
            cap = self.max_active_per_caller
            if self.store.count_active(owner, up_to=cap) >= cap:
                raise TooManyAgentsError(cap)
        name = agent or self.agents.default
        definition = self.agents.describe(name)
        now = utcnow()
        agent_id = new_agent_id()
        text = goal if not prompt or prompt == goal else f"{goal}\n\n{prompt}"
        header = AgentHeader(
            agent_id=agent_id,
            agent=name,
            owner=owner,
            message_count=1,
            shard=shard_of(agent_id),
            created_at=now,
            updated_at=now,
            ttl=self._ttl(now),
        )
        info = AgentInfo(
            agent_id=agent_id,
            agent=name,
            goal=goal,
            model_id=str(definition.get("model", "")),
            runtime_version=self.runtime_version,
            owner=owner,
            created_at=now,
        )
        first = Message(
            seq=0,
            role="user",
            content=[TextBlock(text=text)],
            step=0,
            origin=Origin.CALLER,
            author=owner or None,
            created_at=now,
        )
        self.store.create(header, info, first)
        return header

    def resume(
        self, agent_id: str, instruction: str, *, caller: Caller | None = None
    ) -> AgentHeader:
        """Give a waiting agent a person's instruction and request a new plan.

        Tool budgets are not reset (what a model made happen stays counted); the warning the
        model got about a spent budget is (it is told again before a person is asked again).
        """
        header = self.header(agent_id, caller)
        target = check_transition(header.status, Status.RESUMED)
        settled = self._settle(header)
        message = self._message(
            header,
            instruction,
            Origin.OPERATOR,
            _who(caller),
            seq=header.message_count + settled.count,
        )
        resumed = header.model_copy(
            update={
                "status": target,
                "step": header.step + 1,
                "next_step": StepKind.PLAN,
                "message_count": message.seq + 1,
                "tool_call_count": header.tool_call_count + settled.calls_run,
                "tool_uses": settled.tool_uses(header.tool_uses),
                "usage": settled.usage(header.usage),
                "recovery_attempts": 0,
                "steps_granted_at": header.step + 1,
                "consecutive_tool_failures": 0,
                "plan_retries": 0,
                "redrives": 0,
                "budget_strikes": 0,
            }
        )
        return self.store.commit_with_messages(header.version, resumed, [*settled.written, message])

    def _settle(self, header: AgentHeader) -> Settlement:
        """What an interrupted step left at the end of the history, settled for a person's
        message to follow it (``interrupted``). One strong read of the last counted message
        onwards: nothing else, unless a step was interrupted."""
        stored = self.store.messages(header.agent_id, first=max(header.message_count - 1, 0))
        return settle_stored(self.store, header, stored, step=header.step + 1)

    def follow_up(self, agent_id: str, text: str, *, caller: Caller | None = None) -> AgentHeader:
        """Continue a COMPLETED agent's conversation with a new user message.

        The agent moves to ``FOLLOWED_UP`` with a fresh step budget and a renewed expiry (every
        stored item's TTL is pushed out first, so no part of the conversation expires early).
        """
        header = self.header(agent_id, caller)
        target = check_transition(header.status, Status.FOLLOWED_UP)
        ttl = self._ttl(utcnow())
        self.store.renew_expiry(agent_id, ttl)
        message = self._message(header, text, Origin.CALLER, _who(caller))
        followed = header.model_copy(
            update={
                "status": target,
                "step": header.step + 1,
                "next_step": StepKind.PLAN,
                "message_count": header.message_count + 1,
                "steps_granted_at": header.step + 1,
                "recovery_attempts": 0,
                "consecutive_tool_failures": 0,
                "plan_retries": 0,
                "budget_strikes": 0,
                "ttl": ttl,
            }
        )
        return self.store.commit_with_messages(header.version, followed, [message])

    def cancel(self, agent_id: str, *, caller: Caller | None = None) -> AgentHeader:
        """Stop an agent for good (who did it is recorded); in-flight step events go stale."""
        header = self.header(agent_id, caller)
        cancelled = header.model_copy(
            update={
                "status": check_transition(header.status, Status.CANCELLED),
                "step": header.step + 1,
                "next_step": None,
                "runner_until": None,
                "approval_deadline": None,
                "awaiting_tools": [],
                "awaiting_calls": [],
            }
        )
        who = {"cancelledBy": _who(caller) or "platform", "cancelledAt": _iso(utcnow())}
        return self.store.commit_with_messages(header.version, cancelled, [], info=who)

    def delete(self, agent_id: str, *, caller: Caller | None = None) -> int:
        """Remove every item of the agent; how many. An agent still running is cancelled
        first, so no step of it starts again (a step already running may leave items behind
        it, which expire with their TTL)."""
        header = self.header(agent_id, caller)
        if header.status not in TERMINAL:
            try:
                self.cancel(agent_id, caller=caller)
            except StaleStepError:
                header = self.header(agent_id, caller)
                if header.status not in TERMINAL:
                    raise
        return self.store.delete_agent(agent_id)

    def owned(
        self,
        caller: Caller,
        *,
        limit: int,
        cursor: str | None,
        status: Status | None = None,
    ) -> dict[str, Any]:
        """One page of the caller's own agents, newest first."""
        headers, next_cursor = self.store.owned_agents(
            caller.principal, limit=limit, cursor=cursor, status=status
        )
        return {
            "agents": [
                {
                    "agentId": h.agent_id,
                    "agent": h.agent or self.agents.default,
                    "status": str(h.status),
                    "createdAt": _iso(h.created_at),
                    "lastUpdated": _iso(h.updated_at),
                }
                for h in headers
            ],
            "nextCursor": next_cursor,
        }

    # --- approvals ------------------------------------------------------------------------

    def approvals(self, agent_id: str, *, caller: Caller | None = None) -> dict[str, Any]:
        """The calls of the agent's latest plan that need a person, with their inputs and
        decisions so far."""
        return self._approvals_view(self.header(agent_id, caller))

    def _approvals_view(self, header: AgentHeader) -> dict[str, Any]:
        agent_id = header.agent_id
        pending = self._held_calls(header)
        decided = {c.tool_use_id: c for c in self.store.claims(agent_id, header.message_count - 1)}
        calls = []
        for call in pending:
            claim = decided.get(call.tool_use_id)
            entry: dict[str, Any] = {
                "toolUseId": call.tool_use_id,
                "toolName": call.name,
                "input": _cut_value(call.input),
                "decision": "PENDING",
            }
            if claim is not None:
                entry["decision"] = (
                    "REJECTED" if claim.status == ClaimStatus.REJECTED else "APPROVED"
                )
                entry["decidedBy"] = claim.decided_by
                if claim.reason:
                    entry["reason"] = claim.reason
            calls.append(entry)
        deadline = header.approval_deadline
        return {
            "agentId": agent_id,
            "status": str(header.status),
            "deadline": _iso(datetime.fromtimestamp(deadline, UTC)) if deadline else None,
            "calls": calls,
        }

    def decide(
        self,
        agent_id: str,
        decisions: Sequence[Decision],
        *,
        caller: Caller | None = None,
    ) -> dict[str, Any]:
        """Record a person's decisions; once every held call is decided, the agent acts.

        The first decision on a call wins (a second one is ignored, and reported as such);
        rejected calls reach the model as error results with the reason.
        """
        header = self.header(agent_id, caller)
        if header.status != Status.AWAITING_APPROVAL:
            raise IllegalTransitionError(header.status, Status.TOOL_EXECUTION_PENDING)
        held = {call.tool_use_id: call for call in self._held_calls(header)}
        unknown = [d.tool_use_id for d in decisions if d.tool_use_id not in held]
        if unknown:
            raise UnknownToolCallError(unknown)
        turn = header.message_count - 1
        ignored = []
        for decision in decisions:
            call = held[decision.tool_use_id]
            claim = ToolClaim(
                agent_id=agent_id,
                turn_seq=turn,
                tool_use_id=call.tool_use_id,
                name=call.name,
                result_seq=self._result_seq(header, call.tool_use_id),
                status=ClaimStatus.APPROVED if decision.approve else ClaimStatus.REJECTED,
                decided_by=_who(caller) or "platform",
                reason=decision.reason,
            )
            if not self.store.record_decision(claim, ttl=header.ttl):
                ignored.append(decision.tool_use_id)
        view = self._approvals_view(header)
        released = self._release_if_decided(header, held)
        if released is not None:
            view["status"] = str(released.status)
        view["ignored"] = ignored
        return view

    def expire_approvals(self, header: AgentHeader) -> AgentHeader | None:
        """The approval window closed: every undecided call is rejected, and the agent acts."""
        held = {call.tool_use_id: call for call in self._held_calls(header)}
        turn = header.message_count - 1
        for call in held.values():
            self.store.record_decision(
                ToolClaim(
                    agent_id=header.agent_id,
                    turn_seq=turn,
                    tool_use_id=call.tool_use_id,
                    name=call.name,
                    result_seq=self._result_seq(header, call.tool_use_id),
                    status=ClaimStatus.REJECTED,
                    decided_by="platform",
                    reason="no one decided within the approval window",
                ),
                ttl=header.ttl,
            )
        return self._release_if_decided(header, held)

    def _release_if_decided(
        self, header: AgentHeader, held: dict[str, ToolUse]
    ) -> AgentHeader | None:
        """Let the agent act once every held call has a decision (one commit, announced)."""
        decided = {
            c.tool_use_id for c in self.store.claims(header.agent_id, header.message_count - 1)
        }
        if not set(held) <= decided:
            return None
        acting = header.model_copy(
            update={
                "status": check_transition(header.status, Status.TOOL_EXECUTION_PENDING),
                "approval_deadline": None,
                "awaiting_tools": [],
                "awaiting_calls": [],
            }
        )
        try:
            return self.store.commit(header.version, acting)
        except StaleStepError:
            return None  # another decision (or the window) released it first

    def _held_calls(self, header: AgentHeader) -> list[ToolUse]:
        """The calls of the latest plan that wait for a person (none unless it waits)."""
        if header.status != Status.AWAITING_APPROVAL:
            return []
        turn = self.store.get_message(header.agent_id, header.message_count - 1, consistent=True)
        if turn is None:
            return []
        wanted = set(header.awaiting_calls)
        return [call for call in turn.tool_uses() if call.tool_use_id in wanted]

    def _result_seq(self, header: AgentHeader, tool_use_id: str) -> int:
        """Where the act step writes this call's result: after the turn, in call order."""
        turn = self.store.get_message(header.agent_id, header.message_count - 1, consistent=True)
        ids = [call.tool_use_id for call in turn.tool_uses()] if turn else []
        return header.message_count + (ids.index(tool_use_id) if tool_use_id in ids else 0)

    def view(self, agent_id: str, *, caller: Caller | None = None) -> dict[str, Any]:
        """The agent in the article's shape, bounded in bytes (see ``MAX_VIEW_BYTES``)."""
        header = self.header(agent_id, caller)
        info = self.store.get_info(agent_id)
        first = max(0, header.message_count - HISTORY_IN_VIEW)
        history = self.store.messages(agent_id, first=first, last=header.message_count - 1)
        kept, truncated_by_size = _bounded(history, MAX_VIEW_BYTES)
        agent_name = header.agent or self.agents.default
        definition = self.agents.describe(agent_name) if agent_name in self.agents else {}
        metadata: dict[str, Any] = {
            "createdAt": _iso(header.created_at),
            "lastUpdated": _iso(header.updated_at),
            "invocationCount": header.step,
            "errorCount": header.error_count,
            "recoveryAttempts": header.recovery_attempts,
            "toolCallCount": header.tool_call_count,
            "runtimeVersion": info.runtime_version,
            "agent": agent_name,
            "modelId": info.model_id,
            "usage": header.usage.model_dump(by_alias=True),
            "cost": cost_view(header.usage, definition.get("price")),
            "owner": header.owner or None,
            "toolUses": dict(header.tool_uses),
        }
        if info.cancelled_by:
            metadata["cancelledBy"] = info.cancelled_by
            metadata["cancelledAt"] = info.cancelled_at
        document: dict[str, Any] = {
            "agentId": header.agent_id,
            "agent": agent_name,
            "model": info.model_id,
            "status": str(header.status),
            "goal": info.goal,
            "context": {
                "conversationHistory": [_history_entry(m) for m in kept],
                "historyTruncated": first > 0 or len(kept) < len(history),
                "historyTruncatedBySize": truncated_by_size,
                "messageCount": header.message_count,
            },
            "plan": _plan(kept),
            # The plan lists the calls of the history in view: older ones are at /messages.
            "planTruncated": first > 0 or len(kept) < len(history),
            "tools": definition.get("tools", []),
            "metadata": metadata,
        }
        if header.status == Status.COMPLETED and kept and kept[-1].role == "assistant":
            document["answer"] = kept[-1].text()
        if header.last_error_type is not None:
            document["lastError"] = {
                "errorType": str(header.last_error_type),
                "message": PUBLIC_ERROR_MESSAGES[header.last_error_type],
                "step": header.last_error_step,
            }
        return document

    def messages(
        self, agent_id: str, *, limit: int, cursor: str | None, caller: Caller | None = None
    ) -> dict[str, Any]:
        """One page of the agent's messages, oldest first, with the cursor of the next page."""
        header = self.header(agent_id, caller)
        page, next_cursor = self.store.page_messages(
            agent_id, limit=limit, cursor=cursor, upto=header.message_count - 1
        )
        return {
            "agentId": agent_id,
            "messages": [
                {
                    "seq": m.seq,
                    "role": m.role,
                    "origin": m.origin.value,
                    "step": m.step,
                    "createdAt": _iso(m.created_at),
                    **({"author": m.author} if m.author else {}),
                    "content": m.to_converse()["content"],
                    **({"usage": m.usage.model_dump()} if m.usage else {}),
                }
                for m in page
            ],
            "nextCursor": next_cursor,
        }

    def _message(
        self,
        header: AgentHeader,
        text: str,
        origin: Origin,
        author: str,
        *,
        seq: int | None = None,
    ) -> Message:
        return Message(
            seq=header.message_count if seq is None else seq,
            role="user",
            content=[TextBlock(text=text)],
            step=header.step + 1,
            origin=origin,
            author=author or None,
        )

    def _ttl(self, now: datetime) -> int:
        return int((now + timedelta(days=self.ttl_days)).timestamp())


def _who(caller: Caller | None) -> str:
    return caller.principal if caller else ""


def _bounded(messages: list[Message], max_bytes: int) -> tuple[list[Message], bool]:
    """The newest messages whose entries fit ``max_bytes`` together; whether any were left out."""
    kept: list[Message] = []
    total = 0
    for message in reversed(messages):
        size = len(json.dumps(_history_entry(message)).encode())
        if message.tool_uses() or message.tool_results():
            size *= 2  # the plan repeats its calls' inputs and results (cut the same way)
        if kept and total + size > max_bytes:
            return list(reversed(kept)), True
        kept.append(message)
        total += size
    return list(reversed(kept)), False


def _history_entry(message: Message) -> dict[str, Any]:
    # The article shows plain-text turns as strings; tool turns keep their Converse blocks.
    entry: dict[str, Any] = {"role": message.role, "origin": message.origin.value}
    if all(isinstance(block, TextBlock) for block in message.content):
        entry["content"] = _cut(message.text(), 20_000)
    else:
        entry["content"] = [
            _cut_block(block.model_dump(by_alias=True, mode="json")) for block in message.content
        ]
    return entry


def _plan(messages: list[Message]) -> list[dict[str, Any]]:
    """The tool calls of the history in view, with the outcome of each that has one."""
    outcomes = {
        result.tool_use_id: (message, result)
        for message in messages
        for result in message.tool_results()
    }
    plan = []
    for message in messages:
        for call in message.tool_uses():
            entry: dict[str, Any] = {
                "step": message.step,
                "action": "TOOL_USE",
                "toolName": call.name,
                "toolUseId": call.tool_use_id,
                "parameters": _cut_value(call.input),
                "status": "PENDING",
            }
            if call.tool_use_id in outcomes:
                result_message, result = outcomes[call.tool_use_id]
                outcome = result_message.outcome or (
                    Outcome.SUCCEEDED if result.status == "success" else Outcome.FAILED
                )
                entry["status"] = _PLAN_STATUS[outcome]
                key = "result" if result.status == "success" else "error"
                entry[key] = _cut_value(result.content)
            plan.append(entry)
    return plan


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit]}...[truncated {len(text) - limit} chars]"


def _cut_value(value: Any) -> Any:
    text = json.dumps(value, ensure_ascii=False)
    if len(text) <= RESULT_IN_VIEW:
        return value
    return _cut(text, RESULT_IN_VIEW)


def _cut_block(block: dict[str, Any]) -> dict[str, Any]:
    return {key: _cut_value(value) for key, value in block.items()}


def _iso(moment: Any) -> str:
    return moment.isoformat().replace("+00:00", "Z")
