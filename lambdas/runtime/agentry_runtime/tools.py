"""A typed tool registry: tools are plain functions over a pydantic input model.

The registry turns each tool into a Converse ``toolSpec`` (its JSON schema comes from the
input model), validates the model's raw input, and executes a call with a timeout. Faults of a
tool become an error ``ToolOutcome`` the model can read and correct, never an exception.
"""

from __future__ import annotations

import copy
import inspect
import logging
import re
import threading
import time
import typing
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeoutError
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from agentry_runtime.errors import ToolError, ToolInputError, ToolTimeoutError, UnknownToolError
from agentry_runtime.sanitize import REPLACED_NOTE, bounded_text, json_safe, utf8_text

__all__ = ["DEFAULT_TIMEOUT_SECONDS", "Tool", "ToolContext", "ToolOutcome", "ToolRegistry"]

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

# Converse's constraint on tool names.
_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


@dataclass(frozen=True)
class ToolContext:
    """What a tool call may use besides its input.

    ``tool_use_id`` is the stable identity of the committed call: tools with side effects use
    it as their own idempotency key. ``deadline`` is when the platform stops waiting for the
    call (epoch seconds); a tool that talks to a slow service should give up before it.
    """

    agent_id: str
    tool_use_id: str
    table_name: str
    dynamodb: Any
    deadline: float | None = None

    def remaining_seconds(self) -> float | None:
        """Seconds left before ``deadline`` (never negative), or ``None`` without one."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.time())


@dataclass(frozen=True)
class ToolOutcome:
    """The result of one call, as the content and status of a Converse ``toolResult``.

    ``timed_out``: the call did not finish within ``timeout`` seconds; it may still run.
    Content and error are always JSON-safe, valid UTF-8 (see ``sanitize``).
    """

    status: Literal["success", "error"]
    content: list[dict[str, Any]]
    error: str | None = None
    timed_out: bool = False
    timeout: float = 0.0

    @classmethod
    def failure(cls, message: str) -> ToolOutcome:
        """An error outcome whose text the model reads."""
        text = bounded_text(message, MAX_ERROR_CHARS)
        return cls(status="error", content=[{"text": text}], error=text)


@dataclass(frozen=True)
class Tool:
    """A registered tool: its name, description, input model, timeout and function.

    ``timeout_seconds`` is ``None`` when neither the tool nor its registry set one: the agent's
    default applies. ``needs_approval`` makes a human approve each call before it runs.
    ``read_only``: a call changes nothing outside the agent (a lookup), so the loop need not
    read the header again before it to honour a cancel that landed meanwhile; it does before
    every other call.
    """

    name: str
    description: str
    input_model: type[BaseModel]
    timeout_seconds: float | None
    fn: Callable[[Any, ToolContext], dict[str, Any] | str]
    needs_approval: bool = False
    read_only: bool = False

    @cached_property
    def _schema(self) -> dict[str, Any]:
        # pydantic builds the JSON schema anew on every call; every plan step needs it.
        return self.input_model.model_json_schema()

    def spec(self) -> dict[str, Any]:
        """The Converse ``toolSpec`` entry of this tool."""
        return {
            "toolSpec": {
                "name": self.name,
                "description": self.description,
                "inputSchema": {"json": copy.deepcopy(self._schema)},
            }
        }


#: Timeout of a tool whose registry and agent set none.
DEFAULT_TIMEOUT_SECONDS = 10.0
#: Longest error text of a failed call that is kept (the model reads it; logs keep the rest).
MAX_ERROR_CHARS = 4000


class ToolRegistry:
    """Tools by name; validates inputs and executes calls with a per-tool timeout.

    A toolset is a registry a team exposes at ``module:attribute``; an agent's tools are its
    toolsets merged into one registry (:meth:`include`) whose default timeout is the agent's.
    """

    def __init__(self, *, default_timeout_seconds: float | None = None) -> None:
        if default_timeout_seconds is not None and default_timeout_seconds <= 0:
            raise ValueError("default_timeout_seconds: must be greater than 0")
        self._default_timeout = default_timeout_seconds
        self._tools: dict[str, Tool] = {}

    def tool(
        self,
        *,
        name: str | None = None,
        description: str | None = None,
        timeout_seconds: float | None = None,
        needs_approval: bool = False,
        read_only: bool = False,
    ) -> Callable[[F], F]:
        """Register ``def f(args: SomeModel, ctx: ToolContext) -> dict | str`` as a tool.

        The input model is the first parameter's annotation; the description defaults to the
        function's docstring. ``needs_approval`` holds each call for a human's decision;
        ``read_only`` declares that a call changes nothing (see :class:`Tool`).
        """

        def register(fn: F) -> F:
            tool_name = name or fn.__name__
            if not _NAME.match(tool_name):
                raise ValueError(f"tool name {tool_name!r}: must match {_NAME.pattern}")
            if tool_name in self._tools:
                raise ValueError(f"tool name {tool_name!r}: already registered")
            text = description or inspect.getdoc(fn) or ""
            if not text.strip():
                raise ValueError(f"tool {tool_name!r}: needs a description or a docstring")
            timeout = self._default_timeout if timeout_seconds is None else timeout_seconds
            if timeout is not None and timeout <= 0:
                raise ValueError(f"tool {tool_name!r}: timeout_seconds must be greater than 0")
            self._tools[tool_name] = Tool(
                name=tool_name,
                description=text.strip(),
                input_model=_input_model(fn, tool_name),
                timeout_seconds=timeout,
                fn=fn,
                needs_approval=needs_approval,
                read_only=read_only,
            )
            return fn

        return register

    def include(self, other: ToolRegistry) -> None:
        """Add every tool of ``other`` (a toolset); a name already here raises ``ValueError``."""
        for tool in other._tools.values():
            if tool.name in self._tools:
                raise ValueError(f"tool name {tool.name!r}: registered by two toolsets")
            self._tools[tool.name] = tool

    def timeout_of(self, name: str) -> float:
        """The timeout of a call of ``name``: the tool's own, else this registry's default."""
        tool = self.get(name)
        if tool.timeout_seconds is not None:
            return tool.timeout_seconds
        return self._default_timeout or DEFAULT_TIMEOUT_SECONDS

    def get(self, name: str) -> Tool:
        """The tool called ``name``; ``UnknownToolError`` if there is none."""
        try:
            return self._tools[name]
        except KeyError:
            known = ", ".join(self._tools) or "none"
            raise UnknownToolError(f"unknown tool {name!r}; known tools: {known}") from None

    def names(self) -> list[str]:
        """Names of the registered tools, in registration order."""
        return list(self._tools)

    def specs(self) -> list[dict[str, Any]]:
        """The ``toolConfig.tools`` list for Converse."""
        return [t.spec() for t in self._tools.values()]

    def describe(self) -> list[dict[str, Any]]:
        """``[{"name", "description", "needsApproval"}]`` of every tool, for status pages."""
        return [
            {"name": t.name, "description": t.description, "needsApproval": t.needs_approval}
            for t in self._tools.values()
        ]

    def validate(self, name: str, raw_input: dict[str, Any]) -> BaseModel:
        """The tool's parsed input; ``UnknownToolError`` or ``ToolInputError`` naming each field."""
        tool = self.get(name)
        try:
            return tool.input_model.model_validate(raw_input)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(input)'}: {err['msg']}"
                for err in exc.errors()
            )
            raise ToolInputError(f"invalid input for tool {name!r}: {problems}") from exc

    def execute(self, name: str, raw_input: dict[str, Any], ctx: ToolContext) -> ToolOutcome:
        """Validate and run one call within its timeout; tool faults become error outcomes.

        Whatever the tool returns or raises becomes a storable outcome (never an exception).
        """
        timeout = 0.0
        try:
            args = self.validate(name, raw_input)
            tool = self._tools[name]
            timeout = self.timeout_of(name)
            result = _run_with_timeout(tool, timeout, args, ctx)
        except ToolTimeoutError as exc:
            return ToolOutcome(
                status="error",
                content=[{"text": str(exc)}],
                error=str(exc),
                timed_out=True,
                timeout=timeout,
            )
        except ToolError as exc:
            return ToolOutcome.failure(str(exc))
        except Exception as exc:
            # The model reads this message and may correct its call, so keep it as it is.
            logger.info("tool %s failed: %s", name, _safe_str(exc), exc_info=True)
            return ToolOutcome.failure(f"{type(exc).__name__}: {_safe_str(exc)}")
        if isinstance(result, str):
            text, changed = utf8_text(result)
            content = [{"text": text}] + ([{"text": REPLACED_NOTE}] if changed else [])
            return ToolOutcome(status="success", content=content)
        if isinstance(result, dict):
            safe = json_safe(result)
            content = [{"json": safe.value}] + ([{"text": REPLACED_NOTE}] if safe.replaced else [])
            return ToolOutcome(status="success", content=content)
        return ToolOutcome.failure(
            f"tool {name!r} returned {type(result).__name__}; a tool must return a dict or a str"
        )


