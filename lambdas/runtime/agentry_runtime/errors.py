"""Every exception the runtime raises on purpose, under one root, translated once where the
backend error occurs (one helper per client: ``store._dynamodb_errors``, ``model._translate``,
``events._translate``)::

    AgentryError
    ├── SettingsError              the function's environment or agents file is missing or bad
    ├── UnknownAgentError          no agent definition of that name
    ├── StoreError                 a DynamoDB call failed
    │   ├── AgentNotFoundError     no agent with this id
    │   ├── AgentExistsError       an agent with this id already exists
    │   ├── ConditionFailedError   a conditional write found the item otherwise (carries it)
    │   ├── StaleStepError         the header moved on: another writer committed first
    │   ├── ItemTooLargeError      an item would pass the store's size limit
    │   ├── CorruptItemError       an item that does not parse (or a header counting no item)
    │   ├── StoreThrottledError    throttled, after the client's own retries
    │   └── StoreUnavailableError  5xx, reset or timed out: a write may or may not have landed
    ├── ModelError                 a model call failed; carries its ErrorType and retryability
    │   ├── ModelThrottledError
    │   ├── ModelUnavailableError  5xx, unreachable: retryable
    │   ├── ModelNotAvailableError access not granted / no such model here / end of life
    │   └── ModelRejectedError     the request itself is invalid: not retryable
    ├── ToolError                  a tool call could not be carried out
    │   ├── UnknownToolError
    │   ├── ToolInputError
    │   └── ToolTimeoutError
    ├── PublishError               EventBridge refused events (a failed entry or a client error)
    ├── StepInProgressError        another worker holds the step's work: retry the event later
    ├── AgentError                 a typed agent error: the step ends in a failure status
    └── RequestError               a caller's request the platform refuses (the API answers 4xx)
        ├── TooManyAgentsError     the caller has as many unfinished agents as it may (429)
        └── UnknownToolCallError   a decision names a call that does not wait for one (400)
"""

from __future__ import annotations

from typing import Any

from agentry_runtime.contract import RETRYABLE_ERRORS, ErrorType

__all__ = [
    "AgentError",
    "AgentExistsError",
    "AgentNotFoundError",
    "AgentryError",
    "ConditionFailedError",
    "CorruptItemError",
    "ItemTooLargeError",
    "ModelError",
    "ModelRejectedError",
    "ModelThrottledError",
    "ModelUnavailableError",
    "PublishError",
    "RequestError",
    "SettingsError",
    "StaleStepError",
    "StepInProgressError",
    "StoreError",
    "StoreThrottledError",
    "StoreUnavailableError",
    "TooManyAgentsError",
    "ToolError",
    "ToolInputError",
    "ToolTimeoutError",
    "UnknownAgentError",
    "UnknownToolCallError",
    "UnknownToolError",
]


class AgentryError(Exception):
    """Base of every error the runtime raises on purpose."""


class SettingsError(AgentryError):
    """A function's settings (environment variables, agents file) are missing or invalid."""


class UnknownAgentError(AgentryError):
    """No agent definition has this name; ``known`` lists those that exist."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"unknown agent {name!r}; agents: {', '.join(known) or 'none'}")
        self.name = name
        self.known = known


class StoreError(AgentryError):
    """A state-store operation failed."""


class AgentNotFoundError(StoreError):
    """No agent with this id."""

    def __init__(self, agent_id: str) -> None:
        super().__init__(f"agent {agent_id!r} not found")
        self.agent_id = agent_id


class AgentExistsError(StoreError):
    """An agent with this id already exists."""

    def __init__(self, agent_id: str) -> None:
        super().__init__(f"agent {agent_id!r} already exists")
        self.agent_id = agent_id


class ConditionFailedError(StoreError):
    """A conditional write found the item in another state; ``item`` is it, when returned."""

    def __init__(self, message: str, *, item: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.item = item


class StaleStepError(StoreError):
    """The header changed since it was read: another writer committed first."""


class ItemTooLargeError(StoreError):
    """An item would be larger than the store allows."""

    def __init__(self, message: str, *, size: int = 0, limit: int = 0) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit


class CorruptItemError(StoreError):
    """An item does not parse, or the header counts an item that is not there."""


class StoreThrottledError(StoreError):
    """DynamoDB throttled the call even after the client's retries."""


class StoreUnavailableError(StoreError):
    """DynamoDB answered 5xx, or the connection failed: a write may or may not have landed."""


class ModelError(AgentryError):
    """A model call failed; ``error_type`` says how, ``retryable`` whether to try again."""

    error_type: ErrorType = ErrorType.MODEL_UNAVAILABLE

    @property
    def retryable(self) -> bool:
        """Whether recovery should retry after this error."""
        return self.error_type in RETRYABLE_ERRORS


class ModelThrottledError(ModelError):
    """Bedrock throttled the call even after the client's retries."""

    error_type = ErrorType.MODEL_THROTTLED


class ModelUnavailableError(ModelError):
    """Bedrock answered with a server error or could not be reached."""

    error_type = ErrorType.MODEL_UNAVAILABLE


class ModelNotAvailableError(ModelError):
    """The model cannot be used from this account: Bedrock denied access to it (model access not
    granted, or the role lacks the grant) or does not know it here (wrong id or region, end of
    life). Not retryable: it needs a human, once, not a recovery loop."""

    error_type = ErrorType.MODEL_NOT_AVAILABLE


class ModelRejectedError(ModelError):
    """Bedrock rejected the request itself (validation, bad parameters)."""

    error_type = ErrorType.MODEL_REJECTED


class ToolError(AgentryError):
    """A tool call could not be carried out."""


class UnknownToolError(ToolError):
    """The model asked for a tool that is not registered."""


class ToolInputError(ToolError):
    """The tool's input does not match its schema; the message names the fields."""


class ToolTimeoutError(ToolError):
    """The tool did not finish within its timeout (it may still be running)."""


class PublishError(AgentryError):
    """EventBridge did not accept events (``FailedEntryCount`` > 0 or a client error)."""


class StepInProgressError(AgentryError):
    """Another worker holds a lease on this step's work: the event must be retried later."""


class AgentError(AgentryError):
    """A typed agent error: the step ends in a failure status the recovery machine acts on."""

    def __init__(self, error_type: ErrorType, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message

    @property
    def retryable(self) -> bool:
        """Whether the recovery state machine retries this error."""
        return self.error_type in RETRYABLE_ERRORS


class RequestError(AgentryError):
    """A caller's request the platform refuses; the API answers it with a 4xx."""


class TooManyAgentsError(RequestError):
    """The caller already has as many agents that have not ended as it may have."""

    def __init__(self, cap: int) -> None:
        super().__init__(f"at most {cap} agents per caller may be unfinished at once")
        self.cap = cap


class UnknownToolCallError(RequestError):
    """Decisions named calls that do not wait for a decision."""

    def __init__(self, tool_use_ids: list[str]) -> None:
        super().__init__(f"no held call {', '.join(map(repr, tool_use_ids[:5]))}")
        self.tool_use_ids = tool_use_ids
