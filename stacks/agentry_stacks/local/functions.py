"""The graph's Lambda functions, run in-process the way Lambda invokes them.

A function's handler is imported from its ``handler`` input and its runtime is built from its
``environment.variables``, once, like a warm container; before each invocation that runtime is
made current (``set_runtime``) and its variables are put in the process environment (where a
toolset reads its own settings), because in-process every function shares one interpreter.
What a handler prints or logs is kept per function, as CloudWatch Logs would keep it.
"""

from __future__ import annotations

import importlib
import io
import os
from collections.abc import Callable, Mapping
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from agentry_offline.events import LambdaContext
from agentry_runtime.runtime import Runtime, set_runtime
from agentry_stacks.offline.graph import LocalGraphError, Resource, arn_of, name_of

__all__ = ["LocalFunction", "RuntimeFactory", "load_handler"]

#: Builds a function's runtime from its environment variables.
RuntimeFactory = Callable[[Mapping[str, str]], Runtime]


def load_handler(entry_point: str) -> Callable[[dict[str, Any], Any], Any]:
    """Import ``package.module.function`` the way Lambda resolves a handler string."""
    module_name, _, attribute = entry_point.rpartition(".")
    if not module_name:
        raise LocalGraphError(f"handler: {entry_point!r} is not module.function")
    try:
        handler = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise LocalGraphError(f"handler: cannot import {entry_point!r} ({exc})") from exc
    if not callable(handler):
        raise LocalGraphError(f"handler: {entry_point!r} is not callable")
    return handler


@dataclass
class LocalFunction:
    """One function of the graph: its handler, environment, runtime and captured logs."""

    name: str
    arn: str
    entry_point: str
    environment: dict[str, str]
    timeout_seconds: int
    memory_mb: int
    runtime: Runtime
    logs: io.StringIO = field(default_factory=io.StringIO)

    @classmethod
    def from_graph(cls, resource: Resource, make_runtime: RuntimeFactory) -> LocalFunction:
        """The function of a graph resource, with a runtime from its environment variables."""
        inputs = resource["inputs"]
        environment = dict((inputs.get("environment") or {}).get("variables") or {})
        entry_point = inputs.get("handler")
        if not isinstance(entry_point, str):
            raise LocalGraphError(f"{resource['name']}.handler: missing")
        load_handler(entry_point)  # fail at start, not at the first event
        try:
            runtime = make_runtime(environment)
        except ValueError as exc:
            raise LocalGraphError(f"{resource['name']}.environment: {exc}") from exc
        return cls(
            name=name_of(resource),
            arn=arn_of(resource),
            entry_point=entry_point,
            environment=environment,
            timeout_seconds=int(inputs.get("timeout", 3)),
            memory_mb=int(inputs.get("memorySize", 128)),
            runtime=runtime,
        )

    def invoke(self, event: dict[str, Any]) -> Any:
        """Call the handler with ``event`` and a Lambda context; return its result."""
        context = LambdaContext(
            function_name=self.name,
            memory_limit_in_mb=self.memory_mb,
            timeout_ms=self.timeout_seconds * 1000,
            invoked_function_arn=self.arn,
        )
        set_runtime(self.runtime)
        try:
            # Powertools metrics print their EMF document (and warn when there is none): keep
            # both with the function's logs, where Lambda would put them.
            with (
                mock.patch.dict(os.environ, self.environment),
                redirect_stdout(self.logs),
                redirect_stderr(self.logs),
            ):
                return load_handler(self.entry_point)(event, context)
        finally:
            set_runtime(None)
