"""The reasoning loop: one step event in, one committed step out (announced from the commit log).

A step is either a *plan* (ask the model what to do; commit its turn and the calls it chose)
or an *act* (run the committed calls, each at most once; commit their outcomes). A step writes
its new items first and its header last, conditional on the version it read (see ``store``):

- a duplicate, stale or concurrent event can never commit twice;
- the first item a plan step writes is its lock: a second worker on the same step finds it and
  commits the same decision instead of asking the model for another;
- each tool call is claimed (a lease derived from the tool's own timeout) before it runs, and
  its outcome is written the moment it is known; a call whose worker died, or that timed out,
  is recorded with an ``UNKNOWN`` outcome and never run again: the model is told to check.

The loop never publishes: the announcer turns the committed header into the next event.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from agentry_runtime.agents import Agent, AgentCatalog
from agentry_runtime.contract import (
    HUMAN_WAITS,
    TERMINAL,
    ErrorType,
    Status,
    StepKind,
    StepRequested,
)
from agentry_runtime.errors import (
    AgentError,
    CorruptItemError,
    ModelError,
    StaleStepError,
    StepInProgressError,
    StoreError,
    StoreThrottledError,
    StoreUnavailableError,
    ToolError,
    UnknownAgentError,
)
from agentry_runtime.interrupted import claim_statement, settle_stored, stated_result
from agentry_runtime.model import ModelTurn, estimate_tokens
from agentry_runtime.observability import logger, metrics, record_agent_error, record_model_call
from agentry_runtime.prompts import (
    compaction_cut,
    converse_messages,
    system_prompt,
    transcript,
)
from agentry_runtime.sanitize import bounded_text
from agentry_runtime.state import (
    BUDGETED,
    AgentHeader,
    ClaimStatus,
    Message,
    Origin,
    Outcome,
    Summary,
    TextBlock,
    TokenUsage,
    ToolClaim,
    ToolResult,
    ToolResultBlock,
    ToolUse,
    ToolUseBlock,
    budgeted_uses,
    calls_ran,
    check_transition,
    utcnow,
)
from agentry_runtime.store import AgentStore
from agentry_runtime.tools import ToolContext, ToolOutcome

__all__ = ["AgentLoop", "StepOutcome", "StepResult"]

#: Most tool calls one assistant turn may ask for (more become a correction).
MAX_CALLS_PER_TURN = 20
#: Added to a tool's own timeout to make its lease: a healthy call is never taken over.
LEASE_MARGIN_SECONDS = 30
#: Kept free at the end of a chain's invocation: its last commit and the batch's response.
CHAIN_MARGIN_SECONDS = 3.0
#: Inside a chain, a plan writes the header at least this often (acts never do): the API and
#: the reconciler see a chain progress while it saves the writes of the steps in between.
COMMIT_EVERY_SECONDS = 10.0


class StepOutcome(StrEnum):
    """What handling one step event did."""

    COMMITTED = "committed"
    DROPPED = "dropped"
    CONFLICT = "conflict"


@dataclass
class StepResult:
    """The result of handling one step event (for logs, metrics and tests)."""

    outcome: StepOutcome
    header: AgentHeader | None = None
    reason: str = ""
    #: Steps committed (more than one when the worker chained).
    steps: int = 0


class _Memory:
    """What a chain keeps between its steps: the history its header counts, read once."""

    def __init__(self) -> None:
        self.summary: Summary | None = None
        self.messages: list[Message] | None = None
        self.ahead: dict[int, Message] = {}

    def history(
        self, store: AgentStore, header: AgentHeader
    ) -> tuple[Summary | None, list[Message]]:
        """The summary and messages after it, from memory, else from the store (once)."""
        if self.messages is None:
            read = store.history(header)
            self.summary, self.messages = read.summary, list(read.messages)
            self.ahead = {m.seq: m for m in read.ahead}
        return self.summary, list(self.messages)

    def already_written(self, seq: int) -> Message | None:
        """Message ``seq`` if the store already held it, past the header's count, when the
        history was read (each is offered once)."""
        return self.ahead.pop(seq, None)

    def compacted(self, summary: Summary) -> None:
        """Forget what ``summary`` now stands for."""
        self.summary = summary
        if self.messages is not None:
            self.messages = [m for m in self.messages if m.seq > summary.upto_seq]

    def add(self, messages: list[Message]) -> None:
        """Messages a step committed (kept only once the history is in memory)."""
        if self.messages is not None:
            self.messages.extend(messages)

    def turn(self, seq: int) -> Message | None:
        """Message ``seq`` if the memory holds it."""
        if self.messages and self.messages[-1].seq == seq:
            return self.messages[-1]
        return None


class _Moved(Exception):  # noqa: N818 - control flow: the agent moved on under this step
    """The header changed under a running step: the step is abandoned, nothing is committed."""


@dataclass
class _Decision:
    """What a plan step commits: its messages (the first is its lock) and the header update."""

    messages: list[Message]
    update: dict[str, Any] = field(default_factory=dict)


class AgentLoop:
    """Runs steps of agents: the only code that advances an agent through the model and tools."""

    def __init__(
        self,
        *,
        store: AgentStore,
        agents: AgentCatalog,
        today: Callable[[], date] | None = None,
        clock: Callable[[], float] = time.time,
        recheck_cancellation: bool = True,
    ) -> None:
        self.store = store
        self.agents = agents
        self._today = today or (lambda: utcnow().date())
        self._clock = clock
        #: Re-read the header before each tool call after the first (a cancel stops the rest).
        self.recheck_cancellation = recheck_cancellation

    # --- entry point ----------------------------------------------------------------------

    def handle(
        self,
        event: StepRequested,
        *,
        deadline: float | None = None,
        chain: bool = False,
        on_chain: Callable[[float], None] | None = None,
    ) -> StepResult:
        """Run the step the event asks for (and, when ``chain``, the steps after it).

        ``deadline`` (epoch seconds) is when the invocation ends: a tool call that could not
        finish before it is not started, and a chain takes a next step only if its worst case
        fits. A chaining worker commits each step with a runner marker (``runner_until`` =
        ``deadline``), so nothing is announced for it, and its last commit clears the marker
        (announced). ``on_chain(deadline)`` is called when a chain starts (the worker shortens
        its message's visibility to the deadline: the message is the chain's watchdog).
        """
        header = self.store.find_header(event.agent_id)
        if header is None:
            return StepResult(StepOutcome.DROPPED, None, "unknown agent")
        if header.status in TERMINAL:
            return StepResult(StepOutcome.DROPPED, header, f"agent is {header.status}")
        if header.runner_until is not None and header.next_step is not None:
            if header.runner_until > self._clock():
                return StepResult(StepOutcome.DROPPED, header, "a chaining worker holds it")
            if event.step <= header.step:
                # The chain's worker died (its deadline passed): the event that started it,
                # or any older one, takes the agent over from its committed header.
                metrics.add_metric(name="ChainTakeovers", unit="Count", value=1)
                event = StepRequested(
                    agent_id=header.agent_id, step=header.step, kind=header.next_step
                )
        if event.step != header.step or event.kind != header.next_step:
            return StepResult(StepOutcome.DROPPED, header, "not the step the agent waits for")
        return self._steps(header, event.kind, deadline, chain, on_chain)

    def _steps(
        self,
        header: AgentHeader,
        kind: StepKind,
        deadline: float | None,
        chain: bool,
        on_chain: Callable[[float], None] | None,
    ) -> StepResult:
        memory = _Memory()
        steps = 0
        committed_at = self._clock()
        # Whether this invocation wrote its own runner lease. A header whose lease expired (a
        # dead chain's, which this delivery takes over) is written at the first step, so other
        # stale deliveries find the new lease and leave the agent to this one.
        leased = False
        # Whether ``header`` was read or written just before this step. A step folded into a
        # later commit leaves it stale: a cancel may have landed since.
        fresh = True
        while True:
            try:
                after = self._run(header, kind, deadline, memory, fresh=fresh)
            except _Moved as moved:
                metrics.add_metric(name="StepConflicts", unit="Count", value=1)
                return StepResult(StepOutcome.CONFLICT, header, str(moved), steps)
            except Exception:
                if steps:
                    self._release(header)
                raise
            going_on = chain and deadline is not None and self._can_chain(after, deadline, memory)
            after = after.model_copy(update={"runner_until": deadline if going_on else None})
            if (
                going_on
                and leased
                and (kind == StepKind.ACT or self._clock() - committed_at < COMMIT_EVERY_SECONDS)
            ):
                # Inside a chain a step's header need not be written: what the step decided or
                # did is already durable in its items (a plan's turn is its lock, an act's
                # outcomes are recorded), and a later commit of the chain covers it. Should the
                # chain die first, the takeover re-runs the steps from the last written header:
                # a plan finds its turn and commits that decision, an act finds every outcome,
                # and no model is asked twice and no tool runs twice. Plans still commit every
                # COMMIT_EVERY_SECONDS, so readers of the header see a chain progress.
                written = after
                fresh = False
            else:
                try:
                    written = self.store.commit(header.version, after)
                except StaleStepError:
                    # Another delivery committed first, or a person (or recovery) changed it.
                    metrics.add_metric(name="StepConflicts", unit="Count", value=1)
                    reason = "another writer committed first"
                    return StepResult(StepOutcome.CONFLICT, header, reason, steps)
                committed_at = self._clock()
                fresh = True
                leased = going_on
            steps += 1
            metrics.add_metric(name="StepsCommitted", unit="Count", value=1)
            if not going_on or written.next_step is None:
                return StepResult(StepOutcome.COMMITTED, written, steps=steps)
            if steps == 1 and on_chain is not None and deadline is not None:
                on_chain(deadline)
            metrics.add_metric(name="StepsChained", unit="Count", value=1)
            header, kind = written, written.next_step

    def _can_chain(self, after: AgentHeader, deadline: float, memory: _Memory) -> bool:
        """Whether the step after ``after`` may run in this invocation (its worst case fits)."""
        if after.next_step is None or after.status in TERMINAL or after.status in HUMAN_WAITS:
            return False
        try:
            agent = self._agent(after)
        except AgentError:
            return False
        if after.next_step == StepKind.PLAN:
            # One model call at its worst; two if the plan must summarise first.
            model_calls = 2 if self._will_compact(after, agent, memory) else 1
            need = model_calls * agent.model.settings.worst_case_seconds
        else:
            turn = memory.turn(after.message_count - 1)
            calls = turn.tool_uses() if turn else []
            need = sum(
                agent.tools.timeout_of(c.name) if c.name in agent.tools.names() else 1.0
                for c in calls
            )
        return self._clock() + need + CHAIN_MARGIN_SECONDS <= deadline

    def _will_compact(self, header: AgentHeader, agent: Agent, memory: _Memory) -> bool:
        """Whether the next plan's prompt passes the token budget (it summarises first); when
        the history is not in memory, assume it does."""
        if memory.messages is None:
            return True
        goal = (
            memory.summary.goal
            if memory.summary
            else (memory.messages[0].text() if memory.messages else "")
        )
        tokens = estimate_tokens(
            system=system_prompt(agent.system_prompt, self._today()),
            messages=converse_messages(memory.messages, memory.summary, goal=goal),
            tools=agent.tools.specs(),
        )
        return tokens > agent.settings.token_budget

    def _release(self, header: AgentHeader) -> None:
        """After a failure mid-chain, let the step be announced again (best effort)."""
        if header.runner_until is None:
            return
        try:
            self.store.commit(header.version, header.model_copy(update={"runner_until": None}))
        except StoreError:
            logger.warning("could not release a chain: its watchdog will", agent_id=header.agent_id)

    def _run(
        self,
        header: AgentHeader,
        kind: StepKind,
        deadline: float | None,
        memory: _Memory,
        *,
        fresh: bool,
    ) -> AgentHeader:
        try:
            agent = self._agent(header)
            if kind == StepKind.PLAN:
                return self._plan(header, agent, memory)
            return self._act(header, agent, deadline, memory, fresh=fresh)
        except AgentError as failure:
            return self._failed(header, failure)
        except CorruptItemError as exc:
            return self._failed(header, AgentError(ErrorType.INTERNAL, str(exc)))

    def _agent(self, header: AgentHeader) -> Agent:
        """The agent definition the header names (the default one for a header without)."""
        try:
            return self.agents.get(header.agent or self.agents.default)
        except UnknownAgentError as exc:
            # The definition left the stack's config after the agent started: only a human
            # (or a redeploy that brings it back, then a resume) can move this agent.
            raise AgentError(ErrorType.AGENT_NOT_DEFINED, str(exc)) from exc

    # --- plan -----------------------------------------------------------------------------

    def _plan(self, header: AgentHeader, agent: Agent, memory: _Memory) -> AgentHeader:
        # The budget counts from the last human instruction, so a resumed agent gets a new one.
        if header.step - header.steps_granted_at >= agent.settings.max_steps:
            raise AgentError(
                ErrorType.STEP_LIMIT_EXCEEDED,
                f"the agent used its {agent.settings.max_steps} steps without finishing",
            )
        cap = agent.settings.max_total_tokens
        if cap is not None and header.usage.total >= cap:
            raise AgentError(
                ErrorType.BUDGET_EXCEEDED,
                f"the agent used {header.usage.total} tokens of its cap of {cap}",
            )
        summary, messages = memory.history(self.store, header)
        if messages and messages[-1].role == "assistant" and messages[-1].tool_uses():
            header, messages = self._answer_interrupted(header, memory, messages)
        written = memory.already_written(header.message_count)
        if written is not None and written.step == header.step:
            # A delivery of this very step decided it already and died before its header was
            # written (a chain's worker, whose redelivery is this; its later steps' turns come
            # next, step by step): commit that decision. Asking the model again could fail the
            # step and leave the turn, whose calls may have run, to a later step to overwrite.
            visible = {u.tool_use_id for m in messages for u in m.tool_uses()}
            decision = self._redecide(header, agent, written, visible)
            self._write_rest(header, decision.messages[1:])
            memory.add(decision.messages)
            metrics.add_metric(name="StepsAdopted", unit="Count", value=1)
            return header.model_copy(
                update={
                    "step": header.step + 1,
                    "usage": header.usage.plus(_usage_of(written)),
                    **decision.update,
                }
            )
        goal = summary.goal if summary else (messages[0].text() if messages else "")
        system = system_prompt(agent.system_prompt, self._today())
        tool_specs = agent.tools.specs()
        new_summary, summary_usage = self._maybe_compact(
            header, agent, system, tool_specs, messages, summary, goal
        )
        if new_summary is not None:
            summary = new_summary
            messages = [m for m in messages if m.seq > new_summary.upto_seq]
            memory.compacted(new_summary)
        try:
            turn = agent.model.converse(
                system=system,
                messages=converse_messages(messages, summary, goal=goal),
                tools=tool_specs,
            )
        except ModelError as exc:
            raise AgentError(exc.error_type, str(exc)) from exc
        record_model_call(agent.model_id, turn.usage, turn.latency_ms, agent.price)
        usage = turn.usage.plus(summary_usage) if summary_usage else turn.usage
        visible = {u.tool_use_id for m in messages for u in m.tool_uses()}
        decision = self._decide(header, agent, _blocks(turn), turn.stop_reason, usage, visible)
        decision = self._write(header, agent, decision, visible)
        memory.add(decision.messages)
        return header.model_copy(
            update={
                "step": header.step + 1,
                "usage": header.usage.plus(_usage_of(decision.messages[0])),
                "summary_upto_seq": summary.upto_seq if summary else header.summary_upto_seq,
                **decision.update,
            }
        )

    def _answer_interrupted(
        self, header: AgentHeader, memory: _Memory, messages: list[Message]
    ) -> tuple[AgentHeader, list[Message]]:
        """The history ends with calls no act answered: the act failed before recording them,
        and recovery asked for this plan. Answer them first, as a resume does (with what their
        worker recorded, else what the platform can state: ``interrupted``), or Converse
        refuses the prompt and the recovery sends the agent to a person for nothing."""
        ahead = sorted(memory.ahead.values(), key=lambda m: m.seq)
        settled = settle_stored(self.store, header, [messages[-1], *ahead], step=header.step)
        recorded = [self._record(header, message) for message in settled.written]
        answered = [*settled.adopted, *recorded]
        for message in answered:
            memory.ahead.pop(message.seq, None)
        memory.add(answered)
        header = header.model_copy(
            update={
                "message_count": header.message_count + settled.count,
                "tool_call_count": header.tool_call_count + settled.calls_run,
                "tool_uses": settled.tool_uses(header.tool_uses),
                "usage": settled.usage(header.usage),
            }
        )
        return header, [*messages, *answered]

    def _maybe_compact(
        self,
        header: AgentHeader,
        agent: Agent,
        system: str,
        tool_specs: list[dict[str, Any]],
        history: list[Message],
        summary: Summary | None,
        goal: str,
    ) -> tuple[Summary | None, TokenUsage | None]:
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
        new = Summary(upto_seq=cut, text=bounded_text(text, 50_000), goal=goal)
        # Written before the header that counts it; until then no reader looks for it.
        self.store.put_summary(header.agent_id, new, header.ttl)
        return new, usage

    def _decide(
        self,
        header: AgentHeader,
        agent: Agent,
        blocks: list[dict[str, Any]],
        stop_reason: str,
        usage: TokenUsage,
        visible: set[str],
    ) -> _Decision:
        """Turn a model answer into what the step commits: calls, an answer, or a correction."""
        problems, structural, content = self._validate_turn(
            header, agent, blocks, stop_reason, usage, visible
        )
        seq, step = header.message_count, header.step
        if problems:
            return self._correction(header, agent, content, problems, structural, usage)
        assistant = Message(
            seq=seq,
            role="assistant",
            content=content,
            step=step,
            origin=Origin.MODEL,
            usage=usage,
            stop_reason=stop_reason,
        )
        calls = assistant.tool_uses()
        update: dict[str, Any]
        if not calls:
            update = {
                "status": check_transition(header.status, Status.COMPLETED),
                "next_step": None,
                "message_count": seq + 1,
                "plan_retries": 0,
            }
            return _Decision([assistant], update)
        held = _needing_approval(agent, header.tool_uses, calls)
        if held:
            # A person decides on each of these calls before the act step runs any of them.
            update = {
                "status": check_transition(header.status, Status.AWAITING_APPROVAL),
                "next_step": StepKind.ACT,
                "message_count": seq + 1,
                "plan_retries": 0,
                "approval_deadline": round(
                    self._clock() + agent.settings.approval_window_seconds, 3
                ),
                "awaiting_tools": sorted({call.name for call in held}),
                "awaiting_calls": [call.tool_use_id for call in held],
            }
            return _Decision([assistant], update)
        update = {
            "status": check_transition(header.status, Status.TOOL_EXECUTION_PENDING),
            "next_step": StepKind.ACT,
            "message_count": seq + 1,
            "plan_retries": 0,
        }
        return _Decision([assistant], update)

    def _validate_turn(
        self,
        header: AgentHeader,
        agent: Agent,
        raw: list[dict[str, Any]],
        stop_reason: str,
        usage: TokenUsage,
        visible: set[str],
    ) -> tuple[list[str], bool, list[Any]]:
        """The problems of an answer, whether they forbid storing it, and its usable blocks.

        A *structural* problem (repeated or reused toolUseIds, too many calls, an answer too
        large to store) means the answer cannot even be kept as history: the model is told
        in a plain text turn instead of seeing its own answer echoed.
        """
        problems: list[str] = []
        blocks: list[Any] = []
        for block in raw:
            if "text" in block:
                if str(block["text"]).strip():
                    blocks.append(TextBlock(text=str(block["text"])))
            elif "toolUse" in block:
                try:
                    use = ToolUseBlock.model_validate(block)
                except ValidationError as exc:
                    problems.append(f"a toolUse block is malformed: {_first_error(exc)}")
                    continue
                blocks.append(use)
                try:
                    agent.tools.validate(use.tool_use.name, use.tool_use.input)
                except ToolError as exc:
                    problems.append(f"tool call {use.tool_use.tool_use_id}: {exc}")
            # Other block kinds (reasoning, citations...) are not part of the durable history.
        ids = [b.tool_use.tool_use_id for b in blocks if isinstance(b, ToolUseBlock)]
        structural: list[str] = []
        if len(ids) > MAX_CALLS_PER_TURN:
            structural.append(
                f"{len(ids)} tool calls in one turn are more than {MAX_CALLS_PER_TURN}; "
                f"ask for at most {MAX_CALLS_PER_TURN} at a time"
            )
        if repeated := sorted({i for i in ids if ids.count(i) > 1}):
            structural.append(f"toolUseIds {repeated} are repeated within the turn")
        if reused := sorted(set(ids) & visible):
            structural.append(f"toolUseIds {reused} were already used earlier in the conversation")
        if not structural:
            size = self._size(header, blocks, usage, stop_reason)
            if size > self.store.max_item_bytes:
                structural.append(
                    f"the answer is {size} bytes, more than the {self.store.max_item_bytes} bytes "
                    "a turn may hold; answer more briefly, or with fewer or smaller tool inputs"
                )
        if structural:
            return problems + structural, True, blocks
        if stop_reason == "tool_use" and not ids:
            problems.append("stopReason is tool_use but the answer holds no toolUse block")
        elif stop_reason == "max_tokens":
            problems.append("the answer was cut off at the output token limit")
        elif not blocks:
            problems.append("the answer is empty")
        elif stop_reason not in ("tool_use", "end_turn", "stop_sequence"):
            problems.append(f"unexpected stopReason {stop_reason!r}")
        return problems, False, blocks

    def _size(
        self, header: AgentHeader, blocks: list[Any], usage: TokenUsage, stop_reason: str
    ) -> int:
        if not blocks:
            return 0
        message = Message(
            seq=header.message_count,
            role="assistant",
            content=blocks,
            step=header.step,
            origin=Origin.MODEL,
            usage=usage,
            stop_reason=stop_reason,
        )
        return self.store.message_size(header.agent_id, message, header.ttl)

    def _correction(
        self,
        header: AgentHeader,
        agent: Agent,
        blocks: list[Any],
        problems: list[str],
        structural: bool,
        usage: TokenUsage,
    ) -> _Decision:
        """Send an invalid answer back to the model with the reasons, or give up after the bound."""
        retries = header.plan_retries + 1
        metrics.add_metric(name="InvalidModelOutput", unit="Count", value=1)
        reason = "; ".join(problems)
        if retries > agent.settings.max_plan_retries:
            raise AgentError(
                ErrorType.PLANNING_FAILED,
                f"model output failed validation {retries} times in a row: {reason}",
            )
        seq, step = header.message_count, header.step
        messages: list[Message] = []
        reply: list[Any] = []
        if blocks and not structural:
            assistant = Message(
                seq=seq,
                role="assistant",
                content=blocks,
                step=step,
                origin=Origin.MODEL,
                usage=usage,
                stop_reason="invalid",
            )
            messages.append(assistant)
            seq += 1
            reply = [
                ToolResultBlock(
                    tool_result=ToolResult(
                        tool_use_id=call.tool_use_id,
                        status="error",
                        content=[{"text": bounded_text(f"Not executed: {reason}.", 8000)}],
                    )
                )
                for call in assistant.tool_uses()
            ]
        if not reply:
            text = f"Your previous answer could not be used: {reason}. Answer again."
            reply = [TextBlock(text=bounded_text(text, 8000))]
        messages.append(
            Message(
                seq=seq,
                role="user",
                content=reply,
                step=step,
                origin=Origin.PLATFORM,
                usage=None if messages else usage,
            )
        )
        update = {
            "status": check_transition(header.status, Status.TOOL_EXECUTION_FAILED),
            "next_step": StepKind.PLAN,
            "message_count": seq + 1,
            "plan_retries": retries,
        }
        return _Decision(messages, update)

    def _write(
        self, header: AgentHeader, agent: Agent, decision: _Decision, visible: set[str]
    ) -> _Decision:
        """Write a decision's messages in order; commit the decision already there, if any."""
        first, *rest = decision.messages
        existing = self.store.put_step_message(header.agent_id, first, header.ttl)
        if existing is not None:
            if existing.step != header.step:
                raise _Moved(f"message {first.seq} belongs to step {existing.step}")
            # Another worker decided this step first: commit its decision, not ours.
            decision = self._redecide(header, agent, existing, visible)
            rest = decision.messages[1:]
        self._write_rest(header, rest)
        return decision

    def _write_rest(self, header: AgentHeader, messages: list[Message]) -> None:
        """Write the messages of a decision after its first (its lock), in order."""
        for message in messages:
            other = self.store.put_step_message(header.agent_id, message, header.ttl)
            if other is not None and other.step != header.step:
                raise _Moved(f"message {message.seq} belongs to step {other.step}")

    def _redecide(
        self, header: AgentHeader, agent: Agent, first: Message, visible: set[str]
    ) -> _Decision:
        """The decision whose first message is ``first`` (written by another worker)."""
        usage = first.usage or TokenUsage()
        if first.role == "assistant" and first.origin == Origin.MODEL:
            raw = [b.model_dump(by_alias=True, mode="json") for b in first.content]
            stop = first.stop_reason or ("tool_use" if first.tool_uses() else "end_turn")
            if stop == "invalid":  # stored as a correction's echo: recompute its problems
                stop = "tool_use" if first.tool_uses() else "end_turn"
            decision = self._decide(header, agent, raw, stop, usage, visible)
            decision.messages[0] = first
            return decision
        if first.role == "user" and first.origin == Origin.PLATFORM:
            retries = header.plan_retries + 1
            update = {
                "status": check_transition(header.status, Status.TOOL_EXECUTION_FAILED),
                "next_step": StepKind.PLAN,
                "message_count": first.seq + 1,
                "plan_retries": retries,
            }
            return _Decision([first], update)
        raise _Moved(f"message {first.seq} was not written by a plan step")

    # --- act ------------------------------------------------------------------------------

    def _act(
        self,
        header: AgentHeader,
        agent: Agent,
        deadline: float | None,
        memory: _Memory,
        *,
        fresh: bool,
    ) -> AgentHeader:
        turn_seq = header.message_count - 1
        turn = memory.turn(turn_seq) or self._read_turn(header, turn_seq)
        if turn is None or turn.role != "assistant" or not turn.tool_uses():
            raise CorruptItemError(
                f"agent {header.agent_id!r}: message {turn_seq} is not the turn with the calls"
            )
        outcomes: list[Message] = []
        uses = dict(header.tool_uses)
        for index, call in enumerate(turn.tool_uses()):
            # A cancel (or any writer) that landed since the header was last read stops every
            # call with an effect: before each call but a fresh step's first, read it again.
            # A lookup changes nothing, so it is not worth a read (the next commit catches up).
            if (index or not fresh) and self.recheck_cancellation and not _read_only(agent, call):
                self._still_current(header)
            budget = agent.settings.tool_budgets.get(call.name)
            if budget is not None and uses.get(call.name, 0) >= budget:
                text = (
                    f"Not executed: this agent may call {call.name} at most {budget} time(s) "
                    "over its life, and that budget is used up. Do not call it again; finish "
                    "without it or explain what is missing."
                )
                seq = header.message_count + index
                skipped = _plain_result(header, seq, call, text, Outcome.SKIPPED)
                outcomes.append(self._record(header, skipped))
                continue
            if agent.needs_approval(call.name):
                self._settle_undecided(header, turn_seq, index, call)
            message = self._run_call(header, agent, turn_seq, index, call, deadline)
            if message.outcome in BUDGETED:
                uses[call.name] = uses.get(call.name, 0) + 1
            outcomes.append(message)
        memory.add(outcomes)
        return self._after_act(header, agent, outcomes)

    def _read_turn(self, header: AgentHeader, seq: int) -> Message | None:
        """The turn the act runs: eventually consistent (half the units) when it proves current,
        else strongly. A plan's turn may have overwritten an orphan at its seq (a turn an
        earlier, failed step wrote), and an eventually consistent read can still return that
        version: it has an older step. The turn of the plan just before this act has step
        ``header.step - 1``, and a seq holds one version per step (``put_step_message``)."""
        turn = self.store.get_message(header.agent_id, seq)
        if turn is not None and turn.step == header.step - 1:
            return turn
        return self.store.get_message(header.agent_id, seq, consistent=True)

    def _settle_undecided(
        self, header: AgentHeader, turn_seq: int, index: int, call: ToolUse
    ) -> None:
        """A call that needs approval and has no decision is rejected, never run unapproved.

        (The approval window normally decides first; this covers a definition that started
        requiring approval between the plan and the act.)
        """
        if self.store.get_claim(header.agent_id, turn_seq, call.tool_use_id) is not None:
            return
        self.store.record_decision(
            ToolClaim(
                agent_id=header.agent_id,
                turn_seq=turn_seq,
                tool_use_id=call.tool_use_id,
                name=call.name,
                result_seq=header.message_count + index,
                status=ClaimStatus.REJECTED,
                decided_by="platform",
                reason="no person approved it",
            ),
            ttl=header.ttl,
        )

    def _still_current(self, header: AgentHeader) -> None:
        current = self.store.find_header(header.agent_id)
        if current is None or current.version != header.version:
            status = current.status if current else "deleted"
            raise _Moved(f"the agent changed while its tools ran (now {status})")

    def _run_call(
        self,
        header: AgentHeader,
        agent: Agent,
        turn_seq: int,
        index: int,
        call: ToolUse,
        deadline: float | None,
    ) -> Message:
        """Run one committed call at most once; its recorded outcome, as a result message."""
        result_seq = header.message_count + index
        timeout = agent.tools.timeout_of(call.name) if call.name in agent.tools.names() else 1.0
        now = self._clock()
        if deadline is not None and now + timeout + 1 > deadline:
            # Not enough of this invocation is left: let a fresh one take the call.
            raise StepInProgressError(f"{call.name} needs {timeout:g} s; the invocation ends first")
        lease = timeout + LEASE_MARGIN_SECONDS
        claim = ToolClaim(
            agent_id=header.agent_id,
            turn_seq=turn_seq,
            tool_use_id=call.tool_use_id,
            name=call.name,
            result_seq=result_seq,
            lease_until=datetime.fromtimestamp(now + lease, tz=utcnow().tzinfo),
        )
        if self.store.claim_tool(claim, ttl=header.ttl) is None:
            return self._taken(header, claim, call)
        outcome = agent.tools.execute(
            call.name,
            call.input,
            ToolContext(
                agent_id=header.agent_id,
                tool_use_id=call.tool_use_id,
                table_name=self.store.table_name,
                dynamodb=self.store.client,
                deadline=now + timeout,
            ),
        )
        logger.info(
            "tool executed", tool=call.name, tool_use_id=call.tool_use_id, status=outcome.status
        )
        message = _result_message(header, result_seq, call, outcome, agent)
        return self._record(header, message, until=now + lease)

    def _taken(self, header: AgentHeader, claim: ToolClaim, call: ToolUse) -> Message:
        """The outcome of a call someone else claimed: recorded, rejected, running or lost."""
        done = self.store.get_message(header.agent_id, claim.result_seq, consistent=True)
        if done is not None and done.step == header.step:
            return done
        existing = self.store.get_claim(header.agent_id, claim.turn_seq, call.tool_use_id)
        if existing is None:
            raise StepInProgressError(f"tool call {call.tool_use_id}: its claim vanished")
        live = existing.lease_until is not None and existing.lease_until.timestamp() > self._clock()
        if existing.status == ClaimStatus.IN_PROGRESS and live:
            raise StepInProgressError(f"tool call {call.tool_use_id} is running elsewhere")
        # Rejected (by a person, or withheld from an interrupted step), or its worker died
        # mid-call: it may have taken effect, and it never runs twice.
        text, outcome = claim_statement(existing)
        return self._record(header, _plain_result(header, claim.result_seq, call, text, outcome))

    def _record(
        self, header: AgentHeader, message: Message, *, until: float | None = None
    ) -> Message:
        """Write a call's outcome now, retrying transient failures; never drop a known one."""
        delay = 0.05
        while True:
            try:
                existing = self.store.put_step_message(header.agent_id, message, header.ttl)
            except (StoreThrottledError, StoreUnavailableError):
                # A lost response may hide a landed write: the retry then finds it (same step).
                if until is not None and self._clock() + delay > until:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            if existing is None:
                return message
            if existing.step != header.step:
                raise _Moved(f"message {message.seq} belongs to step {existing.step}")
            return existing

    def _after_act(self, header: AgentHeader, agent: Agent, outcomes: list[Message]) -> AgentHeader:
        failed = sum(1 for m in outcomes if m.outcome in (Outcome.FAILED, Outcome.UNKNOWN))
        if failed:
            metrics.add_metric(name="ToolFailures", unit="Count", value=failed)
        consecutive = header.consecutive_tool_failures + 1 if failed else 0
        uses = budgeted_uses(header.tool_uses, outcomes)
        update: dict[str, Any] = {
            "step": header.step + 1,
            "message_count": header.message_count + len(outcomes),
            "tool_call_count": header.tool_call_count + calls_ran(outcomes),
            "consecutive_tool_failures": consecutive,
            "next_step": StepKind.PLAN,
            "tool_uses": uses,
        }
        if any(m.outcome == Outcome.SKIPPED for m in outcomes):
            # The model was told the budget is spent; asking again goes to a person.
            if header.budget_strikes >= 1:
                after = header.model_copy(update=update)  # still acting: a tool failure
                failure = AgentError(
                    ErrorType.BUDGET_EXCEEDED,
                    "the model called a tool whose budget is spent, after being told",
                )
                return self._failed(after, failure, advance=False)
            update["budget_strikes"] = header.budget_strikes + 1
        if not failed:
            update["status"] = check_transition(header.status, Status.TOOL_EXECUTION_SUCCESS)
            # A successful tool round proves the agent recovered: later errors get a fresh
            # recovery budget. (A tool that keeps failing never resets it, and ends with a human.)
            update["recovery_attempts"] = 0
            return header.model_copy(update=update)
        update["status"] = check_transition(header.status, Status.TOOL_EXECUTION_FAILED)
        after = header.model_copy(update=update)
        if consecutive >= agent.settings.max_tool_failures:
            # The outcomes stay in the history, so the model sees them after recovery.
            failure = AgentError(
                ErrorType.TOOL_EXECUTION_FAILED,
                f"{consecutive} consecutive tool rounds failed",
            )
            return self._failed(after, failure, advance=False)
        return after

    # --- failure --------------------------------------------------------------------------

    def _failed(
        self, header: AgentHeader, failure: AgentError, *, advance: bool = True
    ) -> AgentHeader:
        """The header of a step that ends in a typed error (announced as ``Agent Error``).

        The error's text goes to the logs only: what callers and humans read is the typed
        public message of its ``ErrorType``.
        """
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
        step = header.step + 1 if advance else header.step
        return header.model_copy(
            update={
                "status": target,
                "step": step,
                "next_step": None,
                "error_count": header.error_count + 1,
                "last_error_type": failure.error_type,
                "last_error_step": step,
            }
        )


