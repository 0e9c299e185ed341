"""The agent's state: header, messages as Converse content blocks, tool call records.

Pure data with checked status transitions; persistence lives in ``store.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agentry_runtime.contract import ErrorType, StepKind


class Status(StrEnum):
    """Lifecycle of an agent (the article's names where they fit, plus recovery states)."""

    INITIATED = "INITIATED"
    TOOL_EXECUTION_PENDING = "TOOL_EXECUTION_PENDING"
    TOOL_EXECUTION_SUCCESS = "TOOL_EXECUTION_SUCCESS"
    TOOL_EXECUTION_FAILED = "TOOL_EXECUTION_FAILED"
    PLANNING_FAILED = "PLANNING_FAILED"
    RECOVERING = "RECOVERING"
    RESUMED = "RESUMED"
    FOLLOWED_UP = "FOLLOWED_UP"
    COMPLETED = "COMPLETED"
    NEEDS_HUMAN = "NEEDS_HUMAN"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"


#: No step runs for an agent in these statuses (a COMPLETED agent may still get a follow-up).
TERMINAL: frozenset[Status] = frozenset({Status.COMPLETED, Status.CANCELLED, Status.FAILED})

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

_BLOCK = ConfigDict(extra="forbid", frozen=True)


class TextBlock(BaseModel):
    """``{"text": ...}``."""

    model_config = _BLOCK
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

    model_config = ConfigDict(extra="forbid")
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


class Message(BaseModel):
    """One conversation turn, exactly as Converse takes it; ``seq`` orders it in the history."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    seq: int = Field(ge=0)
    role: Literal["user", "assistant"]
    content: list[ContentBlock] = Field(min_length=1)
    step: int = Field(default=0, ge=0)
    created_at: datetime = Field(default_factory=utcnow)
    usage: TokenUsage | None = Field(
        default=None, description="Tokens of the model call that produced an assistant turn."
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

    def text(self) -> str:
        """The text blocks of this turn, joined."""
        return "\n".join(b.text for b in self.content if isinstance(b, TextBlock))


# --- Records ----------------------------------------------------------------------------------


class ToolCallStatus(StrEnum):
    """Life of one committed tool call (its idempotency record)."""

    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class ToolInvocation(BaseModel):
    """The idempotency record of one tool call, keyed by its ``toolUseId``."""

    model_config = ConfigDict(extra="forbid")
    agent_id: str
    tool_use_id: str
    name: str
    input: dict[str, Any]
    step: int = Field(ge=0, description="The plan step that committed this call.")
    status: ToolCallStatus = ToolCallStatus.PENDING
    result: dict[str, Any] | str | None = None
    error: str | None = None
    lease_until: datetime | None = None
    attempts: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None


class LastError(BaseModel):
    """The most recent typed error of an agent."""

    model_config = ConfigDict(extra="forbid")
    error_type: ErrorType
    message: str
    step: int
    at: datetime = Field(default_factory=utcnow)


class Summary(BaseModel):
    """A compaction summary standing in for messages ``0..upto_seq``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    upto_seq: int = Field(ge=0)
    text: str
    created_at: datetime = Field(default_factory=utcnow)


class AgentHeader(BaseModel):
    """The ``META`` item: everything about an agent except its history.

    ``version`` increases on every write of the header and guards optimistic concurrency;
    ``step`` counts committed steps and, with ``next_step``, names the one step event the
    agent is waiting for.
    """

    model_config = ConfigDict(extra="forbid")
    agent_id: str
    agent: str = Field(default="", description="The agent definition's name ('' = default).")
    status: Status = Status.INITIATED
    goal: str
    version: int = 0
    step: int = 0
    next_step: StepKind | None = StepKind.PLAN
    published_step: int = -1
    message_count: int = 0
    pending_tool_use_ids: list[str] = Field(default_factory=list)
    tool_call_count: int = 0
    error_count: int = 0
    consecutive_tool_failures: int = 0
    plan_retries: int = 0
    recovery_attempts: int = 0
    steps_granted_at: int = Field(
        default=0, ge=0, description="The step of the last human instruction: limits count from it."
    )
    usage: TokenUsage = Field(default_factory=TokenUsage)
    last_error: LastError | None = None
    summary_upto_seq: int = -1
    answer: str | None = None
    runtime_version: str
    model_id: str
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    last_plan_at: datetime | None = None
    last_tool_execution_at: datetime | None = None
    ttl: int | None = None
