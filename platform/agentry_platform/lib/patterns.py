"""EventBridge event patterns as pure functions, built from the runtime's contract."""

from __future__ import annotations

from typing import Any

from agentry_runtime.contract import EVENT_SOURCE, RECOVERY_SOURCE, DetailType

__all__ = ["error_pattern", "step_pattern"]


def step_pattern() -> dict[str, Any]:
    """Step requests from the runtime and from recovery: routed to the step queue."""
    return {
        "source": [EVENT_SOURCE, RECOVERY_SOURCE],
        "detail-type": [DetailType.STEP_REQUESTED.value],
    }


def error_pattern() -> dict[str, Any]:
    """Agent errors from the runtime: they start the recovery state machine."""
    return {"source": [EVENT_SOURCE], "detail-type": [DetailType.AGENT_ERROR.value]}