def _input_model(fn: Callable[..., Any], tool_name: str) -> type[BaseModel]:
    params = list(inspect.signature(fn).parameters)
    if len(params) != 2:
        raise TypeError(f"tool {tool_name!r}: must take (args: SomeModel, ctx: ToolContext)")
    annotation = typing.get_type_hints(fn).get(params[0])
    if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
        raise TypeError(
            f"tool {tool_name!r}: parameter {params[0]!r} must be annotated with a pydantic model"
        )
    return annotation


def _run_with_timeout(tool: Tool, timeout: float, args: BaseModel, ctx: ToolContext) -> Any:
    # A daemon thread rather than a ThreadPoolExecutor: Python cannot kill a thread, so a
    # timed-out tool keeps running in the background, and an executor's worker would also
    # hold up interpreter exit until it finished.
    future: Future[Any] = Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(tool.fn(args, ctx))
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=run, name=f"tool-{tool.name}", daemon=True).start()
    try:
        return future.result(timeout=timeout)
    except FutureTimeoutError:
        if future.done():  # the tool itself raised TimeoutError: report it as its own fault
            raise
        raise ToolTimeoutError(f"tool {tool.name!r} did not finish within {timeout:g} s") from None


def _safe_str(exc: BaseException) -> str:
    """``str(exc)``, even for an exception whose ``__str__`` raises or returns bad UTF-8."""
    try:
        text = str(exc)
    except Exception:
        return f"<{type(exc).__name__} whose message could not be read>"
    return bounded_text(text, MAX_ERROR_CHARS)
