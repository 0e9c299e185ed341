"""The runtime's public contract: statuses, events, table keys and indexes, env vars, handlers.

This is the one module that both the runtime and the infrastructure (``agentry_platform``)
import, so event patterns, key schemas, the recovery state machine's attribute names and
handler names can never drift apart.

Compatibility across a rolling deploy: functions of two runtime versions share the table and
the bus for a while. Every reader here ignores fields it does not know and accepts any schema
version from ``MIN_READABLE_SCHEMA_VERSION`` on: a release reads the one before it, and a newer
release only ever writes what the one before it can read (it adds fields, never repurposes).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "ACTIVE_SHARDS",
    "AGENTS_FILE_NAME",
    "ANNOUNCE_PREFIX",
    "DETAIL_MODELS",
    "EVENT_SOURCE",
    "FAILURES",
    "HUMAN_WAITS",
    "IDEMPOTENCY_PK",
    "INDEX_KEYS",
    "INDEX_PROJECTION",
    "INFO_SK",
    "MESSAGE_PREFIX",
    "META_SK",
    "MIN_READABLE_SCHEMA_VERSION",
    "PARTITION_KEY",
    "PUBLIC_ERROR_MESSAGES",
    "RETRYABLE_ERRORS",
    "SCHEMA_VERSION",
    "SORT_KEY",
    "SUMMARY_PREFIX",
    "TASK_ROOT_VARIABLE",
    "TERMINAL",
    "TOOL_PREFIX",
    "TTL_ATTRIBUTE",
    "AgentCompleted",
    "AgentErrorDetail",
    "AgentNeedsApproval",
    "AgentNeedsHuman",
    "Detail",
    "DetailType",
    "Env",
    "ErrorType",
    "Handler",
    "HeaderAttr",
    "Index",
    "Status",
    "StepKind",
    "StepRequested",
    "agent_pk",
    "announce_sk",
    "message_sk",
    "summary_sk",
    "table_schema",
    "tool_sk",
]

#: Schema version of the items and events this runtime writes.
SCHEMA_VERSION: Final = 2
#: The oldest schema this runtime reads: the release before it (items without a version are 1).
MIN_READABLE_SCHEMA_VERSION: Final = SCHEMA_VERSION - 1


# --- lifecycle -----------------------------------------------------------------------------


class Status(StrEnum):
    """Lifecycle of an agent (the article's names where they fit, plus recovery and waits)."""

    INITIATED = "INITIATED"
    TOOL_EXECUTION_PENDING = "TOOL_EXECUTION_PENDING"
    TOOL_EXECUTION_SUCCESS = "TOOL_EXECUTION_SUCCESS"
    TOOL_EXECUTION_FAILED = "TOOL_EXECUTION_FAILED"
    PLANNING_FAILED = "PLANNING_FAILED"
    AWAITING_APPROVAL = "AWAITING_APPROVAL"
    RECOVERING = "RECOVERING"
    RESUMED = "RESUMED"
    FOLLOWED_UP = "FOLLOWED_UP"
    COMPLETED = "COMPLETED"
    NEEDS_HUMAN = "NEEDS_HUMAN"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"


#: No step runs for an agent in these statuses (a COMPLETED agent may still get a follow-up).
TERMINAL: frozenset[Status] = frozenset({Status.COMPLETED, Status.CANCELLED, Status.FAILED})
#: The agent waits for a person: nothing of the platform's own should move it.
HUMAN_WAITS: frozenset[Status] = frozenset({Status.NEEDS_HUMAN, Status.AWAITING_APPROVAL})
#: Statuses a step failed in: the recovery state machine acts on agents in these only.
FAILURES: frozenset[Status] = frozenset({Status.PLANNING_FAILED, Status.TOOL_EXECUTION_FAILED})


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
    #: The step's event kept failing until it reached a dead-letter queue, re-driven in vain.
    STEP_DEAD_LETTERED = "StepDeadLettered"
    #: A tool budget or the token cap of the agent's definition is used up.
    BUDGET_EXCEEDED = "BudgetExceeded"
    INTERNAL = "InternalError"


#: Errors the recovery state machine retries (with backoff) before asking a human.
RETRYABLE_ERRORS: tuple[ErrorType, ...] = (
    ErrorType.MODEL_THROTTLED,
    ErrorType.MODEL_UNAVAILABLE,
    ErrorType.TOOL_EXECUTION_FAILED,
    ErrorType.INTERNAL,
)

#: What a caller or an on-call human reads about each error: typed and public (no ARNs, no
#: raw AWS error text; the details are in the function's logs under the agent's id).
PUBLIC_ERROR_MESSAGES: dict[ErrorType, str] = {
    ErrorType.MODEL_THROTTLED: "The model kept throttling requests.",
    ErrorType.MODEL_UNAVAILABLE: "The model was unavailable.",
    ErrorType.MODEL_REJECTED: "The model refused the request (check model access and input).",
    ErrorType.PLANNING_FAILED: "The model's answers kept failing validation.",
    ErrorType.TOOL_EXECUTION_FAILED: "Tool calls kept failing.",
    ErrorType.STEP_LIMIT_EXCEEDED: "The agent used its step budget without finishing.",
    ErrorType.AGENT_NOT_DEFINED: "The agent's definition is no longer deployed.",
    ErrorType.STEP_DEAD_LETTERED: "A step could not be processed and was dead-lettered.",
    ErrorType.BUDGET_EXCEEDED: "The agent used up a tool budget or its token cap.",
    ErrorType.INTERNAL: "An internal error stopped the step.",
}


# --- EventBridge ---------------------------------------------------------------------------

#: Source of every event on the bus; only the platform's announcer may put it.
EVENT_SOURCE = "agentry.runtime"


class DetailType(StrEnum):
    """EventBridge ``detail-type`` of each Agentry event."""

    STEP_REQUESTED = "Agent Step Requested"
    AGENT_ERROR = "Agent Error"
    AGENT_COMPLETED = "Agent Completed"
    AGENT_NEEDS_HUMAN = "Agent Needs Human"
    AGENT_NEEDS_APPROVAL = "Agent Needs Approval"


class Detail(BaseModel):
    """What every event carries: ids and typed fields only (consumers read text from the store).

    Unknown fields are ignored, so a consumer keeps working while a newer announcer adds some.
    """

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    schema_version: int = Field(default=SCHEMA_VERSION, alias="schemaVersion")
    agent_id: str = Field(alias="agentId", min_length=1, max_length=64)
    step: int = Field(ge=0)

    @field_validator("schema_version")
    @classmethod
    def _readable(cls, value: int) -> int:
        if value < MIN_READABLE_SCHEMA_VERSION:
            raise ValueError(f"schema version {value} is older than this runtime reads")
        return value


class StepRequested(Detail):
    """Detail of ``Agent Step Requested``: run step ``step`` of ``kind`` for the agent."""

    kind: StepKind


class AgentErrorDetail(Detail):
    """Detail of ``Agent Error``: the step that failed and its typed error."""

    error_type: ErrorType = Field(alias="errorType")
    retryable: bool


class AgentCompleted(Detail):
    """Detail of ``Agent Completed``: the agent ended its turn (the answer is in the store)."""


class AgentNeedsHuman(Detail):
    """Detail of ``Agent Needs Human``: an agent stopped and waits for an instruction."""

    error_type: ErrorType | None = Field(default=None, alias="errorType")


class AgentNeedsApproval(Detail):
    """Detail of ``Agent Needs Approval``: committed calls wait for a person's decision."""

    tools: list[str] = Field(default_factory=list, description="Names of the tools waiting.")


DETAIL_MODELS: dict[DetailType, type[Detail]] = {
    DetailType.STEP_REQUESTED: StepRequested,
    DetailType.AGENT_ERROR: AgentErrorDetail,
    DetailType.AGENT_COMPLETED: AgentCompleted,
    DetailType.AGENT_NEEDS_HUMAN: AgentNeedsHuman,
    DetailType.AGENT_NEEDS_APPROVAL: AgentNeedsApproval,
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
INFO_SK = "INFO"
MESSAGE_PREFIX = "MSG#"
TOOL_PREFIX = "TOOL#"
SUMMARY_PREFIX = "SUMMARY#"
#: The announcer's record that a header version's lifecycle event went out (deduplication).
ANNOUNCE_PREFIX = "ANNOUNCE#"
#: Partition of Powertools' idempotency records (``Idempotency-Key`` on ``POST /agents``).
IDEMPOTENCY_PK = "IDEMPOTENCY#create-agent"


class Index(StrEnum):
    """Global secondary indexes of the table."""

    #: Sparse: only headers of agents that wait for the platform (the reconciler's work list).
    ACTIVE = "active"
    #: Every agent by its owner, newest first (``GET /agents``).
    OWNER = "owner"
    #: Sparse: an owner's agents that have not ended (the per-caller cap counts them).
    OWNER_ACTIVE = "ownerActive"


class HeaderAttr(StrEnum):
    """Attribute names of the ``META`` item that the recovery state machine, the reconciler's
    index and the announcer read or write. The store writes the header with exactly these."""

    SCHEMA_VERSION = "schemaVersion"
    STATUS = "status"
    STEP = "step"
    VERSION = "version"
    NEXT_STEP = "nextStep"
    NONCE = "nonce"
    RUNNER_UNTIL = "runnerUntil"
    RECOVERY_ATTEMPTS = "recoveryAttempts"
    UPDATED_AT = "updatedAt"
    LAST_ERROR_TYPE = "lastErrorType"
    LAST_ERROR_STEP = "lastErrorStep"
    #: The agent's shard, fixed at creation; ``ACTIVE_SHARD`` copies it while the agent waits
    #: for the platform, which keeps the ``active`` index sparse.
    SHARD = "shard"
    ACTIVE_SHARD = "activeShard"
    OWNER = "owner"
    #: The owner again, while the agent has not ended (keeps ``ownerActive`` sparse).
    ACTIVE_OWNER = "activeOwner"
    CREATED_AT = "createdAt"


#: Shards of the ``active`` index: agents spread over this many partitions of the index.
ACTIVE_SHARDS = 8


def table_schema(table_name: str) -> dict[str, Any]:
    """``CreateTable`` arguments of the single table the runtime expects.

    The platform declares the same keys, indexes and stream; local and test tables are created
    from this so they can never drift from it.
    """
    return {
        "TableName": table_name,
        "KeySchema": [
            {"AttributeName": PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": SORT_KEY, "KeyType": "RANGE"},
        ],
        "AttributeDefinitions": [
            {"AttributeName": name, "AttributeType": "S"}
            for name in dict.fromkeys(
                [PARTITION_KEY, SORT_KEY, *(key for _, h, r in INDEX_KEYS for key in (h, r))]
            )
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": index.value,
                "KeySchema": [
                    {"AttributeName": hash_key, "KeyType": "HASH"},
                    {"AttributeName": range_key, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": INDEX_PROJECTION},
            }
            for index, hash_key, range_key in INDEX_KEYS
        ],
        "BillingMode": "PAY_PER_REQUEST",
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    }


#: ``(index, hash key, range key)`` of each global secondary index. No key changes after it is
#: set (an agent's shard, owner, creation time and id are fixed), and the indexes project keys
#: only: a header commit writes an index only when the agent enters or leaves it, never on a
#: step. (An update that changes no key or projected attribute of an index does not write it;
#: a changed key costs a delete and a put. See "Write capacity units" in
#: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html.) Readers fetch
#: the headers the keys point at.
INDEX_KEYS: tuple[tuple[Index, str, str], ...] = (
    (Index.ACTIVE, HeaderAttr.ACTIVE_SHARD.value, PARTITION_KEY),
    (Index.OWNER, HeaderAttr.OWNER.value, HeaderAttr.CREATED_AT.value),
    (Index.OWNER_ACTIVE, HeaderAttr.ACTIVE_OWNER.value, PARTITION_KEY),
)
#: What every index projects.
INDEX_PROJECTION = "KEYS_ONLY"


def agent_pk(agent_id: str) -> str:
    """Partition key of everything stored for one agent."""
    return f"AGENT#{agent_id}"


def message_sk(seq: int) -> str:
    """Sort key of message ``seq`` (zero-padded so keys sort in conversation order)."""
    return f"{MESSAGE_PREFIX}{seq:08d}"


def tool_sk(turn_seq: int, tool_use_id: str) -> str:
    """Sort key of the claim of one tool call of the assistant turn ``turn_seq``.

    The turn is part of the key, so a model that reuses a ``toolUseId`` of an earlier turn
    never collides with that turn's record.
    """
    return f"{TOOL_PREFIX}{turn_seq:08d}#{tool_use_id}"


def announce_sk(version: int, nonce: int) -> str:
    """Sort key of the announcement record of header ``version`` (as poked ``nonce`` times)."""
    return f"{ANNOUNCE_PREFIX}{version:010d}#{nonce:06d}"


def summary_sk(upto_seq: int) -> str:
    """Sort key of the summary that covers messages ``0..upto_seq``."""
    return f"{SUMMARY_PREFIX}{upto_seq:08d}"


# --- Lambda --------------------------------------------------------------------------------


class Handler(StrEnum):
    """Handler entry points of the functions built from the runtime bundle."""

    API = "agentry_runtime.handlers.api.handler"
    WORKER = "agentry_runtime.handlers.worker.handler"
    ANNOUNCER = "agentry_runtime.handlers.announcer.handler"
    RECONCILER = "agentry_runtime.handlers.reconciler.handler"


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
    #: JSON of the reconciler's settings (stale-after, re-drive budget, dead-letter queue).
    RECONCILER = "AGENTRY_RECONCILER"
    #: JSON ``{operators, maxActiveAgentsPerCaller, approvalWindowSeconds}``.
    ACCESS = "AGENTRY_ACCESS"


#: Where Lambda unpacks the bundle (set by the Lambda runtime; the agents file is relative to it).
TASK_ROOT_VARIABLE = "LAMBDA_TASK_ROOT"
#: Name of the generated agents file at the root of every bundle.
AGENTS_FILE_NAME = "agentry_agents.json"
