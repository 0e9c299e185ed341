"""The settings every function receives: one typed contract for both sides of the environment.

The stack program builds a :class:`FunctionSettings` from the stack's config and writes it with
:meth:`FunctionSettings.to_environment`; the runtime reads it back with
:meth:`FunctionSettings.from_environment`. There is no other parser and no default on this path:
every value a function runs with is in its environment (and so visible to the policy pack),
except the agents' prompts and toolsets, which travel in the bundle's agents file
(``agents.py``) because Lambda caps a function's environment at 4 KB.

:class:`LoopSettings` is the reasoning loop's own view of one agent's limits.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from agentry_runtime.contract import Env
from agentry_runtime.errors import SettingsError
from agentry_runtime.pricing import ModelPrice

__all__ = [
    "AGENT_NAME_PATTERN",
    "AccessSettings",
    "AgentLimits",
    "FunctionSettings",
    "LoopSettings",
    "ReconcilerSettings",
]

#: Agent definition names: short, lower-case, usable in metrics dimensions and ids.
AGENT_NAME_PATTERN = r"^[a-z][a-z0-9-]{0,31}$"

_CONTRACT = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True)


class AgentLimits(BaseModel):
    """What one agent definition runs with, as the functions' environment carries it."""

    model_config = _CONTRACT

    model: str = Field(min_length=1, description="Bedrock model or inference profile id.")
    max_steps: int = Field(ge=1, le=500, description="Steps per agent before a human.")
    token_budget: int = Field(ge=1000, le=1_000_000, description="Prompt tokens before compaction.")
    max_output_tokens: int = Field(ge=1, le=64_000, description="Output tokens per model call.")
    temperature: float = Field(ge=0.0, le=1.0, description="Sampling temperature.")
    tool_timeout_seconds: int = Field(ge=1, le=900, description="Default timeout of a tool call.")
    max_tool_failures: int = Field(ge=0, le=50, description="Failed tool rounds before an error.")
    max_plan_retries: int = Field(ge=0, le=10, description="Invalid model answers before an error.")
    prompt_caching: bool = Field(description="Mark the static prompt prefix as cacheable.")
    price: ModelPrice = Field(description="What the agent's model costs (USD per million tokens).")
    tool_budgets: dict[str, int] = Field(
        default_factory=dict,
        description="Most calls of each named tool over the agent's life (resumes included).",
    )
    max_total_tokens: int | None = Field(
        default=None, ge=1000, description="Most tokens (in and out) over the agent's life."
    )
    approvals: dict[str, bool] = Field(
        default_factory=dict,
        description="Per tool: whether a person approves each call (overrides the toolset).",
    )

    @field_validator("tool_budgets")
    @classmethod
    def _budgets_are_counts(cls, value: dict[str, int]) -> dict[str, int]:
        for name, count in value.items():
            if not re.match(r"^[a-zA-Z0-9_-]{1,64}$", name):
                raise ValueError(f"{name!r} is not a tool name")
            if not 0 <= count <= 10_000:
                raise ValueError(f"{name}: a budget is 0 to 10000 calls, got {count}")
        return value

    def loop_settings(self, *, approval_window_seconds: int = 86_400) -> LoopSettings:
        """The loop's view of these limits (the approval window is the stack's)."""
        return LoopSettings(
            max_steps=self.max_steps,
            max_tool_failures=self.max_tool_failures,
            max_plan_retries=self.max_plan_retries,
            token_budget=self.token_budget,
            tool_timeout_seconds=self.tool_timeout_seconds,
            tool_budgets=dict(self.tool_budgets),
            max_total_tokens=self.max_total_tokens,
            approvals=dict(self.approvals),
            approval_window_seconds=approval_window_seconds,
        )


