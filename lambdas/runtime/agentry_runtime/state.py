"""The agent's state: header, messages as Converse content blocks, tool-call claims, summaries.

Pure data with checked status transitions; persistence lives in ``store.py``. Readers ignore
fields they do not know (a newer runtime may add some during a rolling deploy).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agentry_runtime.contract import SCHEMA_VERSION, ErrorType, Status, StepKind

__all__ = [
    "ALLOWED_TRANSITIONS",
    "BUDGETED",
    "AgentHeader",
    "AgentInfo",
    "ClaimStatus",
    "ContentBlock",
    "IllegalTransitionError",
    "Message",
    "Origin",
    "Outcome",
    "Status",
    "Summary",
    "TextBlock",
    "TokenUsage",
    "ToolClaim",
    "ToolResult",
    "ToolResultBlock",
    "ToolUse",
    "ToolUseBlock",
    "budgeted_uses",
    "calls_ran",
    "check_transition",
    "utcnow",
]

# Statuses from which a plan step may run (the model is asked what to do next).
_PLANNABLE = {
    Status.INITIATED,
    Status.RECOVERING,
    Status.RESUMED,
    Status.FOLLOWED_UP,
    Status.TOOL_EXECUTION_SUCCESS,
    Status.TOOL_EXECUTION_FAILED,
}
# Outcomes of a plan step.
_PLAN_OUTCOMES = {
    Status.TOOL_EXECUTION_PENDING,
    Status.AWAITING_APPROVAL,
    Status.COMPLETED,
    Status.PLANNING_FAILED,
    Status.TOOL_EXECUTION_FAILED,  # invalid tool calls answered with error results: re-plan
    Status.FAILED,
    Status.CANCELLED,
}

ALLOWED_TRANSITIONS: dict[Status, frozenset[Status]] = {
    **{s: frozenset(_PLAN_OUTCOMES) for s in _PLANNABLE},
    Status.TOOL_EXECUTION_PENDING: frozenset(
        {
            Status.TOOL_EXECUTION_SUCCESS,
            Status.TOOL_EXECUTION_FAILED,
            Status.CANCELLED,
            Status.FAILED,
        }
    ),
    # Every decision is in: the calls run (approved or rejected alike, in one act step).
    Status.AWAITING_APPROVAL: frozenset(
        {Status.TOOL_EXECUTION_PENDING, Status.CANCELLED, Status.FAILED}
    ),
    Status.PLANNING_FAILED: frozenset(
        {Status.RECOVERING, Status.NEEDS_HUMAN, Status.CANCELLED, Status.FAILED}
    ),
    Status.NEEDS_HUMAN: frozenset({Status.RESUMED, Status.CANCELLED, Status.FAILED}),
    # A follow-up message continues the same conversation.
    Status.COMPLETED: frozenset({Status.FOLLOWED_UP}),
    Status.CANCELLED: frozenset(),
    Status.FAILED: frozenset(),
}
# A failed tool round may also wait for recovery or a human.
ALLOWED_TRANSITIONS[Status.TOOL_EXECUTION_FAILED] = ALLOWED_TRANSITIONS[
    Status.TOOL_EXECUTION_FAILED
] | {Status.RECOVERING, Status.NEEDS_HUMAN}


class IllegalTransitionError(ValueError):
    """Raised when a status change is not in ``ALLOWED_TRANSITIONS``."""

    def __init__(self, current: Status, target: Status) -> None:
        super().__init__(f"cannot go from {current} to {target}")
        self.current = current
        self.target = target


def check_transition(current: Status, target: Status) -> Status:
    """Return ``target`` if the agent may move there from ``current``, else raise."""
    if target not in ALLOWED_TRANSITIONS[current]:
        raise IllegalTransitionError(current, target)
    return target


def utcnow() -> datetime:
    """Current time, timezone-aware UTC (one place to patch in tests)."""
    return datetime.now(UTC)


# --- Converse content blocks ---------------------------------------------------------------


class TextBlock(BaseModel):
    """``{"text": ...}``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    text: str


class ToolUse(BaseModel):
    """The body of a ``toolUse`` block: the model asks for one tool call."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    tool_use_id: str = Field(alias="toolUseId", min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=64)
    input: dict[str, Any]


class ToolUseBlock(BaseModel):
    """``{"toolUse": {...}}``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    tool_use: ToolUse = Field(alias="toolUse")


