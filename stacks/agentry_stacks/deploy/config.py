"""Typed environment config: one validated ``EnvironmentConfig`` per Pulumi stack.

The config lives in ``Pulumi.<stack>.yaml`` under the project's namespace (``agentry:<key>``)
plus ``aws:region``. The same validation runs whether the values come from the YAML file (the
offline plan, tests) or from ``pulumi.Config`` under ``pulumi up``, where the CLI hands every
non-string value to the program as a JSON string. A bad value fails with its key path and the
reason, one line per problem, before any resource is declared.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import Any, Literal, NamedTuple

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from agentry_platform.lib.model_catalog import (
    ModelCatalog,
    ProfileKind,
    application_profile_parts,
    load_catalog,
    profile_kind,
    system_profile_model,
)
from agentry_runtime.agents import TOOLSET_PATTERN
from agentry_runtime.pricing import ModelPrice

__all__ = [
    "PROJECT",
    "AgentDefinition",
    "AgentSettings",
    "AnnouncerSettings",
    "ApiSettings",
    "ApprovalSettings",
    "ConfigError",
    "EnvironmentConfig",
    "FunctionSettings",
    "InferenceProfile",
    "ModelClientSettings",
    "Problem",
    "ReconcilerConfig",
    "RecoverySettings",
    "ResolvedProfile",
    "WorkerSettings",
    "load_stack_config",
    "project_root",
    "pulumi_config_values",
    "read_stack_file",
]

#: The Pulumi project name, and so the namespace of every stack config key.
PROJECT = "agentry"
_NAMESPACE = f"{PROJECT}:"
_REGION_KEY = "aws:region"

#: Retention values CloudWatch Logs accepts (``PutRetentionPolicy``), in days.
CLOUDWATCH_RETENTION_DAYS: frozenset[int] = frozenset(
    {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557}
    | {2922, 3288, 3653}
)
#: Tag keys the stack sets itself; config ``tags`` may not override them.
RESERVED_TAG_KEYS: frozenset[str] = frozenset({"Project", "Environment", "ManagedBy"})

_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d{1,2}$")
# provider.model-name[-version][:revision], e.g. anthropic.claude-haiku-4-5-20251001-v1:0
_MODEL_ID = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9][a-zA-Z0-9._-]*(:[a-zA-Z0-9._-]+)*$")
# A deliberately plain shape check: full RFC 5322 parsing (email-validator) is more than an
# SNS subscription endpoint needs, and SNS itself confirms the address.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")


class Problem(NamedTuple):
    """One config problem: the key path (``agentry:worker.batchSize``) and the reason."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


class ConfigError(Exception):
    """A stack's config is missing or invalid; ``str()`` gives one line per problem."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


def _cross_field(problems: list[Problem]) -> PydanticCustomError:
    """Carry cross-field problems (which name their own paths) through pydantic's validation."""
    return PydanticCustomError(
        "agentry_config",
        "{summary}",
        {"summary": "; ".join(map(str, problems)), "problems": tuple(problems)},
    )


class _Settings(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        validate_by_alias=True,
        validate_by_name=True,
        serialize_by_alias=True,
    )


def _model_id_problem(value: str) -> str | None:
    if "*" in value or "?" in value:
        return "wildcards are not allowed: name a concrete model id"
    if not _MODEL_ID.match(value):
        return (
            "not a Bedrock foundation model id (expected provider.model-name, "
            "e.g. anthropic.claude-haiku-4-5-20251001-v1:0)"
        )
    return None


def _check_region(value: str) -> str:
    if not _REGION.match(value):
        raise ValueError(f"{value!r} is not an AWS region name (e.g. us-east-1)")
    return value


