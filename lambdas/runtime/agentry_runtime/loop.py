"""The reasoning loop: one step event in, one committed step (and its follow-up event) out.

A step is either a *plan* (ask the model what to do; commit its turn and the tool calls it
chose) or an *act* (execute the committed tool calls once each; commit their results). Every
commit is conditional on the header version it read, so a duplicate, stale or concurrent event
can never commit twice, and the follow-up event is derived from the committed header alone, so
a redelivered event whose step was committed but not announced re-publishes it instead of
running again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ValidationError

from agentry_runtime.agents import Agent, AgentCatalog
from agentry_runtime.contract import (
    AgentCompleted,
    AgentErrorDetail,
    DetailType,
    ErrorType,
    StepKind,
    StepRequested,
)
from agentry_runtime.errors import (
    AgentError,
    ModelError,
    StaleStepError,
    ToolError,
    UnknownAgentError,
)
from agentry_runtime.events import Publisher
from agentry_runtime.model import ModelTurn, estimate_tokens
from agentry_runtime.observability import logger, metrics, record_agent_error, record_model_call
from agentry_runtime.prompts import compaction_cut, converse_messages, system_prompt, transcript
from agentry_runtime.state import (
    TERMINAL,
    AgentHeader,
    LastError,
    Message,
    Status,
    Summary,
    TextBlock,
    ToolCallStatus,
    ToolInvocation,
    ToolResult,
    ToolResultBlock,
    ToolUseBlock,
    check_transition,
    utcnow,
)
from agentry_runtime.store import AgentStore
from agentry_runtime.tools import ToolContext


class Outcome(StrEnum):
    """What handling one step event did."""

    COMMITTED = "committed"
    REPUBLISHED = "republished"
    DROPPED = "dropped"
    CONFLICT = "conflict"


@dataclass
class StepResult:
    """The result of handling one step event (for logs, metrics and tests)."""

    outcome: Outcome
    header: AgentHeader | None = None
    reason: str = ""


class StepInProgressError(Exception):
    """Another worker holds the lease of a tool call of this step: retry the event later."""


@dataclass
class _Commit:
    header: AgentHeader
    messages: list[Message] = field(default_factory=list)
    tool_calls: list[ToolInvocation] = field(default_factory=list)
    summary: Summary | None = None


class AgentLoop:
    """Runs steps of agents: the only code that advances an agent through the model and tools."""

    def __init__(
        self,
        *,
        store: AgentStore,
        agents: AgentCatalog,
        publisher: Publisher,
        today: Callable[[], date] | None = None,
    ) -> None:
        self.store = store
        self.agents = agents
        self.publisher = publisher
        self._today = today or (lambda: utcnow().date())

    # --- entry point ----------------------------------------------------------------------

    def handle(self, event: StepRequested) -> StepResult:
        """Run the step the event asks for, or acknowledge it as duplicate or stale."""
        header = self.store.find_header(event.agent_id)
        if header is None:
            return StepResult(Outcome.DROPPED, None, "unknown agent")
        if event.step < header.step:
            return self._repair(event, header)
        if event.step > header.step or event.kind != header.next_step:
            return StepResult(Outcome.DROPPED, header, "not the step the agent waits for")
        if header.status in TERMINAL:
            return StepResult(Outcome.DROPPED, header, f"agent is {header.status}")

        try:
            agent = self._agent(header)
            commit = (
                self._plan(header, agent)
                if event.kind == StepKind.PLAN
                else self._act(header, agent)
            )
        except AgentError as failure:
            commit = _Commit(self._failed(header, failure))
        try:
            written = self.store.commit(
                header.version,
                commit.header,
                messages=commit.messages,
                tool_calls=commit.tool_calls,
                summary=commit.summary,
            )
        except StaleStepError:
            # Another delivery of this event committed first; its worker publishes the follow-up.
            metrics.add_metric(name="StepConflicts", unit="Count", value=1)
            return StepResult(Outcome.CONFLICT, header, "another worker committed this step")
        metrics.add_metric(name="StepsCommitted", unit="Count", value=1)
        self.announce(written)
        return StepResult(Outcome.COMMITTED, written)

    def announce(self, header: AgentHeader) -> None:
        """Publish the event that follows a committed header (see ``announce``)."""
        announce(self.store, self.publisher, header)

    def _agent(self, header: AgentHeader) -> Agent:
        """The agent definition the header names (the default one for a header without)."""
        try:
            return self.agents.get(header.agent or self.agents.default)
        except UnknownAgentError as exc:
            # The definition left the stack's config after the agent started: only a human
            # (or a redeploy that brings it back, then a resume) can move this agent.
            raise AgentError(ErrorType.AGENT_NOT_DEFINED, str(exc)) from exc

    def _repair(self, event: StepRequested, header: AgentHeader) -> StepResult:
        # Only the event of the step just before the current one can be the redelivery of a step
        # whose commit landed but whose follow-up was never published; anything older is stale.
        if event.step == header.step - 1 and header.published_step < header.step:
            logger.warning("re-publishing the follow-up of a committed step", step=header.step)
            self.announce(header)
            return StepResult(Outcome.REPUBLISHED, header, "follow-up re-published")
        return StepResult(Outcome.DROPPED, header, "duplicate or stale event")

    # --- plan -----------------------------------------------------------------------------

    def _plan(self, header: AgentHeader, agent: Agent) -> _Commit:
        # The budget counts from the last human instruction, so a resumed agent gets a new one.
        if header.step - header.steps_granted_at >= agent.settings.max_steps:
            raise AgentError(
                ErrorType.STEP_LIMIT_EXCEEDED,
                f"the agent used its {agent.settings.max_steps} steps without finishing",
            )
        summary = self.store.latest_summary(header.agent_id)
        history = self.store.messages(
            header.agent_id, after_seq=summary.upto_seq if summary else -1
        )
        # A concurrent worker may have committed after this header was read: plan on the history
        # the header counts, or the request can end in its unanswered toolUse (a Bedrock 400).
        history = [m for m in history if m.seq < header.message_count]
        system = system_prompt(agent.system_prompt, self._today())
        tool_specs = agent.tools.specs()
        new_summary, usage_from_summary = self._maybe_compact(
            agent, system, tool_specs, history, summary, header.goal
        )
        if new_summary is not None:
            summary = new_summary
            history = [m for m in history if m.seq > new_summary.upto_seq]

        try:
            turn = agent.model.converse(
                system=system,
                messages=converse_messages(history, summary, goal=header.goal),
                tools=tool_specs,
            )
        except ModelError as exc:
            raise AgentError(exc.error_type, str(exc)) from exc
        record_model_call(agent.model_id, turn.usage, turn.latency_ms, agent.price)

        now = utcnow()
        usage = header.usage.plus(turn.usage)
        if usage_from_summary is not None:
            usage = usage.plus(usage_from_summary)
        base = header.model_copy(
            update={
                "step": header.step + 1,
                "usage": usage,
                "last_plan_at": now,
                "summary_upto_seq": summary.upto_seq if summary else header.summary_upto_seq,
            }
        )
        commit = self._decide(base, turn, agent)
        commit.summary = new_summary
        return commit

    def _maybe_compact(
        self,
        agent: Agent,
        system: str,
        tool_specs: list[dict[str, Any]],
        history: list[Message],
        summary: Summary | None,
        goal: str,
    ) -> tuple[Summary | None, Any]:
        budget = agent.settings.token_budget
        prompt_tokens = estimate_tokens(
            system=system,
            messages=converse_messages(history, summary, goal=goal),
            tools=tool_specs,
        )
        if prompt_tokens <= budget:
            return None, None
        cut = compaction_cut(history, keep_tokens=budget // 2)
        if cut is None:
            return None, None
        older = [m for m in history if m.seq <= cut]
        try:
            text, usage = agent.model.summarise(transcript(older, summary))
        except ModelError as exc:
            raise AgentError(exc.error_type, str(exc)) from exc
        metrics.add_metric(name="Compactions", unit="Count", value=1)
        record_model_call(agent.model_id, usage, None, agent.price)
        return Summary(upto_seq=cut, text=text), usage

    def _decide(self, base: AgentHeader, turn: ModelTurn, agent: Agent) -> _Commit:
        """Turn a model answer into a commit: tool calls, a final answer, or a correction."""
        problems, blocks = self._validate_turn(turn, agent)
        seq = base.message_count
        if problems:
            return self._correction(base, blocks, problems, turn, agent)

        assistant = Message(
            seq=seq, role="assistant", content=blocks, step=base.step - 1, usage=turn.usage
        )
        calls = assistant.tool_uses()
        if calls:
            records = [
                ToolInvocation(
                    agent_id=base.agent_id,
                    tool_use_id=call.tool_use_id,
                    name=call.name,
                    input=call.input,
                    step=base.step - 1,
                )
                for call in calls
            ]
            header = base.model_copy(
                update={
                    "status": check_transition(base.status, Status.TOOL_EXECUTION_PENDING),
                    "next_step": StepKind.ACT,
                    "pending_tool_use_ids": [c.tool_use_id for c in calls],
                    "message_count": seq + 1,
                    "plan_retries": 0,
                }
            )
            return _Commit(header, [assistant], records)

        answer = assistant.text()
        header = base.model_copy(
            update={
                "status": check_transition(base.status, Status.COMPLETED),
                "next_step": None,
                "pending_tool_use_ids": [],
                "message_count": seq + 1,
                "plan_retries": 0,
                "answer": answer,
            }
        )
        return _Commit(header, [assistant])

    def _validate_turn(self, turn: ModelTurn, agent: Agent) -> tuple[list[str], list[Any]]:
        """Parse the assistant content; return the problems found and the usable blocks."""
        problems: list[str] = []
        blocks: list[Any] = []
        for raw in turn.content:
            if "text" in raw:
                if str(raw["text"]).strip():
                    blocks.append(TextBlock(text=str(raw["text"])))
            elif "toolUse" in raw:
                try:
                    block = ToolUseBlock.model_validate(raw)
                except ValidationError as exc:
                    problems.append(f"a toolUse block is malformed: {_first_error(exc)}")
                    continue
                blocks.append(block)
                try:
                    agent.tools.validate(block.tool_use.name, block.tool_use.input)
                except ToolError as exc:
                    problems.append(f"tool call {block.tool_use.tool_use_id}: {exc}")
            # Other block kinds (reasoning, citations...) are not part of the durable history.
        has_calls = any(isinstance(b, ToolUseBlock) for b in blocks)
        if turn.stop_reason == "tool_use" and not has_calls:
            problems.append("stopReason is tool_use but the answer holds no toolUse block")
        elif turn.stop_reason == "max_tokens":
            problems.append("the answer was cut off at the output token limit")
        elif not blocks:
            problems.append("the answer is empty")
        elif turn.stop_reason not in ("tool_use", "end_turn", "stop_sequence"):
            problems.append(f"unexpected stopReason {turn.stop_reason!r}")
        return problems, blocks

    def _correction(
        self,
        base: AgentHeader,
        blocks: list[Any],
        problems: list[str],
        turn: ModelTurn,
        agent: Agent,
    ) -> _Commit:
        """Send an invalid answer back to the model with the reasons, or give up after the bound."""
        retries = base.plan_retries + 1
        metrics.add_metric(name="InvalidModelOutput", unit="Count", value=1)
        if retries > agent.settings.max_plan_retries:
            raise AgentError(
                ErrorType.PLANNING_FAILED,
                f"model output failed validation {retries} times in a row: " + "; ".join(problems),
            )
        seq = base.message_count
        messages: list[Message] = []
        reply: list[Any] = []
        if blocks:
            messages.append(
                Message(
                    seq=seq, role="assistant", content=blocks, step=base.step - 1, usage=turn.usage
                )
            )
            seq += 1
            reason = "; ".join(problems)
            for call in messages[0].tool_uses():
                reply.append(
                    ToolResultBlock(
                        tool_result=ToolResult(
                            tool_use_id=call.tool_use_id,
                            status="error",
                            content=[{"text": f"Not executed: {reason}. Correct the call."}],
                        )
                    )
                )
        if not reply:
            reply.append(
                TextBlock(
                    text="Your previous answer could not be used: "
                    + "; ".join(problems)
                    + ". Answer again."
                )
            )
        messages.append(Message(seq=seq, role="user", content=reply, step=base.step - 1))
        header = base.model_copy(
            update={
                "status": check_transition(base.status, Status.TOOL_EXECUTION_FAILED),
                "next_step": StepKind.PLAN,
                "pending_tool_use_ids": [],
                "message_count": seq + 1,
                "plan_retries": retries,
            }
        )
        return _Commit(header, messages)

    # --- act ------------------------------------------------------------------------------

    def _act(self, header: AgentHeader, agent: Agent) -> _Commit:
        results: list[ToolResultBlock] = []
        failed = 0
        for tool_use_id in header.pending_tool_use_ids:
            record = self._run_once(header.agent_id, tool_use_id, agent)
            ok = record.status == ToolCallStatus.SUCCEEDED
            failed += 0 if ok else 1
            results.append(
                ToolResultBlock(
                    tool_result=ToolResult(
                        tool_use_id=tool_use_id,
                        status="success" if ok else "error",
                        content=_result_content(record, agent.settings.max_tool_result_chars),
                    )
                )
            )
        if failed:
            metrics.add_metric(name="ToolFailures", unit="Count", value=failed)
        consecutive = header.consecutive_tool_failures + 1 if failed else 0
        seq = header.message_count
        message = Message(seq=seq, role="user", content=results, step=header.step)
        update: dict[str, Any] = {
            "step": header.step + 1,
            "message_count": seq + 1,
            "pending_tool_use_ids": [],
            "tool_call_count": header.tool_call_count + len(results),
            "consecutive_tool_failures": consecutive,
            "last_tool_execution_at": utcnow(),
            "next_step": StepKind.PLAN,
        }
        if not failed:
            update["status"] = check_transition(header.status, Status.TOOL_EXECUTION_SUCCESS)
            # A successful tool round proves the agent recovered: later errors get a fresh
            # recovery budget. (A tool that keeps failing never resets it, and ends with a human.)
            update["recovery_attempts"] = 0
            return _Commit(header.model_copy(update=update), [message])
        update["status"] = check_transition(header.status, Status.TOOL_EXECUTION_FAILED)
        after = header.model_copy(update=update)
        if consecutive >= agent.settings.max_tool_failures:
            # The results still go into the history, so the model sees them after recovery.
            failure = AgentError(
                ErrorType.TOOL_EXECUTION_FAILED,
                f"{consecutive} consecutive tool rounds failed; last: "
                + "; ".join(_error_text(r) for r in results if r.tool_result.status == "error"),
            )
            return _Commit(self._failed(after, failure, advance=False), [message])
        return _Commit(after, [message])

    def _run_once(self, agent_id: str, tool_use_id: str, agent: Agent) -> ToolInvocation:
        """Execute one committed tool call at most once; reuse its result if it already ran."""
        # The lease must outlive the tool's own timeout, or a slow but healthy call would be
        # taken over and run twice.
        settings = agent.settings
        lease = max(settings.tool_lease_seconds, 2 * settings.tool_timeout_seconds)
        # Claim first: on the usual path (a PENDING call) that is the only read-and-write.
        claimed = self.store.claim_tool_call(agent_id, tool_use_id, lease_seconds=lease)
        if claimed is None:
            record = self.store.get_tool_call(agent_id, tool_use_id)
            if record is None:
                raise AgentError(ErrorType.INTERNAL, f"tool call {tool_use_id} has no record")
            if record.status in (ToolCallStatus.SUCCEEDED, ToolCallStatus.FAILED):
                return record
            raise StepInProgressError(f"tool call {tool_use_id} is being executed elsewhere")
        context = ToolContext(
            agent_id=agent_id,
            tool_use_id=tool_use_id,
            table_name=self.store.table_name,
            dynamodb=self.store.client,
        )
        outcome = agent.tools.execute(claimed.name, claimed.input, context)
        logger.info(
            "tool executed", tool=claimed.name, tool_use_id=tool_use_id, status=outcome.status
        )
        return self.store.finish_tool_call(
            agent_id,
            tool_use_id,
            succeeded=outcome.status == "success",
            result={"content": outcome.content},
            error=outcome.error,
        )

    # --- failure --------------------------------------------------------------------------

    def _failed(
        self, header: AgentHeader, failure: AgentError, *, advance: bool = True
    ) -> AgentHeader:
        """The header of a step that ends in a typed agent error (announced as ``Agent Error``)."""
        acting = header.status == Status.TOOL_EXECUTION_PENDING
        target = (
            Status.TOOL_EXECUTION_FAILED
            if acting or failure.error_type == ErrorType.TOOL_EXECUTION_FAILED
            else Status.PLANNING_FAILED
        )
        if header.status != target:
            check_transition(header.status, target)
        logger.warning("agent error", error_type=str(failure.error_type), reason=failure.message)
        record_agent_error(failure.error_type)
        return header.model_copy(
            update={
                "status": target,
                "step": header.step + 1 if advance else header.step,
                "next_step": None,
                "pending_tool_use_ids": [],
                "error_count": header.error_count + 1,
                "last_error": LastError(
                    error_type=failure.error_type,
                    message=failure.message[:2000],
                    step=header.step + 1 if advance else header.step,
                ),
            }
        )


def announce(store: AgentStore, publisher: Publisher, header: AgentHeader) -> None:
    """Publish the events that follow a committed header, then remember they were published."""
    for detail_type, detail in follow_up_events(header):
        publisher.publish(detail_type, detail)
    store.mark_published(header.agent_id, header.step)


def follow_up_events(header: AgentHeader) -> list[tuple[DetailType, BaseModel]]:
    """The events that announce a committed header (pure: derived from the header alone)."""
    if header.next_step is not None and header.status not in TERMINAL:
        detail: BaseModel = StepRequested(
            agent_id=header.agent_id, step=header.step, kind=header.next_step
        )
        return [(DetailType.STEP_REQUESTED, detail)]
    if header.status == Status.COMPLETED:
        answer = (header.answer or "")[:8192]
        detail = AgentCompleted(agent_id=header.agent_id, step=header.step, answer=answer)
        return [(DetailType.AGENT_COMPLETED, detail)]
    if header.status in (Status.PLANNING_FAILED, Status.TOOL_EXECUTION_FAILED) and (
        header.last_error is not None
    ):
        error = header.last_error
        detail = AgentErrorDetail(
            agent_id=header.agent_id,
            step=header.step,
            error_type=error.error_type,
            message=error.message[:2048],
            retryable=AgentError(error.error_type, error.message).retryable,
        )
        return [(DetailType.AGENT_ERROR, detail)]
    return []


def _result_content(record: ToolInvocation, max_chars: int) -> list[dict[str, Any]]:
    if isinstance(record.result, dict) and isinstance(record.result.get("content"), list):
        content: list[dict[str, Any]] = record.result["content"]
    elif record.error:
        content = [{"text": record.error}]
    else:
        content = [{"text": json.dumps(record.result)}]
    return _cap(content, max_chars, record.tool_use_id)


def _cap(content: list[dict[str, Any]], max_chars: int, tool_use_id: str) -> list[dict[str, Any]]:
    """Keep a tool result within ``max_chars`` in the prompt; the full result stays in TOOL#."""
    rendered = json.dumps(content, separators=(",", ":"))
    if len(rendered) <= max_chars:
        return content
    return [
        {
            "text": rendered[:max_chars]
            + f"...[truncated {len(rendered) - max_chars} chars; full result in TOOL#{tool_use_id}]"
        }
    ]


def _error_text(block: ToolResultBlock) -> str:
    texts = [str(c.get("text", c.get("json", ""))) for c in block.tool_result.content]
    return " ".join(texts)[:300]


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    location = ".".join(str(part) for part in error["loc"])
    return f"{location}: {error['msg']}"


__all__ = [
    "AgentLoop",
    "Outcome",
    "StepInProgressError",
    "StepResult",
    "announce",
    "follow_up_events",
]
