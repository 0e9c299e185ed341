"""The runtime's public contract: event names and schemas, table keys, env vars, entry points.

This is the one module that both the runtime and the infrastructure (``agentry_platform``)
import, so event patterns, key schemas and handler names can never drift apart.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION: Final = 1

# --- EventBridge ---------------------------------------------------------------------------

#: Source of every event the runtime publishes.
EVENT_SOURCE = "agentry.runtime"
#: Source of the step events the recovery state machine publishes.
RECOVERY_SOURCE = "agentry.recovery"


class DetailType(StrEnum):
    """EventBridge ``detail-type`` of each Agentry event."""

    STEP_REQUESTED = "Agent Step Requested"
    AGENT_ERROR = "Agent Error"
    AGENT_COMPLETED = "Agent Completed"
    AGENT_NEEDS_HUMAN = "Agent Needs Human"


class StepKind(StrEnum):
    """A step of the loop: decide (``plan``) or carry out committed tool calls (``act``)."""

    PLAN = "plan"
    ACT = "act"


class ErrorType(StrEnum):
    """Typed agent errors; the recovery state machine chooses on these, never on messages."""

    MODEL_THROTTLED = "ModelThrottled"
    MODEL_UNAVAILABLE = "ModelUnavailable"
    MODEL_REJECTED = "ModelRejected"
    #: Bedrock refused the model itself: access not granted in this account (AccessDenied), or
    #: the model or profile does not exist here or reached end of life (ResourceNotFound).
    #: Retrying cannot help; a human must grant access or change the stack's model.
    MODEL_NOT_AVAILABLE = "ModelNotAvailable"
    PLANNING_FAILED = "PlanningFailed"
    TOOL_EXECUTION_FAILED = "ToolExecutionFailed"
    STEP_LIMIT_EXCEEDED = "StepLimitExceeded"
    #: The agent's definition is no longer in the stack's config.
    AGENT_NOT_DEFINED = "AgentNotDefined"
    INTERNAL = "InternalError"


#: Errors the recovery state machine retries (with backoff) before asking a human.
RETRYABLE_ERRORS: tuple[ErrorType, ...] = (
    ErrorType.MODEL_THROTTLED,
    ErrorType.MODEL_UNAVAILABLE,
    ErrorType.TOOL_EXECUTION_FAILED,
    ErrorType.INTERNAL,
)


class _Detail(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    schema_version: Literal[1] = Field(default=SCHEMA_VERSION, alias="schemaVersion")
    agent_id: str = Field(alias="agentId", min_length=1, max_length=64)


class StepRequested(_Detail):
    """Detail of ``Agent Step Requested``: run step ``step`` of ``kind`` for the agent."""

    step: int = Field(ge=0)
    kind: StepKind
    reason: str = Field(default="", max_length=256)


class AgentErrorDetail(_Detail):
    """Detail of ``Agent Error``: the step that failed and why, typed."""

    step: int = Field(ge=0)
    error_type: ErrorType = Field(alias="errorType")
    message: str = Field(max_length=2048)
    retryable: bool


class AgentCompleted(_Detail):
    """Detail of ``Agent Completed``: the agent's final answer."""

    step: int = Field(ge=0)
    answer: str = Field(max_length=8192)


class AgentNeedsHuman(_Detail):
    """Detail of ``Agent Needs Human``: an agent stopped and waits for an instruction."""

    step: int = Field(ge=0)
    error_type: ErrorType = Field(alias="errorType")
    message: str = Field(max_length=2048)


DETAIL_MODELS: dict[DetailType, type[_Detail]] = {
    DetailType.STEP_REQUESTED: StepRequested,
    DetailType.AGENT_ERROR: AgentErrorDetail,
    DetailType.AGENT_COMPLETED: AgentCompleted,
    DetailType.AGENT_NEEDS_HUMAN: AgentNeedsHuman,
}

# --- CloudWatch metrics ---------------------------------------------------------------------

#: Namespace and ``service`` dimension of every metric the runtime emits (Powertools EMF).
METRICS_NAMESPACE = "Agentry"
METRICS_SERVICE = "agentry"


class Metric(StrEnum):
    """Metric names the runtime emits; the stack's dashboard and alarms read the same names."""

    STEPS_COMMITTED = "StepsCommitted"
    STEP_CONFLICTS = "StepConflicts"
    #: Dimension ``ErrorType``: one datapoint per typed agent error.
    AGENT_ERRORS = "AgentErrors"
    TOOL_FAILURES = "ToolFailures"
    #: Step records the worker reported as batch item failures (SQS will redeliver them).
    FAILED_RECORDS = "StepRecordsFailed"
    #: Dimension ``Model`` (the model or profile id called): latency, tokens and cost in USD.
    MODEL_LATENCY = "ModelLatency"
    INPUT_TOKENS = "InputTokens"
    OUTPUT_TOKENS = "OutputTokens"
    CACHE_READ_TOKENS = "CacheReadInputTokens"
    CACHE_WRITE_TOKENS = "CacheWriteInputTokens"
    MODEL_COST = "ModelCostUSD"
    #: Agents waiting for a human's approval of a tool call (emitted by the approval flow).
    APPROVALS_WAITING = "ApprovalsWaiting"