# --- helpers -------------------------------------------------------------------------------------


def _read_only(agent: Agent, call: ToolUse) -> bool:
    return call.name in agent.tools.names() and agent.tools.get(call.name).read_only


def _needing_approval(agent: Agent, uses: dict[str, int], calls: list[ToolUse]) -> list[ToolUse]:
    """The calls of a turn a person must decide on (those over their budget never run)."""
    counted = dict(uses)
    held = []
    for call in calls:
        budget = agent.settings.tool_budgets.get(call.name)
        if budget is not None and counted.get(call.name, 0) >= budget:
            continue
        counted[call.name] = counted.get(call.name, 0) + 1
        if agent.needs_approval(call.name):
            held.append(call)
    return held


def _blocks(turn: ModelTurn) -> list[dict[str, Any]]:
    return [block for block in turn.content if isinstance(block, dict)]


def _usage_of(message: Message) -> TokenUsage:
    return message.usage or TokenUsage()


def _result_message(
    header: AgentHeader, seq: int, call: ToolUse, outcome: ToolOutcome, agent: Agent
) -> Message:
    """A call's outcome as its result message, bounded in size."""
    limit = agent.settings.max_tool_result_chars
    if outcome.timed_out:
        text = (
            f"Outcome unknown: the call did not finish within {outcome.timeout:g} s and may "
            "still take effect. Check whether it did before calling it again."
        )
        return _plain_result(header, seq, call, text, Outcome.UNKNOWN)
    content = outcome.content
    rendered = json.dumps(content, ensure_ascii=False, separators=(",", ":"))
    if len(rendered) > limit:
        content = [
            {
                "text": rendered[:limit]
                + f"...[truncated {len(rendered) - limit} characters of the tool's result]"
            }
        ]
    status = "success" if outcome.status == "success" else "error"
    return Message(
        seq=seq,
        role="user",
        content=[
            ToolResultBlock(
                tool_result=ToolResult(tool_use_id=call.tool_use_id, content=content, status=status)
            )
        ],
        step=header.step,
        origin=Origin.TOOL,
        outcome=Outcome.SUCCEEDED if status == "success" else Outcome.FAILED,
        tool_name=call.name,
    )


def _plain_result(
    header: AgentHeader, seq: int, call: ToolUse, text: str, outcome: Outcome
) -> Message:
    return stated_result(seq, header.step, call, text, outcome)


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    location = ".".join(str(part) for part in error["loc"])
    return f"{location}: {error['msg']}"