class InferenceProfile(_Settings):
    """An inference profile the worker may invoke: a system profile (geographic ``us.``,
    ``eu.``, ``apac.``...; or ``global.``) by id, or an application profile by its ARN.

    A system profile's model follows from its id, and its regions come from the shipped model
    catalog; ``regions`` overrides them, and is required for a profile the catalog does not know
    and for every application profile (with its ``model``).
    """

    id: str = Field(
        description=(
            "Profile id (us.anthropic.claude-haiku-4-5-20251001-v1:0, global.<model id>) or the "
            "ARN of an application inference profile."
        )
    )
    model: str | None = Field(
        default=None,
        description="The foundation model behind the profile (required for an application one).",
    )
    regions: list[str] | None = Field(
        default=None,
        min_length=1,
        description=(
            "Destination regions (for a global profile: the source regions it can be called "
            "from); default: the model catalog's."
        ),
    )

    @field_validator("model")
    @classmethod
    def _model_is_concrete(cls, value: str | None) -> str | None:
        problem = _model_id_problem(value) if value is not None else None
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("id")
    @classmethod
    def _id_is_concrete(cls, value: str) -> str:
        if "*" in value or "?" in value:
            raise ValueError("wildcards are not allowed: name a concrete inference profile id")
        kind = profile_kind(value)
        if kind is None or (
            kind != ProfileKind.APPLICATION and _model_id_problem(system_profile_model(value) or "")
        ):
            raise ValueError(
                f"{value!r} is not an inference profile id (expected <geo>.<model id> such as "
                "us.anthropic.claude-haiku-4-5-20251001-v1:0, global.<model id>, or an "
                "arn:aws:bedrock:<region>:<account>:application-inference-profile/<id>)"
            )
        return value

    @field_validator("regions")
    @classmethod
    def _regions_are_regions(cls, value: list[str] | None) -> list[str] | None:
        for region in value or []:
            _check_region(region)
        if value is not None and len(set(value)) != len(value):
            raise ValueError("regions must not repeat")
        return value

    @model_validator(mode="after")
    def _id_names_its_model(self) -> InferenceProfile:
        if self.kind == ProfileKind.APPLICATION:
            if self.model is None:
                raise _cross_field(
                    [Problem("model", "an application inference profile needs its model")]
                )
            if self.regions is None:
                raise _cross_field(
                    [
                        Problem(
                            "regions",
                            "an application inference profile needs the regions of the model or "
                            "system profile it was created from",
                        )
                    ]
                )
        elif self.model is not None and system_profile_model(self.id) != self.model:
            raise _cross_field(
                [Problem("model", f"profile {self.id!r} does not route to model {self.model!r}")]
            )
        return self

    @property
    def kind(self) -> ProfileKind:
        """Geographic, global or application (from the id)."""
        kind = profile_kind(self.id)
        assert kind is not None  # the id validator refused anything else
        return kind

    @property
    def foundation_model(self) -> str:
        """The foundation model the profile routes to."""
        return self.model or system_profile_model(self.id) or ""


class ResolvedProfile(NamedTuple):
    """An inference profile with everything the IAM grant needs, and where its regions came
    from (``catalog`` or ``config``)."""

    id: str
    kind: ProfileKind
    model: str
    regions: tuple[str, ...]
    source: Literal["catalog", "config"]


class ModelClientSettings(_Settings):
    """The worker's Bedrock client: per-attempt timeouts and attempts of one model call."""

    read_timeout_seconds: int = Field(
        alias="readTimeoutSeconds",
        ge=1,
        le=900,
        description="Read timeout of one attempt (Converse answers when the whole turn is done).",
    )
    connect_timeout_seconds: int = Field(
        default=5,
        alias="connectTimeoutSeconds",
        ge=1,
        le=60,
        description="Connect timeout of one attempt.",
    )
    max_attempts: int = Field(
        alias="maxAttempts",
        ge=1,
        le=10,
        description="Attempts of one call, the first included (boto3 standard retry mode).",
    )


class FunctionSettings(_Settings):
    """Sizing of one Lambda function."""

    memory_mb: int = Field(alias="memoryMb", ge=128, le=10240, description="Memory in MB.")
    timeout_seconds: int = Field(
        alias="timeoutSeconds", ge=1, le=900, description="Function timeout in seconds."
    )
    reserved_concurrency: int | None = Field(
        default=None,
        alias="reservedConcurrency",
        ge=1,
        description="Reserved concurrent executions; null leaves the function unreserved.",
    )


class WorkerSettings(FunctionSettings):
    """The worker function plus its SQS event source mapping."""

    batch_size: int = Field(
        alias="batchSize", ge=1, le=10, description="Step events handed to one invocation."
    )
    max_concurrency: int = Field(
        alias="maxConcurrency",
        ge=2,
        le=1000,
        description="SQS event source maximum concurrency (bounds Bedrock pressure).",
    )

    @model_validator(mode="after")
    def _concurrency_fits_reservation(self) -> WorkerSettings:
        # An event source allowed more concurrency than the function has reserved gets throttled
        # and bounces messages back to the queue, burning receive counts towards the DLQ.
        if self.reserved_concurrency is not None and self.max_concurrency > (
            self.reserved_concurrency
        ):
            raise _cross_field(
                [
                    Problem(
                        "maxConcurrency",
                        f"{self.max_concurrency} exceeds reservedConcurrency "
                        f"{self.reserved_concurrency}",
                    )
                ]
            )
        return self


class ApiSettings(FunctionSettings):
    """The api function plus the HTTP API stage's throttling."""

    timeout_seconds: int = Field(
        alias="timeoutSeconds",
        ge=1,
        le=30,
        description="Function timeout in seconds (HTTP API integrations stop waiting at 30 s).",
    )
    throttle_burst: int = Field(
        alias="throttleBurst", ge=1, le=10000, description="Stage burst limit (requests)."
    )
    throttle_rate: float = Field(
        alias="throttleRate", gt=0, le=10000, description="Stage steady rate (requests/second)."
    )