class ToolResult(BaseModel):
    """The body of a ``toolResult`` block: the outcome of one tool call, in a user turn."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    tool_use_id: str = Field(alias="toolUseId", min_length=1, max_length=64)
    content: list[dict[str, Any]]
    status: Literal["success", "error"]


class ToolResultBlock(BaseModel):
    """``{"toolResult": {...}}``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    tool_result: ToolResult = Field(alias="toolResult")


ContentBlock = Annotated[TextBlock | ToolUseBlock | ToolResultBlock, Field(union_mode="smart")]


class TokenUsage(BaseModel):
    """Bedrock token usage, accumulated."""

    model_config = ConfigDict(extra="ignore")
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_write_input_tokens: int = 0

    def plus(self, other: TokenUsage) -> TokenUsage:
        """Sum of two usages."""
        return TokenUsage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_read_input_tokens=self.cache_read_input_tokens + other.cache_read_input_tokens,
            cache_write_input_tokens=self.cache_write_input_tokens + other.cache_write_input_tokens,
        )

    @property
    def total(self) -> int:
        """Every token counted: input (cached or not) and output."""
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_read_input_tokens
            + self.cache_write_input_tokens
        )


class Origin(StrEnum):
    """Who a message comes from. Kept beside the text, never in it: user text cannot claim to
    be an operator's instruction, and a tool result is data, whatever it says."""

    CALLER = "caller"  # the agent's owner: the goal and follow-ups
    OPERATOR = "operator"  # a human's instruction through resume
    MODEL = "model"  # an assistant turn
    TOOL = "tool"  # the outcome of one tool call
    PLATFORM = "platform"  # a correction the loop sends back to the model


class Outcome(StrEnum):
    """How one tool call ended, as recorded in its result message."""

    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    #: It may or may not have taken effect: it timed out, or its worker died mid-call.
    UNKNOWN = "UNKNOWN"
    #: A person rejected it before it ran.
    REJECTED = "REJECTED"
    #: It never ran: the agent was cancelled, or the tool's budget was spent.
    SKIPPED = "SKIPPED"


#: Outcomes a tool budget counts: calls that took effect, or may have. A call the tool itself
#: reported as failed did not (and may be retried), nor did a rejected or skipped one.
BUDGETED = frozenset({Outcome.SUCCEEDED, Outcome.UNKNOWN})


class Message(BaseModel):
    """One conversation turn, exactly as Converse takes it; ``seq`` orders it in the history.

    A tool's outcome is a user message of its own holding one ``toolResult`` block (written the
    moment it is known); consecutive user messages merge into one turn in the prompt.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)
    seq: int = Field(ge=0)
    role: Literal["user", "assistant"]
    content: list[ContentBlock] = Field(min_length=1)
    step: int = Field(default=0, ge=0)
    origin: Origin = Origin.CALLER
    author: str | None = Field(default=None, description="Who wrote a human message (an ARN).")
    outcome: Outcome | None = Field(default=None, description="Of a tool result message.")
    tool_name: str | None = Field(default=None, description="Of a tool result message.")
    stop_reason: str | None = Field(default=None, description="Of an assistant turn.")
    created_at: datetime = Field(default_factory=utcnow)
    usage: TokenUsage | None = Field(
        default=None, description="Tokens of the model call that produced this turn."
    )

    def to_converse(self) -> dict[str, Any]:
        """The ``{"role", "content"}`` dict sent to Bedrock."""
        return {
            "role": self.role,
            "content": [b.model_dump(by_alias=True, mode="json") for b in self.content],
        }

    def tool_uses(self) -> list[ToolUse]:
        """The tool calls this (assistant) turn asks for."""
        return [b.tool_use for b in self.content if isinstance(b, ToolUseBlock)]

    def tool_results(self) -> list[ToolResult]:
        """The tool results this (user) turn carries."""
        return [b.tool_result for b in self.content if isinstance(b, ToolResultBlock)]

    def text(self) -> str:
        """The text blocks of this turn, joined."""
        return "\n".join(b.text for b in self.content if isinstance(b, TextBlock))


# --- records -----------------------------------------------------------------------------------


class ClaimStatus(StrEnum):
    """State of a tool call's claim record (its outcome is its result message)."""

    IN_PROGRESS = "IN_PROGRESS"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"


