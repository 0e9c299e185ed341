"""Time and size limits that must agree across resources, as pure functions.

A worker invocation handles a batch of step records one after the other, and each record is one
step: a plan step makes up to two model calls (a compaction summary, then the plan), an act step
runs the committed tool calls. A model call is at most ``max_attempts`` attempts of
``connect + read`` timeout each, with boto3's standard-mode backoff between them (the runtime's
own bound, so this check and a chaining worker agree). The batch must
finish inside the function's timeout, and the queue's visibility timeout must cover the function
timeout with AWS's recommended margin.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass

from agentry_runtime.model import ModelSettings

__all__ = [
    "LAMBDA_ENVIRONMENT_LIMIT_BYTES",
    "MODEL_CALLS_PER_PLAN_STEP",
    "STEP_OVERHEAD_SECONDS",
    "VISIBILITY_TIMEOUT_FACTOR",
    "StepBudget",
    "api_concurrency_needed",
    "environment_bytes",
    "worst_model_call_seconds",
]

#: "Set the source queue's visibility timeout to at least six times the timeout that you
#: configure on your function" (Lambda developer guide, "Using Lambda with Amazon SQS").
VISIBILITY_TIMEOUT_FACTOR = 6
#: Lambda caps the total size of a function's environment variables at 4 KB (Lambda quotas).
LAMBDA_ENVIRONMENT_LIMIT_BYTES = 4096
#: A plan step may first summarise older turns (compaction), then plan: two model calls.
MODEL_CALLS_PER_PLAN_STEP = 2
#: Allowance per step for the store and the bus (a transaction, reads, a PutEvents, their SDK
#: retries with millisecond backoffs).
STEP_OVERHEAD_SECONDS = 5


def worst_model_call_seconds(
    *, read_timeout: float, connect_timeout: float, max_attempts: int
) -> float:
    """The longest one Converse call can take, as the worker itself bounds it when it decides
    whether a chained step fits (``agentry_runtime.model.ModelSettings.worst_case_seconds``:
    every attempt timing out, boto3's standard-mode backoff at its 20 s cap between them)."""
    settings = ModelSettings(
        model_id="any",
        max_attempts=max_attempts,
        read_timeout_seconds=read_timeout,
        connect_timeout_seconds=connect_timeout,
    )
    return settings.worst_case_seconds


@dataclass(frozen=True)
class StepBudget:
    """What one step record can take at worst, and the batch of ``batch_size`` of them."""

    model_call_seconds: float
    tool_timeout_seconds: float
    batch_size: int

    @property
    def plan_seconds(self) -> float:
        """A plan step: a compaction summary and the plan, plus the store's allowance."""
        return MODEL_CALLS_PER_PLAN_STEP * self.model_call_seconds + STEP_OVERHEAD_SECONDS

    @property
    def act_seconds(self) -> float:
        """An act step: a tool call up to its timeout, plus the store's allowance."""
        return self.tool_timeout_seconds + STEP_OVERHEAD_SECONDS

    @property
    def record_seconds(self) -> float:
        """The longest step."""
        return max(self.plan_seconds, self.act_seconds)

    @property
    def batch_seconds(self) -> float:
        """A whole batch, its records handled one after the other."""
        return self.batch_size * self.record_seconds


def api_concurrency_needed(*, burst: int, rate: float, timeout_seconds: float) -> int:
    """Concurrent executions a stage's throttle can ask of its function: the burst admitted at
    once, or the steady rate times the longest a request may hold an execution."""
    return max(burst, math.ceil(rate * timeout_seconds))


def environment_bytes(variables: Mapping[str, str]) -> int:
    """The size Lambda's 4 KB limit applies to, counted conservatively: the variables as the
    JSON object the API carries (keys, values, quotes and separators)."""
    return len(json.dumps(dict(variables), separators=(",", ":")).encode("utf-8"))