class AnnouncerSettings(FunctionSettings):
    """The announcer function and its DynamoDB stream event source."""

    memory_mb: int = Field(
        default=256, alias="memoryMb", ge=128, le=10240, description="Memory in MB."
    )
    timeout_seconds: int = Field(
        default=60,
        alias="timeoutSeconds",
        ge=10,
        le=900,
        description="Function timeout in seconds.",
    )
    batch_size: int = Field(
        default=100, alias="batchSize", ge=1, le=1000, description="Stream records per invocation."
    )
    max_record_age_seconds: int = Field(
        default=6 * 3600,
        alias="maxRecordAgeSeconds",
        ge=60,
        le=86_400,
        description="A record older than this goes to the on-failure queue (the reconciler's).",
    )
    max_retries: int = Field(
        default=10, alias="maxRetries", ge=0, le=10_000, description="Retries of a failed batch."
    )


class ReconcilerConfig(FunctionSettings):
    """The reconciler function and its schedule."""

    memory_mb: int = Field(
        default=256, alias="memoryMb", ge=128, le=10240, description="Memory in MB."
    )
    timeout_seconds: int = Field(
        default=120,
        alias="timeoutSeconds",
        ge=10,
        le=900,
        description="Function timeout in seconds.",
    )
    schedule_minutes: int = Field(
        default=5, alias="scheduleMinutes", ge=1, le=1440, description="How often it runs."
    )
    stale_after_seconds: int = Field(
        default=900,
        alias="staleAfterSeconds",
        ge=60,
        le=86_400,
        description="An agent with no progress this long is announced again.",
    )
    max_redrives: int = Field(
        default=3,
        alias="maxRedrives",
        ge=0,
        le=20,
        description="Re-drives of a dead-lettered step before the agent goes to a human.",
    )


class ApprovalSettings(_Settings):
    """How long a person has to decide on calls that need approval."""

    window_seconds: int = Field(
        default=86_400,
        alias="windowSeconds",
        ge=60,
        le=30 * 86_400,
        description="Unanswered approvals count as rejected after this.",
    )


class RecoverySettings(_Settings):
    """How the recovery state machine retries a failed agent before asking a human."""

    max_attempts: int = Field(
        alias="maxAttempts", ge=0, le=10, description="Recovery attempts before NEEDS_HUMAN."
    )
    delay_seconds: int = Field(
        alias="delaySeconds", ge=1, le=3600, description="Wait before the first re-publish."
    )
    backoff_rate: float = Field(
        default=2.0, alias="backoffRate", ge=1.0, le=10.0, description="Delay multiplier."
    )


class AgentSettings(_Settings):
    """Stack-wide defaults of every agent definition (``agentry:agent``), plus the TTL."""

    max_steps: int = Field(alias="maxSteps", ge=1, le=500, description="Steps per agent.")
    token_budget: int = Field(
        alias="tokenBudget", ge=1000, le=1_000_000, description="Prompt tokens before compaction."
    )
    max_tool_failures: int = Field(
        alias="maxToolFailures", ge=0, le=50, description="Failed tool calls before an error."
    )
    max_plan_retries: int = Field(
        alias="maxPlanRetries", ge=0, le=10, description="Invalid model answers before an error."
    )
    tool_timeout_seconds: int = Field(
        alias="toolTimeoutSeconds", ge=1, le=900, description="Timeout of one tool call."
    )
    ttl_days: int = Field(
        alias="ttlDays", ge=1, le=3650, description="Days an agent's items are kept (TTL)."
    )
    max_output_tokens: int = Field(
        default=2048, alias="maxOutputTokens", ge=1, le=64_000, description="Per model call."
    )
    temperature: float = Field(default=0.2, ge=0.0, le=1.0, description="Sampling temperature.")
    prompt_caching: bool = Field(
        default=True, alias="promptCaching", description="Mark the static prefix as cacheable."
    )


#: Keys of an agent definition that override ``agentry:agent`` for that agent.
OVERRIDABLE = (
    "max_steps",
    "token_budget",
    "max_output_tokens",
    "temperature",
    "tool_timeout_seconds",
    "max_tool_failures",
    "max_plan_retries",
    "prompt_caching",
)


