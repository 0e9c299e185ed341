"""The runtime's exceptions, translated once where a backend error occurs.

AgentryError
├── SettingsError             the function's environment or agents file is missing or invalid
├── UnknownAgentError         no agent definition of that name
├── StoreError
│   ├── AgentNotFoundError
│   ├── AgentExistsError
│   ├── StaleStepError        another writer committed first (optimistic concurrency)
│   └── ItemTooLargeError     an item would pass the configured size limit
├── ModelError                carries the typed ErrorType and whether it is retryable
│   ├── ModelThrottledError
│   ├── ModelUnavailableError     5xx, unreachable: retryable
│   ├── ModelNotAvailableError    access not granted / no such model here / end of life
│   └── ModelRejectedError        the request itself is invalid: not retryable
├── ToolError
│   ├── UnknownToolError
│   ├── ToolInputError
│   └── ToolTimeoutError
├── PublishError              EventBridge refused an event
└── AgentError              a typed agent error the loop publishes as an ``Agent Error``
"""

from __future__ import annotations

from agentry_runtime.contract import RETRYABLE_ERRORS, ErrorType


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


class StaleStepError(StoreError):
    """The header changed since it was read: another writer committed first."""


class ItemTooLargeError(StoreError):
    """An item would be larger than the store allows."""


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
    """The tool did not finish within its timeout."""


class PublishError(AgentryError):
    """EventBridge did not accept an event (``FailedEntryCount`` > 0 or a client error)."""


class AgentError(AgentryError):
    """A typed agent error: the step ends and an ``Agent Error`` event is published."""

    def __init__(self, error_type: ErrorType, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message

    @property
    def retryable(self) -> bool:
        """Whether the recovery state machine retries this error."""
        return self.error_type in RETRYABLE_ERRORS
