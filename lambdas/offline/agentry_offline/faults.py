"""Fault injection for tools: make named tools fail always, or once, whatever toolset they are in.

The local environment and the tests wrap the registries a function loads, so the runtime and the
toolsets themselves carry no test switches.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Collection
from typing import Any

from agentry_runtime.tools import ToolContext, ToolRegistry

__all__ = ["FailOnce", "with_tool_faults"]


class FailOnce:
    """Which ``fail_once`` tools already failed: shared across registries and runtimes.

    Handlers may rebuild a registry (a fresh runtime per redeploy), and a per-registry memory
    would make a fail-once tool fail every time.
    """

    def __init__(self) -> None:
        self._failed: set[str] = set()
        self._lock = threading.Lock()

    def first_time(self, name: str) -> bool:
        """True the first time it is asked about ``name``."""
        with self._lock:
            if name in self._failed:
                return False
            self._failed.add(name)
            return True

    def reset(self) -> None:
        """Forget which tools already failed."""
        with self._lock:
            self._failed.clear()


def with_tool_faults(
    registry: ToolRegistry,
    *,
    failing: Collection[str] = (),
    fail_once: Collection[str] = (),
    memory: FailOnce | None = None,
) -> ToolRegistry:
    """A copy of ``registry`` whose tools in ``failing`` always raise, in ``fail_once`` once."""
    if not failing and not fail_once:
        return registry
    memory = memory or FailOnce()
    faulty = ToolRegistry()
    for name in registry.names():
        tool = registry.get(name)
        fn = tool.fn
        if name in failing or name in fail_once:
            fn = _failing(name, tool.fn, always=name in failing, memory=memory)
        faulty.tool(
            name=tool.name,
            description=tool.description,
            timeout_seconds=tool.timeout_seconds,
            needs_approval=tool.needs_approval,
        )(fn)
    return faulty


def _failing(name: str, fn: Any, *, always: bool, memory: FailOnce) -> Any:
    # functools.wraps keeps the docstring and annotations the registry reads.
    @functools.wraps(fn)
    def wrapper(args: Any, ctx: ToolContext) -> Any:
        if always or memory.first_time(name):
            raise RuntimeError(f"simulated failure of {name}")
        return fn(args, ctx)

    return wrapper