class AgentDefinition(_Settings):
    """One agent of ``agentry:agents``: its prompt, toolsets, model and limits."""

    name: str = Field(
        pattern=r"^[a-z][a-z0-9-]{0,31}$", description="Name callers use in POST /agents."
    )
    description: str = Field(min_length=1, max_length=1024, description="What the agent does.")
    system_prompt: str | None = Field(
        default=None, alias="systemPrompt", min_length=1, description="The agent's instructions."
    )
    system_prompt_file: str | None = Field(
        default=None,
        alias="systemPromptFile",
        min_length=1,
        description="A file holding the instructions, relative to the project.",
    )
    tools: list[str] = Field(
        min_length=1, description="Toolsets as module:attribute paths (each a ToolRegistry)."
    )
    model: str | None = Field(
        default=None, description="Model or inference-profile id (default: agentry:defaultModel)."
    )
    max_steps: int | None = Field(
        default=None,
        alias="maxSteps",
        ge=1,
        le=500,
        description="Overrides agentry:agent's value for this agent.",
    )
    token_budget: int | None = Field(
        default=None,
        alias="tokenBudget",
        ge=1000,
        le=1_000_000,
        description="Overrides agentry:agent's value for this agent.",
    )
    max_output_tokens: int | None = Field(
        default=None,
        alias="maxOutputTokens",
        ge=1,
        le=64_000,
        description="Overrides agentry:agent's value for this agent.",
    )
    temperature: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Overrides agentry:agent's value for this agent."
    )
    tool_timeout_seconds: int | None = Field(
        default=None,
        alias="toolTimeoutSeconds",
        ge=1,
        le=900,
        description="Overrides agentry:agent's value for this agent.",
    )
    max_tool_failures: int | None = Field(
        default=None,
        alias="maxToolFailures",
        ge=0,
        le=50,
        description="Overrides agentry:agent's value for this agent.",
    )
    max_plan_retries: int | None = Field(
        default=None,
        alias="maxPlanRetries",
        ge=0,
        le=10,
        description="Overrides agentry:agent's value for this agent.",
    )
    prompt_caching: bool | None = Field(
        default=None,
        alias="promptCaching",
        description="Overrides agentry:agent's value for this agent.",
    )
    tool_budgets: dict[str, int] = Field(
        default_factory=dict,
        alias="toolBudgets",
        description="Most calls of each named tool over an agent's life (resumes included).",
    )
    max_total_tokens: int | None = Field(
        default=None,
        alias="maxTotalTokens",
        ge=1000,
        le=100_000_000,
        description="Most tokens (in and out) over an agent's life; then BudgetExceeded.",
    )
    approvals: dict[str, bool] = Field(
        default_factory=dict,
        description="Per tool: whether a person approves each call (overrides the toolset).",
    )

    @field_validator("tool_budgets")
    @classmethod
    def _budgets_are_counts(cls, value: dict[str, int]) -> dict[str, int]:
        problems = [
            Problem(f".{tool}", f"a budget is 0 to 10000 calls, got {count}")
            for tool, count in value.items()
            if not 0 <= count <= 10_000
        ]
        if problems:
            raise _cross_field(problems)
        return value

    @model_validator(mode="after")
    def _one_prompt(self) -> AgentDefinition:
        if (self.system_prompt is None) == (self.system_prompt_file is None):
            raise _cross_field(
                [Problem("systemPrompt", "give exactly one of systemPrompt or systemPromptFile")]
            )
        return self

    @field_validator("tools")
    @classmethod
    def _tools_are_paths(cls, value: list[str]) -> list[str]:
        problems = [
            Problem(f"[{index}]", f"{path!r} is not module:attribute")
            for index, path in enumerate(value)
            if not re.match(TOOLSET_PATTERN, path)
        ]
        if problems:
            raise _cross_field(problems)
        if len(set(value)) != len(value):
            raise ValueError("a toolset is named twice")
        return value


