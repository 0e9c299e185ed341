"""What the HTTP API can do to agents: create, read, resume, cancel.

Every change is a conditional commit of the header plus its messages, followed by the event it
implies; reading builds the article's agent document from the stored items.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

from agentry_runtime.agents import AgentCatalog
from agentry_runtime.contract import StepKind
from agentry_runtime.errors import PublishError
from agentry_runtime.events import Publisher
from agentry_runtime.loop import announce
from agentry_runtime.pricing import cost_view
from agentry_runtime.prompts import RESUME_PREFIX
from agentry_runtime.state import (
    AgentHeader,
    Message,
    Status,
    TextBlock,
    ToolCallStatus,
    check_transition,
    utcnow,
)
from agentry_runtime.store import AgentStore

#: How many of the latest turns ``GET /agents/{id}`` shows; the rest is at ``/messages``.
HISTORY_IN_VIEW = 50
#: How many of the latest tool calls it shows, each result cut to ``RESULT_IN_VIEW`` characters.
PLAN_IN_VIEW = 50
RESULT_IN_VIEW = 4000

_PLAN_STATUS = {
    ToolCallStatus.PENDING: "PENDING",
    ToolCallStatus.IN_PROGRESS: "IN_PROGRESS",
    ToolCallStatus.SUCCEEDED: "COMPLETED",
    ToolCallStatus.FAILED: "FAILED",
}


def new_agent_id() -> str:
    """A fresh agent id."""
    return f"agent-{uuid.uuid4().hex}"


class AgentService:
    """Agent operations behind the API, over the store and the bus."""

    def __init__(
        self,
        *,
        store: AgentStore,
        publisher: Publisher,
        agents: AgentCatalog,
        runtime_version: str,
        ttl_days: int = 30,
    ) -> None:
        self.store = store
        self.publisher = publisher
        self.agents = agents
        self.runtime_version = runtime_version
        self.ttl_days = ttl_days

    def create(
        self, goal: str, prompt: str | None = None, *, agent: str | None = None
    ) -> AgentHeader:
        """Store a new agent and its first user turn in one transaction; request its first plan.

        ``agent`` names the definition to run (the stack's default agent if ``None``); an
        unknown name raises ``UnknownAgentError`` before anything is stored.
        """
        name = agent or self.agents.default
        definition = self.agents.describe(name)
        now = utcnow()
        agent_id = new_agent_id()
        text = goal if not prompt or prompt == goal else f"{goal}\n\n{prompt}"
        header = AgentHeader(
            agent_id=agent_id,
            agent=name,
            goal=goal,
            message_count=1,
            runtime_version=self.runtime_version,
            model_id=str(definition.get("model", "")),
            created_at=now,
            updated_at=now,
            ttl=int((now + timedelta(days=self.ttl_days)).timestamp()),
        )
        first = Message(seq=0, role="user", content=[TextBlock(text=text)], step=0)
        self.store.create(header, first)
        try:
            announce(self.store, self.publisher, header)
        except PublishError:
            # Nothing will ever run this agent: mark it failed rather than leave it waiting.
            failed = header.model_copy(update={"status": Status.FAILED, "next_step": None})
            self.store.update_header(header.version, failed)
            raise
        return header

    def resume(self, agent_id: str, instruction: str) -> AgentHeader:
        """Give a waiting agent a human instruction and request a new plan."""
        header = self.store.get_header(agent_id)
        target = check_transition(header.status, Status.RESUMED)
        seq = header.message_count
        message = Message(
            seq=seq,
            role="user",
            content=[TextBlock(text=f"{RESUME_PREFIX} {instruction}")],
            step=header.step,
        )
        resumed = header.model_copy(
            update={
                "status": target,
                "step": header.step + 1,
                "next_step": StepKind.PLAN,
                "message_count": seq + 1,
                "recovery_attempts": 0,
                "steps_granted_at": header.step + 1,
                "consecutive_tool_failures": 0,
                "plan_retries": 0,
                "pending_tool_use_ids": [],
            }
        )
        written = self.store.commit(header.version, resumed, messages=[message])
        announce(self.store, self.publisher, written)
        return written

    def follow_up(self, agent_id: str, text: str) -> AgentHeader:
        """Continue a COMPLETED agent's conversation with a new user message.

        The agent moves to ``FOLLOWED_UP`` with a fresh step budget and a renewed expiry (every
        stored item's TTL is pushed out first, so no part of the conversation expires early).
        """
        header = self.store.get_header(agent_id)
        target = check_transition(header.status, Status.FOLLOWED_UP)
        ttl = int((utcnow() + timedelta(days=self.ttl_days)).timestamp())
        self.store.renew_expiry(agent_id, ttl)
        seq = header.message_count
        message = Message(seq=seq, role="user", content=[TextBlock(text=text)], step=header.step)
        followed = header.model_copy(
            update={
                "status": target,
                "step": header.step + 1,
                "next_step": StepKind.PLAN,
                "message_count": seq + 1,
                "steps_granted_at": header.step + 1,
                "recovery_attempts": 0,
                "consecutive_tool_failures": 0,
                "plan_retries": 0,
                "pending_tool_use_ids": [],
                "answer": None,
                "ttl": ttl,
            }
        )
        written = self.store.commit(header.version, followed, messages=[message])
        announce(self.store, self.publisher, written)
        return written

    def cancel(self, agent_id: str) -> AgentHeader:
        """Stop an agent for good; in-flight step events become stale."""
        header = self.store.get_header(agent_id)
        cancelled = header.model_copy(
            update={
                "status": check_transition(header.status, Status.CANCELLED),
                "step": header.step + 1,
                "next_step": None,
                "pending_tool_use_ids": [],
            }
        )
        return self.store.update_header(header.version, cancelled)

    def view(self, agent_id: str) -> dict[str, Any]:
        """The agent in the article's shape, built from the header, messages and tool records."""
        header = self.store.get_header(agent_id)
        agent_name = header.agent or self.agents.default
        definition = self.agents.describe(agent_name) if agent_name in self.agents else {}
        first_seq = max(0, header.message_count - HISTORY_IN_VIEW)
        history = self.store.messages(agent_id, after_seq=first_seq - 1)
        calls = sorted(self.store.tool_calls(agent_id), key=lambda c: (c.step, c.created_at))
        # Bounded, like the history: a Lambda response must stay well under 6 MB.
        first_call = max(0, len(calls) - PLAN_IN_VIEW)
        plan = [
            {
                "step": first_call + index + 1,
                "action": "TOOL_USE",
                "toolName": call.name,
                "toolUseId": call.tool_use_id,
                "parameters": call.input,
                "status": _PLAN_STATUS[call.status],
                **({"result": _bounded(call.result)} if call.result is not None else {}),
                **({"error": call.error} if call.error else {}),
            }
            for index, call in enumerate(calls[first_call:])
        ]
        metadata: dict[str, Any] = {
            "createdAt": _iso(header.created_at),
            "lastUpdated": _iso(header.updated_at),
            "invocationCount": header.step,
            "errorCount": header.error_count,
            "recoveryAttempts": header.recovery_attempts,
            "toolCallCount": header.tool_call_count,
            "runtimeVersion": header.runtime_version,
            "agent": agent_name,
            "modelId": header.model_id,
            "usage": header.usage.model_dump(by_alias=True),
            "cost": cost_view(header.usage, definition.get("price")),
        }
        if header.last_plan_at:
            metadata["lastPlanGeneratedAt"] = _iso(header.last_plan_at)
        if header.last_tool_execution_at:
            metadata["lastToolExecutionAt"] = _iso(header.last_tool_execution_at)
        document: dict[str, Any] = {
            "agentId": header.agent_id,
            "agent": agent_name,
            "model": header.model_id,
            "status": str(header.status),
            "goal": header.goal,
            "context": {
                "conversationHistory": [_history_entry(m) for m in history],
                "historyTruncated": first_seq > 0,
                "messageCount": header.message_count,
            },
            "plan": plan,
            "planTruncated": first_call > 0,
            "tools": definition.get("tools", []),
            "metadata": metadata,
        }
        if header.answer is not None:
            document["answer"] = header.answer
        if header.last_error is not None:
            document["lastError"] = {
                "errorType": str(header.last_error.error_type),
                "message": header.last_error.message,
                "step": header.last_error.step,
                "at": _iso(header.last_error.at),
            }
        return document

    def messages(self, agent_id: str, *, limit: int, cursor: str | None) -> dict[str, Any]:
        """One page of the agent's messages, oldest first, with the cursor of the next page."""
        self.store.get_header(agent_id)
        page, next_cursor = self.store.page_messages(agent_id, limit=limit, cursor=cursor)
        return {
            "agentId": agent_id,
            "messages": [
                {
                    "seq": m.seq,
                    "role": m.role,
                    "step": m.step,
                    "createdAt": _iso(m.created_at),
                    "content": m.to_converse()["content"],
                    **({"usage": m.usage.model_dump()} if m.usage else {}),
                }
                for m in page
            ],
            "nextCursor": next_cursor,
        }


def _history_entry(message: Message) -> dict[str, Any]:
    # The article shows plain-text turns as strings; tool turns keep their Converse blocks.
    if all(isinstance(block, TextBlock) for block in message.content):
        return {"role": message.role, "content": message.text()}
    return {"role": message.role, "content": message.to_converse()["content"]}


def _bounded(result: dict[str, Any] | str) -> dict[str, Any] | str:
    text = json.dumps(result)
    if len(text) <= RESULT_IN_VIEW:
        return result
    return text[:RESULT_IN_VIEW] + f"...[truncated {len(text) - RESULT_IN_VIEW} chars]"


def _iso(moment: Any) -> str:
    return moment.isoformat().replace("+00:00", "Z")
