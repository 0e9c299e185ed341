"""Powertools logger and metrics, and the tracer, shared by the handlers and the loop.

Powertools keeps one configuration per service name, so every module logs with the same keys
(the agent id among them, appended per request) and adds to the same metric set. Metrics that
carry a dimension of their own (the model called, the error type) are written as their own EMF
document (``EphemeralMetrics``), so they never add that dimension to the shared set. Names and
dimensions come from ``contract.Metric``: the stack's dashboard and alarms read the same ones.

Lambda's active tracing records a segment for every invocation with no SDK in the function;
only subsegments (one per traced method and AWS call) need the X-Ray SDK, whose import and
botocore patching a cold start would otherwise pay for. So the Powertools ``Tracer`` (and the
SDK with it) is loaded only when the function's environment sets
``AGENTRY_TRACE_SUBSEGMENTS=true`` (the stack's ``tracingSubsegments``); otherwise ``tracer``
offers the same decorators and records nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, overload

from aws_lambda_powertools import Logger, Metrics
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

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

__all__ = [
    "NAMESPACE",
    "SERVICE",
    "TRACE_SUBSEGMENTS_VARIABLE",
    "Untraced",
    "logger",
    "make_tracer",
    "metrics",
    "record_agent_error",
    "record_model_call",
    "tracer",
]

SERVICE = METRICS_SERVICE
NAMESPACE = METRICS_NAMESPACE
#: ``true`` in a function's environment: trace subsegments with the X-Ray SDK.
TRACE_SUBSEGMENTS_VARIABLE = "AGENTRY_TRACE_SUBSEGMENTS"

_F = TypeVar("_F", bound=Callable[..., Any])

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)


class Untraced:
    """The ``Tracer`` decorators the handlers use, without the X-Ray SDK: they change nothing."""

    @overload
    def capture_lambda_handler(self, lambda_handler: _F) -> _F: ...

    @overload
    def capture_lambda_handler(
        self, lambda_handler: None = None, **options: Any
    ) -> Callable[[_F], _F]: ...

    def capture_lambda_handler(
        self, lambda_handler: _F | None = None, **options: Any
    ) -> _F | Callable[[_F], _F]:
        """The handler itself (or, called with options only, a decorator that returns it)."""
        return lambda_handler if lambda_handler is not None else _unchanged

    @overload
    def capture_method(self, method: _F) -> _F: ...

    @overload
    def capture_method(self, method: None = None, **options: Any) -> Callable[[_F], _F]: ...

    def capture_method(self, method: _F | None = None, **options: Any) -> _F | Callable[[_F], _F]:
        """The method itself (or, called with options only, a decorator that returns it)."""
        return method if method is not None else _unchanged

    def put_annotation(self, key: str, value: Any) -> None:
        """Nothing to annotate without a subsegment."""

    def put_metadata(self, key: str, value: Any, namespace: str | None = None) -> None:
        """Nothing to attach without a subsegment."""


def _unchanged(function: _F) -> _F:
    return function


def make_tracer(environ: Mapping[str, str] = os.environ) -> Tracer | Untraced:
    """The Powertools tracer if ``environ`` asks for subsegments, else :class:`Untraced`."""
    if environ.get(TRACE_SUBSEGMENTS_VARIABLE, "").strip().lower() == "true":
        # Imported here: building a Tracer imports the X-Ray SDK and patches botocore.
        from aws_lambda_powertools import Tracer

        return Tracer(service=SERVICE)
    return Untraced()


tracer = make_tracer()


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