class EnvironmentConfig(_Settings):
    """The validated config of one stack (``Pulumi.<stack>.yaml``)."""

    stack: str = Field(min_length=1, description="The stack name (not a config key).")
    project_dir: Path = Field(
        default_factory=Path.cwd, description="The project root (not a config key)."
    )
    today: date = Field(
        default_factory=date.today,
        description="The date model lifecycles are judged on (not a config key).",
    )
    region: str = Field(alias=_REGION_KEY, description="AWS region of the stack (aws:region).")
    models: list[str] = Field(
        default_factory=list,
        description=(
            "Foundation model ids the worker may invoke directly in the stack's region (no "
            "wildcards); models used through a profile need not be listed."
        ),
    )
    inference_profiles: list[InferenceProfile] = Field(
        default_factory=list,
        alias="inferenceProfiles",
        description="Inference profiles (geographic, global, application) the worker may invoke.",
    )
    default_model: str = Field(
        alias="defaultModel", description="Model or profile id the agents use by default."
    )
    model_prices: dict[str, ModelPrice] = Field(
        default_factory=dict,
        alias="modelPrices",
        description="USD per million tokens by model or profile id: one for every id agents use.",
    )
    model_client: ModelClientSettings = Field(
        alias="modelClient", description="Timeouts and attempts of the worker's Bedrock client."
    )
    lambda_architecture: Literal["arm64", "x86_64"] = Field(
        default="arm64", alias="lambdaArchitecture", description="Lambda instruction set."
    )
    lambda_runtime: Literal["python3.12", "python3.13"] = Field(
        default="python3.12", alias="lambdaRuntime", description="Lambda Python runtime."
    )
    log_retention_days: int = Field(
        alias="logRetentionDays", description="CloudWatch Logs retention of every log group."
    )
    tracing_subsegments: bool = Field(
        default=False,
        alias="tracingSubsegments",
        description="Trace subsegments (methods, AWS calls) with the X-Ray SDK; Lambda traces "
        "each invocation either way, and the SDK costs every cold start its import.",
    )
    worker: WorkerSettings = Field(description="The worker function and its queue consumer.")
    api: ApiSettings = Field(description="The api function and the HTTP API throttling.")
    max_receive_count: int = Field(
        alias="maxReceiveCount",
        ge=1,
        le=1000,
        description="Receives of a step event before it moves to the dead-letter queue.",
    )
    point_in_time_recovery: bool = Field(
        alias="pointInTimeRecovery", description="DynamoDB point-in-time recovery on the table."
    )
    deletion_protection: bool = Field(
        alias="deletionProtection", description="Deletion protection on the table."
    )
    customer_managed_key: bool = Field(
        alias="customerManagedKey",
        description="Encrypt table, queues, topic and logs with a stack-owned KMS key.",
    )
    human_emails: list[str] = Field(
        default_factory=list,
        alias="humanEmails",
        description="Subscribed to the human-intervention topic.",
    )
    alarm_emails: list[str] = Field(
        default_factory=list, alias="alarmEmails", description="Subscribed to the alarm topic."
    )
    recovery: RecoverySettings = Field(description="The recovery state machine's retries.")
    announcer: AnnouncerSettings = Field(
        default_factory=AnnouncerSettings, description="The announcer and its stream source."
    )
    reconciler: ReconcilerConfig = Field(
        default_factory=ReconcilerConfig, description="The reconciler and its schedule."
    )
    approvals: ApprovalSettings = Field(
        default_factory=ApprovalSettings, description="Approval of tool calls by a person."
    )
    operators: list[str] = Field(
        default_factory=list,
        description="IAM role ARNs that may act on any agent (matched by account and name).",
    )
    max_active_agents_per_caller: int = Field(
        default=100,
        alias="maxActiveAgentsPerCaller",
        ge=1,
        le=100_000,
        description="Unfinished agents one caller may have; POST /agents answers 429 beyond.",
    )
    agent: AgentSettings = Field(description="Stack-wide defaults of every agent definition.")
    agents: list[AgentDefinition] = Field(
        min_length=1, description="The agents this stack runs (prompt, toolsets, model, limits)."
    )
    default_agent: str | None = Field(
        default=None,
        alias="defaultAgent",
        description="The agent POST /agents starts when the caller names none.",
    )
    event_archive_days: int = Field(
        alias="eventArchiveDays",
        ge=0,
        le=3650,
        description="Days the event archive keeps events for replay (0 keeps them forever).",
    )
    tags: dict[str, str] = Field(
        default_factory=dict, description="Extra tags on every taggable resource."
    )

    @field_validator("stack")
    @classmethod
    def _stack_is_a_name(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9-]{0,19}", value):
            raise ValueError("stack names are lower-case letters, digits and '-', at most 20")
        return value

    @field_validator("region")
    @classmethod
    def _region_is_a_region(cls, value: str) -> str:
        return _check_region(value)

    @field_validator("models")
    @classmethod
    def _models_are_concrete(cls, value: list[str]) -> list[str]:
        problems = [
            Problem(f"[{index}]", f"{model!r}: {problem}")
            for index, model in enumerate(value)
            if (problem := _model_id_problem(model))
        ]
        if problems:
            raise _cross_field(problems)
        if len(set(value)) != len(value):
            raise ValueError("model ids must not repeat")
        return value

    @field_validator("log_retention_days")
    @classmethod
    def _retention_is_allowed(cls, value: int) -> int:
        if value not in CLOUDWATCH_RETENTION_DAYS:
            allowed = ", ".join(map(str, sorted(CLOUDWATCH_RETENTION_DAYS)))
            raise ValueError(f"{value} is not a CloudWatch Logs retention (one of {allowed})")
        return value

    @field_validator("operators")
    @classmethod
    def _operators_are_roles(cls, value: list[str]) -> list[str]:
        problems = [
            Problem(f"[{index}]", f"{arn!r} is not an IAM role ARN (arn:aws:iam::<account>:role/…)")
            for index, arn in enumerate(value)
            if not _ROLE_ARN.match(arn)
        ]
        if problems:
            raise _cross_field(problems)
        return value

    @field_validator("human_emails", "alarm_emails")
    @classmethod
    def _emails_look_like_emails(cls, value: list[str]) -> list[str]:
        problems = [
            Problem(f"[{index}]", f"{email!r} is not an email address")
            for index, email in enumerate(value)
            if not _EMAIL.match(email)
        ]
        if problems:
            raise _cross_field(problems)
        return value

    @field_validator("tags")
    @classmethod
    def _tags_are_valid(cls, value: dict[str, str]) -> dict[str, str]:
        problems = []
        for key, tag in value.items():
            if key in RESERVED_TAG_KEYS:
                problems.append(Problem(f".{key}", "is set by the stack and cannot be overridden"))
            elif key.lower().startswith("aws:") or not 1 <= len(key) <= 128:
                problems.append(Problem(f".{key}", "tag keys are 1-128 chars, not 'aws:'"))
            elif len(tag) > 256:
                problems.append(Problem(f".{key}", "tag values are at most 256 characters"))
        if problems:
            raise _cross_field(problems)
        return value

    @model_validator(mode="after")
    def _references_resolve(self) -> EnvironmentConfig:
        problems = self._model_problems()
        profile_ids = [profile.id for profile in self.inference_profiles]
        if len(set(profile_ids)) != len(profile_ids):
            problems.append(Problem("inferenceProfiles", "profile ids must not repeat"))
        if self.default_model not in {*self.models, *profile_ids}:
            problems.append(
                Problem(
                    "defaultModel",
                    f"{self.default_model!r} is neither in agentry:models "
                    "nor an agentry:inferenceProfiles id",
                )
            )
        if self.agent.tool_timeout_seconds >= self.worker.timeout_seconds:
            problems.append(
                Problem(
                    "agent.toolTimeoutSeconds",
                    f"{self.agent.tool_timeout_seconds} must be below "
                    f"worker.timeoutSeconds ({self.worker.timeout_seconds})",
                )
            )
        problems.extend(self._agent_problems({*self.models, *profile_ids}))
        if problems:
            raise _cross_field(problems)
        return self

    def _model_problems(self, catalog: ModelCatalog | None = None) -> list[Problem]:
        """Direct models and profiles against the catalog: end of life, regions, the ARN's."""
        catalog = catalog or load_catalog()
        problems: list[Problem] = []
        if not self.models and not self.inference_profiles:
            problems.append(
                Problem("models", "name at least one model or agentry:inferenceProfiles entry")
            )
        for index, model in enumerate(self.models):
            error = catalog.lifecycle(model, self.today).error
            if error:
                problems.append(Problem(f"models[{index}]", error))
        checked = f"the Bedrock model catalog (checked {catalog.checked_on.isoformat()})"
        for index, profile in enumerate(self.inference_profiles):
            path = f"inferenceProfiles[{index}]"
            error = catalog.lifecycle(profile.foundation_model, self.today).error
            if error:
                problems.append(Problem(f"{path}.id", error))
            if profile.kind == ProfileKind.APPLICATION:
                parts = application_profile_parts(profile.id)
                if parts is not None and parts[0] != self.region:
                    problems.append(
                        Problem(
                            f"{path}.id",
                            f"the application profile is in {parts[0]}, not the stack region "
                            f"{self.region}",
                        )
                    )
            regions = profile.regions or catalog.profile_regions(profile.id)
            if regions is None:
                problems.append(
                    Problem(
                        f"{path}.regions",
                        f"{profile.id!r} is not in {checked}: give its regions (destination "
                        "regions; for a global profile, the source regions it can be called "
                        "from)",
                    )
                )
            elif self.region not in regions:
                what = "source" if profile.kind == ProfileKind.GLOBAL else "destination"
                problems.append(
                    Problem(
                        f"{path}.regions",
                        f"the stack region {self.region} is not a {what} region of "
                        f"{profile.id} ({', '.join(regions)})",
                    )
                )
        return problems

    def resolved_profiles(self, catalog: ModelCatalog | None = None) -> list[ResolvedProfile]:
        """Every inference profile with its kind, model and regions (config over catalog)."""
        catalog = catalog or load_catalog()
        resolved = []
        for profile in self.inference_profiles:
            regions = profile.regions or catalog.profile_regions(profile.id) or []
            resolved.append(
                ResolvedProfile(
                    id=profile.id,
                    kind=profile.kind,
                    model=profile.foundation_model,
                    regions=tuple(regions),
                    source="config" if profile.regions else "catalog",
                )
            )
        return resolved

    def warnings(self, catalog: ModelCatalog | None = None) -> list[Problem]:
        """What is valid but deserves attention: Legacy models, models the catalog does not
        know, profile regions that differ from the catalog's."""
        catalog = catalog or load_catalog()
        found: list[Problem] = []
        for index, model in enumerate(self.models):
            warning = catalog.lifecycle(model, self.today).warning
            if warning:
                found.append(Problem(f"{_NAMESPACE}models[{index}]", warning))
        for index, profile in enumerate(self.inference_profiles):
            path = f"{_NAMESPACE}inferenceProfiles[{index}]"
            warning = catalog.lifecycle(profile.foundation_model, self.today).warning
            if warning:
                found.append(Problem(f"{path}.id", warning))
            known = catalog.profile_regions(profile.id)
            if (
                profile.regions is not None
                and known is not None
                and sorted(profile.regions) != sorted(known)
            ):
                found.append(
                    Problem(
                        f"{path}.regions",
                        f"differ from the model catalog's ({', '.join(known)}): the config's "
                        "are used",
                    )
                )
        return found

    def _agent_problems(self, allowed_models: set[str]) -> list[Problem]:
        problems: list[Problem] = []
        seen: dict[str, int] = {}
        for index, agent in enumerate(self.agents):
            path = f"agents[{index}]"
            if agent.name in seen:
                problems.append(
                    Problem(f"{path}.name", f"{agent.name!r} is also agents[{seen[agent.name]}]")
                )
            seen.setdefault(agent.name, index)
            model = agent.model or self.default_model
            if model not in allowed_models:
                problems.append(
                    Problem(
                        f"{path}.model",
                        f"{model!r} is neither in agentry:models nor an "
                        "agentry:inferenceProfiles id",
                    )
                )
            elif model not in self.model_prices:
                problems.append(
                    Problem(
                        "modelPrices",
                        f"no price for {model!r} (the model of {path}): add "
                        f"{model}: {{inputPerMillion, outputPerMillion, cacheReadPerMillion, "
                        "cacheWritePerMillion}} in USD",
                    )
                )
            timeout = self.limits(agent)["tool_timeout_seconds"]
            if timeout >= self.worker.timeout_seconds:
                problems.append(
                    Problem(
                        f"{path}.toolTimeoutSeconds",
                        f"{timeout} must be below worker.timeoutSeconds "
                        f"({self.worker.timeout_seconds})",
                    )
                )
        if self.default_agent is None and len(self.agents) > 1:
            problems.append(Problem("defaultAgent", "required when there is more than one agent"))
        elif self.default_agent is not None and self.default_agent not in seen:
            problems.append(
                Problem(
                    "defaultAgent",
                    f"{self.default_agent!r} is not the name of an agentry:agents entry "
                    f"({', '.join(sorted(seen))})",
                )
            )
        return problems

    @property
    def default_agent_name(self) -> str:
        """The agent POST /agents starts by default (the only one, if there is one)."""
        return self.default_agent or self.agents[0].name

    def limits(self, agent: AgentDefinition) -> dict[str, Any]:
        """An agent's effective limits: its own overrides over ``agentry:agent``, and its model."""
        values = {name: getattr(self.agent, name) for name in OVERRIDABLE}
        values.update(
            {name: getattr(agent, name) for name in OVERRIDABLE if getattr(agent, name) is not None}
        )
        values["model"] = agent.model or self.default_model
        values["price"] = self.model_prices.get(values["model"])
        values["tool_budgets"] = dict(agent.tool_budgets)
        values["max_total_tokens"] = agent.max_total_tokens
        values["approvals"] = dict(agent.approvals)
        return values

    # --- loading -------------------------------------------------------------------------

    @classmethod
    def from_values(
        cls,
        stack: str,
        values: Mapping[str, Any],
        *,
        project_dir: Path | None = None,
        today: date | None = None,
    ) -> EnvironmentConfig:
        """Validate flat stack config (``{"agentry:models": ..., "aws:region": ...}``).

        String values that hold JSON lists or objects are decoded, as the Pulumi CLI passes
        non-string config that way. Keys of other namespaces than ``aws:region`` are ignored.
        Raises ``ConfigError`` naming each bad key.
        """
        data: dict[str, Any] = {"stack": stack, "project_dir": project_dir or project_root()}
        if today is not None:
            data["today"] = today
        problems: list[Problem] = []
        for key, value in values.items():
            if key == _REGION_KEY:
                data[_REGION_KEY] = value
            elif key.startswith(_NAMESPACE):
                name = key.removeprefix(_NAMESPACE)
                if name not in _CONFIG_KEYS:
                    problems.append(Problem(key, "unknown key (not an Agentry setting)"))
                else:
                    data[name] = _decode(value)
        try:
            config = cls.model_validate(data)
        except ValidationError as exc:
            problems.extend(_problems(exc))
        if problems:
            raise ConfigError(problems)
        return config

    @classmethod
    def from_pulumi(cls, *, project_dir: Path | None = None) -> EnvironmentConfig:
        """Validate the running program's config (``pulumi.Config``), as under ``pulumi up``."""
        # Imported here so the config model stays importable without the Pulumi runtime.
        import pulumi
        from pulumi.runtime import config as runtime_config

        keys = set(runtime_config.get_config_env()) | set(runtime_config.CONFIG.get())
        values = {key: runtime_config.get_config(key) for key in sorted(keys)}
        return cls.from_values(pulumi.get_stack(), values, project_dir=project_dir)

    def to_pulumi_config(self) -> dict[str, str]:
        """This config as the flat string map ``pulumi.runtime.set_all_config`` takes."""
        dumped = self.model_dump(
            mode="json", by_alias=True, exclude={"stack", "project_dir", "today"}, exclude_none=True
        )
        region = dumped.pop(_REGION_KEY)
        return {_REGION_KEY: region} | {
            f"{_NAMESPACE}{key}": _encode(value) for key, value in dumped.items()
        }


