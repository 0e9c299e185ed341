"""What an operator watches, as pure functions: the dashboard body and the alarms' thresholds.

The runtime's metric names and dimensions come from its contract (``contract.Metric``), AWS's
from their services' documentation: SQS (``AWS/SQS``, ``QueueName``), Lambda (``AWS/Lambda``,
``FunctionName``), Step Functions (``AWS/States``, ``StateMachineArn``) and EventBridge
(``AWS/Events``: rules on a custom bus publish ``Invocations`` and ``FailedInvocations`` with the
``EventBusName`` and ``RuleName`` dimensions; EventBridge user guide, "Monitoring Amazon
EventBridge").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agentry_runtime.contract import (
    METRICS_NAMESPACE,
    METRICS_SERVICE,
    RETRYABLE_ERRORS,
    ErrorType,
    Metric,
    MetricDimension,
)

__all__ = [
    "ErrorAlarm",
    "OperationsNames",
    "dashboard_body",
    "error_alarms",
    "stuck_after_seconds",
]

_PERIOD = 300
_SERVICE = {"service": METRICS_SERVICE}


@dataclass(frozen=True)
class OperationsNames:
    """The physical names the dashboard and alarms watch (known once AWS names them)."""

    region: str
    steps_queue: str
    dead_letter_queues: Mapping[str, str]
    functions: Mapping[str, str]
    state_machine_arn: str
    #: ``(bus name, rule name)`` of each rule (``default`` for the account's default bus).
    rules: Sequence[tuple[str, str]]
    models: Sequence[str]


@dataclass(frozen=True)
class ErrorAlarm:
    """The alarm on one error type: its name suffix, threshold per five minutes and meaning."""

    error_type: ErrorType
    suffix: str
    threshold: int
    description: str


def error_alarms() -> list[ErrorAlarm]:
    """One alarm per error type: any non-retryable error pages (a human must act); retryable
    ones only when they pile up (recovery retries them). ``ModelNotAvailable`` is the model
    access alarm: access not granted, a wrong model id or region, or a model past end of life.
    """
    alarms = []
    for error_type in ErrorType:
        if error_type == ErrorType.MODEL_NOT_AVAILABLE:
            alarms.append(
                ErrorAlarm(
                    error_type,
                    "model-access-errors",
                    0,
                    "Bedrock refused the model (access not granted in this account and region, "
                    "or the model is unknown or past end of life): grant model access or change "
                    "the stack's model",
                )
            )
            continue
        retryable = error_type in RETRYABLE_ERRORS
        slug = "".join(f"-{c.lower()}" if c.isupper() else c for c in error_type.value).strip("-")
        alarms.append(
            ErrorAlarm(
                error_type,
                f"errors-{slug}",
                10 if retryable else 0,
                f"Agents failed with {error_type.value}"
                + (" repeatedly (recovery retries each)" if retryable else " (not retried)"),
            )
        )
    return alarms


def stuck_after_seconds(worker_timeout_seconds: int) -> int:
    """Age of the oldest step message that means agents are stuck: no worker has taken it for
    three function timeouts (and at least 15 minutes)."""
    return max(900, 3 * worker_timeout_seconds)


def _metric(namespace: str, name: str, dimensions: Mapping[str, str], **options: Any) -> list[Any]:
    row: list[Any] = [namespace, name]
    for key, value in dimensions.items():
        row += [key, value]
    return [*row, options] if options else row


def _widget(
    title: str, metrics: list[list[Any]], region: str, *, stat: str = "Sum"
) -> dict[str, Any]:
    return {
        "type": "metric",
        "width": 12,
        "height": 6,
        "properties": {
            "title": title,
            "region": region,
            "metrics": metrics,
            "stat": stat,
            "period": _PERIOD,
            "view": "timeSeries",
        },
    }


def dashboard_body(names: OperationsNames) -> dict[str, Any]:
    """The dashboard: steps, errors by type, model latency, tokens and cost, tool failures,
    queue depth and age, dead letters, recoveries, approvals waiting, deliveries, functions."""
    ns, region = METRICS_NAMESPACE, names.region
    by_model = MetricDimension.MODEL.value
    widgets = [
        _widget(
            "Steps",
            [
                _metric(ns, Metric.STEPS_COMMITTED, _SERVICE),
                _metric(ns, Metric.STEP_CONFLICTS, _SERVICE),
                _metric(ns, Metric.FAILED_RECORDS, _SERVICE),
            ],
            region,
        ),
        _widget(
            "Agent errors by type",
            [
                _metric(
                    ns, Metric.AGENT_ERRORS, {MetricDimension.ERROR_TYPE.value: t.value, **_SERVICE}
                )
                for t in ErrorType
            ],
            region,
        ),
        _widget(
            "Model latency (p90)",
            [_metric(ns, Metric.MODEL_LATENCY, {by_model: m, **_SERVICE}) for m in names.models],
            region,
            stat="p90",
        ),
        _widget(
            "Model tokens",
            [
                _metric(ns, metric, {by_model: m, **_SERVICE}, label=f"{metric.value} {m}")
                for m in names.models
                for metric in (
                    Metric.INPUT_TOKENS,
                    Metric.OUTPUT_TOKENS,
                    Metric.CACHE_READ_TOKENS,
                    Metric.CACHE_WRITE_TOKENS,
                )
            ],
            region,
        ),
        _widget(
            "Model cost (USD)",
            [_metric(ns, Metric.MODEL_COST, {by_model: m, **_SERVICE}) for m in names.models],
            region,
        ),
        _widget("Tool failures", [_metric(ns, Metric.TOOL_FAILURES, _SERVICE)], region),
        _widget(
            "Step queue: depth and age of the oldest message",
            [
                _metric(
                    "AWS/SQS",
                    "ApproximateNumberOfMessagesVisible",
                    {"QueueName": names.steps_queue},
                ),
                _metric(
                    "AWS/SQS",
                    "ApproximateNumberOfMessagesNotVisible",
                    {"QueueName": names.steps_queue},
                ),
                _metric(
                    "AWS/SQS",
                    "ApproximateAgeOfOldestMessage",
                    {"QueueName": names.steps_queue},
                    yAxis="right",
                ),
            ],
            region,
            stat="Maximum",
        ),
        _widget(
            "Dead-letter queues",
            [
                _metric(
                    "AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": queue}, label=key
                )
                for key, queue in names.dead_letter_queues.items()
            ],
            region,
            stat="Maximum",
        ),
        _widget(
            "Recoveries",
            [
                _metric("AWS/States", name, {"StateMachineArn": names.state_machine_arn})
                for name in ("ExecutionsStarted", "ExecutionsSucceeded", "ExecutionsFailed")
            ],
            region,
        ),
        _widget(
            "Approvals waiting",
            [_metric(ns, Metric.APPROVALS_WAITING, _SERVICE)],
            region,
            stat="Maximum",
        ),
        _widget(
            "Event deliveries",
            [
                _metric("AWS/Events", name, {"EventBusName": bus, "RuleName": rule})
                for bus, rule in names.rules
                for name in ("Invocations", "FailedInvocations")
            ],
            region,
        ),
        _widget(
            "Functions: errors and throttles",
            [
                _metric("AWS/Lambda", name, {"FunctionName": function}, label=f"{key} {name}")
                for key, function in names.functions.items()
                for name in ("Errors", "Throttles")
            ],
            region,
        ),
    ]
    return {"widgets": widgets}