class ToolClaim(BaseModel):
    """The idempotency record of one tool call: who runs it and until when (its lease).

    Created when the call is claimed (or when a person decides on it, for calls that need
    approval); the call's outcome is not here but in its result message ``result_seq``.
    """

    model_config = ConfigDict(extra="ignore")
    agent_id: str
    turn_seq: int = Field(ge=0, description="The assistant turn that asked for the call.")
    tool_use_id: str
    name: str
    result_seq: int = Field(ge=0, description="Where the call's result message goes.")
    status: ClaimStatus = ClaimStatus.IN_PROGRESS
    lease_until: datetime | None = None
    decided_by: str | None = None
    reason: str | None = None
    created_at: datetime = Field(default_factory=utcnow)


class Summary(BaseModel):
    """A compaction summary standing in for messages ``0..upto_seq`` (the goal kept beside)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    upto_seq: int = Field(ge=0)
    text: str
    goal: str = ""
    created_at: datetime = Field(default_factory=utcnow)


class AgentInfo(BaseModel):
    """The ``INFO`` item: what describes an agent and never changes, written once."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    agent_id: str
    agent: str
    goal: str
    model_id: str
    runtime_version: str
    owner: str = ""
    created_at: datetime = Field(default_factory=utcnow)
    #: Who cancelled the agent, and when (ISO 8601), set by the cancel's transaction.
    cancelled_by: str | None = None
    cancelled_at: str | None = None


class AgentHeader(BaseModel):
    """The ``META`` item: small and fixed-size, written by every step.

    ``version`` increases on every step's write and guards optimistic concurrency; ``step``
    counts committed steps and, with ``next_step``, names the one step the agent waits for.
    ``nonce`` changes when the reconciler asks for the current step to be announced again.
    """

    model_config = ConfigDict(extra="ignore")
    schema_version: int = SCHEMA_VERSION
    agent_id: str
    agent: str = Field(default="", description="The agent definition's name ('' = default).")
    owner: str = Field(default="", description="Who created the agent (an IAM principal).")
    status: Status = Status.INITIATED
    version: int = 0
    step: int = 0
    next_step: StepKind | None = StepKind.PLAN
    nonce: int = 0
    runner_until: float | None = Field(
        default=None, description="A chaining worker's deadline (epoch seconds), if one runs."
    )
    message_count: int = 0
    tool_call_count: int = 0
    error_count: int = 0
    consecutive_tool_failures: int = 0
    plan_retries: int = 0
    recovery_attempts: int = 0
    redrives: int = Field(default=0, description="Times the reconciler re-drove a dead letter.")
    steps_granted_at: int = Field(
        default=0, ge=0, description="The step of the last human instruction: limits count from it."
    )
    usage: TokenUsage = Field(default_factory=TokenUsage)
    tool_uses: dict[str, int] = Field(
        default_factory=dict, description="Calls of each tool over the agent's life (budgets)."
    )
    last_error_type: ErrorType | None = None
    last_error_step: int | None = None
    summary_upto_seq: int = -1
    shard: str = "0"
    approval_deadline: float | None = Field(
        default=None, description="When unanswered approvals count as rejected (epoch seconds)."
    )
    awaiting_tools: list[str] = Field(
        default_factory=list, description="Names of the tools whose calls wait for approval."
    )
    awaiting_calls: list[str] = Field(
        default_factory=list, description="toolUseIds of the calls that wait for approval."
    )
    budget_strikes: int = Field(
        default=0,
        ge=0,
        description="Act steps that met a spent tool budget since the last person's message.",
    )
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    ttl: int | None = None


def calls_ran(results: Iterable[Message]) -> int:
    """How many of these result messages are of calls that ran, or may have (neither rejected
    nor skipped): what ``tool_call_count`` counts."""
    return sum(1 for m in results if m.outcome not in (Outcome.REJECTED, Outcome.SKIPPED))


def budgeted_uses(before: Mapping[str, int], results: Iterable[Message]) -> dict[str, int]:
    """``before`` plus, per tool, the calls among these result messages a budget counts."""
    uses = dict(before)
    for message in results:
        if message.outcome in BUDGETED:
            name = message.tool_name or "unknown"
            uses[name] = uses.get(name, 0) + 1
    return uses