#: The aliases accepted after ``agentry:`` (``stack`` and ``region`` are not such keys).
_CONFIG_KEYS: frozenset[str] = frozenset(
    field.alias or name
    for name, field in EnvironmentConfig.model_fields.items()
    if name not in {"stack", "region", "project_dir", "today"}
)


def _decode(value: Any) -> Any:
    if isinstance(value, str) and value.lstrip()[:1] in {"[", "{"}:
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value  # pydantic then reports the type mismatch with the key's path
    return value


def _encode(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


_MESSAGES = {
    "missing": "required key is missing",
    "extra_forbidden": "unknown key (not an Agentry setting)",
}


def _path(loc: Iterable[int | str]) -> str:
    parts = list(loc)
    if not parts:
        return PROJECT
    head, *rest = parts
    path = (
        str(head)
        if head in {"stack", "project_dir", "today", _REGION_KEY}
        else f"{_NAMESPACE}{head}"
    )
    for part in rest:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _problems(exc: ValidationError) -> list[Problem]:
    problems: list[Problem] = []
    for error in exc.errors():
        path = _path(error["loc"])
        nested = (error.get("ctx") or {}).get("problems")
        if error["type"] == "agentry_config" and nested:
            for problem in nested:
                # Paths of nested problems are relative ("[0]", ".Owner", "id") to the error's.
                sep = "" if problem.path[:1] in {"[", "."} else "."
                if path == PROJECT:
                    problems.append(Problem(f"{_NAMESPACE}{problem.path}", problem.reason))
                else:
                    problems.append(Problem(f"{path}{sep}{problem.path}", problem.reason))
        else:
            reason = _MESSAGES.get(error["type"], error["msg"].removeprefix("Value error, "))
            problems.append(Problem(path, reason))
    return problems


def project_root() -> Path:
    """The directory holding ``Pulumi.yaml``: the repo root this package lives in, else cwd."""
    for candidate in (Path(__file__).resolve().parents[2], Path.cwd(), *Path.cwd().parents):
        if (candidate / "Pulumi.yaml").is_file():
            return candidate
    return Path.cwd()


def read_stack_file(stack: str, *, project_dir: Path | None = None) -> dict[str, Any]:
    """The raw ``config:`` mapping of ``Pulumi.<stack>.yaml``; ``ConfigError`` if unreadable."""
    path = (project_dir or project_root()) / f"Pulumi.{stack}.yaml"
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", stack):
        raise ConfigError([Problem("stack", f"{stack!r} is not a stack name")])
    if not path.is_file():
        raise ConfigError([Problem("stack", f"no such stack: {path.name} not found")])
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError([Problem(path.name, f"not valid YAML ({exc})")]) from None
    config = document.get("config", {}) if isinstance(document, dict) else None
    if not isinstance(config, dict):
        raise ConfigError([Problem(path.name, "'config' must be a mapping of keys to values")])
    return {str(key): value for key, value in config.items()}


def pulumi_config_values(stack: str, *, project_dir: Path | None = None) -> dict[str, str]:
    """``Pulumi.<stack>.yaml`` as the flat string map the CLI hands the program.

    Non-string values become JSON strings, exactly as ``pulumi up`` passes them, so the offline
    plan feeds ``pulumi.runtime.set_all_config`` what the real CLI would.
    """
    return {
        key: _encode(value)
        for key, value in read_stack_file(stack, project_dir=project_dir).items()
    }


def load_stack_config(stack: str, *, project_dir: Path | None = None) -> EnvironmentConfig:
    """Read and validate ``Pulumi.<stack>.yaml``; raises ``ConfigError`` naming each problem."""
    return EnvironmentConfig.from_values(
        stack, read_stack_file(stack, project_dir=project_dir), project_dir=project_dir
    )