class MetricDimension(StrEnum):
    """Dimension names of the runtime's metrics (besides ``service``)."""

    ERROR_TYPE = "ErrorType"
    MODEL = "Model"


# --- DynamoDB single table -----------------------------------------------------------------

#: Partition key and sort key attribute names (both strings).
PARTITION_KEY = "pk"
SORT_KEY = "sk"
#: Attribute that DynamoDB's TTL reads (epoch seconds).
TTL_ATTRIBUTE = "ttl"

META_SK = "META"
MESSAGE_PREFIX = "MSG#"
TOOL_PREFIX = "TOOL#"
SUMMARY_PREFIX = "SUMMARY#"
#: Partition of Powertools' idempotency records (``Idempotency-Key`` on ``POST /agents``).
IDEMPOTENCY_PK = "IDEMPOTENCY#create-agent"


def table_schema(table_name: str) -> dict[str, Any]:
    """``CreateTable`` arguments of the single table the runtime expects (keys, on-demand).

    The platform declares the same keys (``PARTITION_KEY``/``SORT_KEY``, strings); local and
    test tables are created from this so they can never drift from it.
    """
    return {
        "TableName": table_name,
        "KeySchema": [
            {"AttributeName": PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": SORT_KEY, "KeyType": "RANGE"},
        ],
        "AttributeDefinitions": [
            {"AttributeName": PARTITION_KEY, "AttributeType": "S"},
            {"AttributeName": SORT_KEY, "AttributeType": "S"},
        ],
        "BillingMode": "PAY_PER_REQUEST",
    }


def agent_pk(agent_id: str) -> str:
    """Partition key of everything stored for one agent."""
    return f"AGENT#{agent_id}"


def message_sk(seq: int) -> str:
    """Sort key of message ``seq`` (zero-padded so keys sort in conversation order)."""
    return f"{MESSAGE_PREFIX}{seq:08d}"


def tool_sk(tool_use_id: str) -> str:
    """Sort key of the idempotency record of one tool call."""
    return f"{TOOL_PREFIX}{tool_use_id}"


def summary_sk(upto_seq: int) -> str:
    """Sort key of the summary that covers messages ``0..upto_seq``."""
    return f"{SUMMARY_PREFIX}{upto_seq:08d}"


# --- Lambda --------------------------------------------------------------------------------


class Handler(StrEnum):
    """Handler entry points of the functions built from the runtime bundle."""

    API = "agentry_runtime.handlers.api.handler"
    WORKER = "agentry_runtime.handlers.worker.handler"


class Env(StrEnum):
    """Environment variables the runtime reads (``settings.FunctionSettings`` writes them)."""

    TABLE_NAME = "AGENTRY_TABLE_NAME"
    EVENT_BUS_NAME = "AGENTRY_EVENT_BUS_NAME"
    RUNTIME_VERSION = "AGENTRY_RUNTIME_VERSION"
    AGENTS_FILE = "AGENTRY_AGENTS_FILE"
    DEFAULT_AGENT = "AGENTRY_DEFAULT_AGENT"
    #: JSON ``{name: {model, maxSteps, ...}}``: each agent's model and limits, in plain sight.
    AGENTS = "AGENTRY_AGENTS"
    AGENT_TTL_DAYS = "AGENTRY_AGENT_TTL_DAYS"
    MAX_REQUEST_BYTES = "AGENTRY_MAX_REQUEST_BYTES"
    #: The Bedrock client of the worker: read and connect timeout of one attempt, and attempts
    #: of one call (boto3's standard retry mode); the limits check bounds a batch with them.
    MODEL_READ_TIMEOUT_SECONDS = "AGENTRY_MODEL_READ_TIMEOUT_SECONDS"
    MODEL_CONNECT_TIMEOUT_SECONDS = "AGENTRY_MODEL_CONNECT_TIMEOUT_SECONDS"
    MODEL_MAX_ATTEMPTS = "AGENTRY_MODEL_MAX_ATTEMPTS"


#: Where Lambda unpacks the bundle (set by the Lambda runtime; the agents file is relative to it).
TASK_ROOT_VARIABLE = "LAMBDA_TASK_ROOT"
#: Name of the generated agents file at the root of every bundle.
AGENTS_FILE_NAME = "agentry_agents.json"


class HeaderAttr(StrEnum):
    """Attribute names of the ``META`` item that the recovery state machine reads or writes.

    The store writes the header with exactly these names; the state machine definition in
    ``agentry_platform`` builds its ``dynamodb:updateItem`` expressions from them.
    """

    STATUS = "status"
    STEP = "step"
    VERSION = "version"
    NEXT_STEP = "nextStep"
    RECOVERY_ATTEMPTS = "recoveryAttempts"
    UPDATED_AT = "updatedAt"
    LAST_ERROR_TYPE = "lastErrorType"
    PUBLISHED_STEP = "publishedStep"


#: Status the recovery state machine sets when it re-requests a plan, and when it gives up.
RECOVERING_STATUS = "RECOVERING"
NEEDS_HUMAN_STATUS = "NEEDS_HUMAN"
