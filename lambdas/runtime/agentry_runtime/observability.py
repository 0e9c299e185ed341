"""Powertools logger, metrics and tracer shared by the handlers and the loop.

Powertools keeps one configuration per service name, so every module logs with the same keys
(the agent id among them, appended per request) and adds to the same metric set. Metrics that
carry a dimension of their own (the model called, the error type) are written as their own EMF
document (``EphemeralMetrics``), so they never add that dimension to the shared set. Names and
dimensions come from ``contract.Metric``: the stack's dashboard and alarms read the same ones.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from agentry_runtime.contract import (
    METRICS_NAMESPACE,
    METRICS_SERVICE,
    ErrorType,
    Metric,
    MetricDimension,
)
from agentry_runtime.pricing import ModelPrice, cost_usd
from agentry_runtime.state import TokenUsage

__all__ = [
    "NAMESPACE",
    "SERVICE",
    "logger",
    "metrics",
    "record_agent_error",
    "record_model_call",
    "tracer",
]

SERVICE = METRICS_SERVICE
NAMESPACE = METRICS_NAMESPACE

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
tracer = Tracer(service=SERVICE)


def _dimensioned(name: MetricDimension, value: str) -> EphemeralMetrics:
    emitted = EphemeralMetrics(namespace=NAMESPACE, service=SERVICE)
    emitted.add_dimension(name=name.value, value=value)
    return emitted


def record_model_call(
    model_id: str, usage: TokenUsage, latency_ms: int | None, price: ModelPrice | None
) -> None:
    """Latency (when measured), tokens of each kind and (with a price) the cost in USD of one
    model call, by the model or profile id called."""
    emitted = _dimensioned(MetricDimension.MODEL, model_id)
    if latency_ms is not None:
        emitted.add_metric(
            name=Metric.MODEL_LATENCY, unit=MetricUnit.Milliseconds, value=latency_ms
        )
    emitted.add_metric(name=Metric.INPUT_TOKENS, unit=MetricUnit.Count, value=usage.input_tokens)
    emitted.add_metric(name=Metric.OUTPUT_TOKENS, unit=MetricUnit.Count, value=usage.output_tokens)
    emitted.add_metric(
        name=Metric.CACHE_READ_TOKENS, unit=MetricUnit.Count, value=usage.cache_read_input_tokens
    )
    emitted.add_metric(
        name=Metric.CACHE_WRITE_TOKENS,
        unit=MetricUnit.Count,
        value=usage.cache_write_input_tokens,
    )
    if price is not None:
        emitted.add_metric(
            name=Metric.MODEL_COST, unit=MetricUnit.NoUnit, value=cost_usd(usage, price)
        )
    emitted.flush_metrics()


def record_agent_error(error_type: ErrorType) -> None:
    """One typed agent error, by ``ErrorType`` (the alarms watch each type)."""
    emitted = _dimensioned(MetricDimension.ERROR_TYPE, str(error_type))
    emitted.add_metric(name=Metric.AGENT_ERRORS, unit=MetricUnit.Count, value=1)
    emitted.flush_metrics()
