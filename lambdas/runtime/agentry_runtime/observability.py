"""Powertools logger and metrics, and the tracer, shared by the handlers and the loop.

Powertools keeps one configuration per service name, so every module logs with the same keys
(the agent id among them, appended per request) and adds to the same metric set.

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
    "tracer",
]

SERVICE = "agentry"
NAMESPACE = "Agentry"
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