class AccessSettings(BaseModel):
    """Who may act on agents, how many each caller may run, how long approvals wait."""

    model_config = _CONTRACT

    operators: list[str] = Field(
        description="IAM role ARNs that may act on any agent (matched by account and role name)."
    )
    max_active_agents_per_caller: int = Field(
        ge=1, le=100_000, description="Agents a caller may have running at once (then 429)."
    )
    approval_window_seconds: int = Field(
        ge=60, le=30 * 86_400, description="Unanswered approvals count as rejected after this."
    )

    @field_validator("operators")
    @classmethod
    def _operators_are_roles(cls, value: list[str]) -> list[str]:
        for index, arn in enumerate(value):
            if not re.match(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$", arn):
                raise ValueError(f"[{index}]: {arn!r} is not an IAM role ARN")
        return value


class ReconcilerSettings(BaseModel):
    """What the reconciler function runs with (only it gets ``AGENTRY_RECONCILER``)."""

    model_config = _CONTRACT

    stale_after_seconds: int = Field(
        ge=0, le=86_400, description="An agent with no progress this long is announced again."
    )
    max_redrives: int = Field(
        ge=0, le=20, description="Re-drives of a dead-lettered step before a human is asked."
    )
    dead_letter_queue_url: str = Field(description="The step queue's dead-letter queue.")


class FunctionSettings(BaseModel):
    """Everything a function built from the runtime bundle reads from its environment."""

    model_config = _CONTRACT

    table_name: str = Field(min_length=1, description="The agents table.")
    event_bus_name: str = Field(min_length=1, description="The platform's event bus.")
    runtime_version: str = Field(min_length=1, description="Version of the runtime bundle.")
    agents_file: str = Field(
        min_length=1, description="The agents file, relative to the function's task root."
    )
    default_agent: str = Field(description="The agent ``POST /agents`` starts by default.")
    agents: dict[str, AgentLimits] = Field(
        min_length=1, description="Each agent definition's model and limits, by name."
    )
    ttl_days: int = Field(ge=1, le=3650, description="Days an agent's items are kept (TTL).")
    max_request_bytes: int = Field(ge=1, le=6 * 1024 * 1024, description="Largest API body.")
    model_read_timeout_seconds: int = Field(
        ge=1, le=900, description="Bedrock client read timeout of one attempt."
    )
    model_connect_timeout_seconds: int = Field(
        ge=1, le=60, description="Bedrock client connect timeout of one attempt."
    )
    model_max_attempts: int = Field(
        ge=1, le=10, description="Attempts of one model call (boto3 standard retry mode)."
    )
    access: AccessSettings = Field(description="Operators, caller quotas, approval window.")
    reconciler: ReconcilerSettings | None = Field(
        default=None, description="The reconciler's settings (only its function has them)."
    )

    @field_validator("agents")
    @classmethod
    def _names_are_names(cls, value: dict[str, AgentLimits]) -> dict[str, AgentLimits]:
        for name in value:
            if not re.match(AGENT_NAME_PATTERN, name):
                raise ValueError(f"{name!r} is not an agent name ({AGENT_NAME_PATTERN})")
        return value

    @model_validator(mode="after")
    def _default_is_an_agent(self) -> FunctionSettings:
        if self.default_agent not in self.agents:
            raise ValueError(
                f"{Env.DEFAULT_AGENT.value}: {self.default_agent!r} is not one of "
                f"{sorted(self.agents)}"
            )
        return self

    def to_environment(self) -> dict[str, str]:
        """The ``AGENTRY_*`` variables of a function (what the stack program sets)."""
        return {
            Env.TABLE_NAME.value: self.table_name,
            Env.EVENT_BUS_NAME.value: self.event_bus_name,
            Env.RUNTIME_VERSION.value: self.runtime_version,
            Env.AGENTS_FILE.value: self.agents_file,
            Env.DEFAULT_AGENT.value: self.default_agent,
            Env.AGENTS.value: json.dumps(
                {name: limits.model_dump(by_alias=True) for name, limits in self.agents.items()},
                separators=(",", ":"),
                sort_keys=True,
            ),
            Env.AGENT_TTL_DAYS.value: str(self.ttl_days),
            Env.MAX_REQUEST_BYTES.value: str(self.max_request_bytes),
            Env.MODEL_READ_TIMEOUT_SECONDS.value: str(self.model_read_timeout_seconds),
            Env.MODEL_CONNECT_TIMEOUT_SECONDS.value: str(self.model_connect_timeout_seconds),
            Env.MODEL_MAX_ATTEMPTS.value: str(self.model_max_attempts),
            Env.ACCESS.value: self.access.model_dump_json(by_alias=True),
            **(
                {Env.RECONCILER.value: self.reconciler.model_dump_json(by_alias=True)}
                if self.reconciler is not None
                else {}
            ),
        }

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> FunctionSettings:
        """Read the variables back; a missing or bad one raises ``SettingsError`` naming it."""
        raw: dict[str, Any] = {}
        problems: list[str] = []
        for field_name, variable in _VARIABLES.items():
            value = environ.get(variable.value)
            if value is None:
                if variable not in _OPTIONAL:
                    problems.append(f"{variable.value}: required, not set")
            elif variable in (Env.AGENTS, Env.RECONCILER, Env.ACCESS):
                try:
                    raw[field_name] = json.loads(value)
                except json.JSONDecodeError as exc:
                    problems.append(f"{variable.value}: not JSON ({exc.msg})")
            else:
                raw[field_name] = value
        if problems:
            raise SettingsError("; ".join(problems))
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise SettingsError(
                "; ".join(
                    _variable_of(error["loc"]) + error["msg"].removeprefix("Value error, ")
                    for error in exc.errors()
                )
            ) from None


_VARIABLES: dict[str, Env] = {
    "table_name": Env.TABLE_NAME,
    "event_bus_name": Env.EVENT_BUS_NAME,
    "runtime_version": Env.RUNTIME_VERSION,
    "agents_file": Env.AGENTS_FILE,
    "default_agent": Env.DEFAULT_AGENT,
    "agents": Env.AGENTS,
    "ttl_days": Env.AGENT_TTL_DAYS,
    "max_request_bytes": Env.MAX_REQUEST_BYTES,
    "model_read_timeout_seconds": Env.MODEL_READ_TIMEOUT_SECONDS,
    "model_connect_timeout_seconds": Env.MODEL_CONNECT_TIMEOUT_SECONDS,
    "model_max_attempts": Env.MODEL_MAX_ATTEMPTS,
    "access": Env.ACCESS,
    "reconciler": Env.RECONCILER,
}
# Variables only some functions get.
_OPTIONAL = frozenset({Env.RECONCILER})


def _variable_of(loc: tuple[int | str, ...]) -> str:
    """``"AGENTRY_AGENTS.flights.maxSteps: "`` for a location inside a variable's value."""
    if not loc:
        return ""  # a check across variables names them in its message
    head, *rest = loc
    variable = _VARIABLES.get(str(head))
    name = variable.value if variable else str(head)
    return ".".join([name, *map(str, rest)]) + ": "


@dataclass(frozen=True)
class LoopSettings:
    """Bounds of the reasoning loop for one agent (built from :class:`AgentLimits`)."""

    max_steps: int = 60
    max_tool_failures: int = 3
    max_plan_retries: int = 2
    token_budget: int = 12_000
    tool_timeout_seconds: int = 10
    max_tool_result_chars: int = 16_000
    #: Most calls of each named tool over the agent's life.
    tool_budgets: Mapping[str, int] = field(default_factory=dict)
    #: Most tokens (in and out) over the agent's life; ``None``: no cap.
    max_total_tokens: int | None = None
    #: Per tool: whether a person approves each call (overrides the toolset's choice).
    approvals: Mapping[str, bool] = field(default_factory=dict)
    #: How long a person has to decide before undecided calls count as rejected.
    approval_window_seconds: int = 86_400
