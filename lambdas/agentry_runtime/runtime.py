"""Wiring: builds the store, model client, tools, publisher and loop from the environment.

A Lambda container builds one ``Runtime`` on first use and reuses it across invocations;
``set_runtime`` injects another (the local environment, tests) the way Powertools takes
injectable clients.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from agentry_runtime import __version__
from agentry_runtime.contract import Env
from agentry_runtime.events import Publisher
from agentry_runtime.flights import demo_registry
from agentry_runtime.loop import AgentLoop
from agentry_runtime.model import ModelClient, ModelSettings
from agentry_runtime.service import AgentService
from agentry_runtime.settings import LoopSettings
from agentry_runtime.store import AgentStore
from agentry_runtime.tools import ToolRegistry

#: Largest request body the API accepts, in bytes.
DEFAULT_MAX_REQUEST_BYTES = 64 * 1024


@dataclass
class Runtime:
    """Everything a handler needs, built once per container."""

    store: AgentStore
    model: ModelClient
    tools: ToolRegistry
    publisher: Publisher
    settings: LoopSettings
    runtime_version: str = __version__
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES

    @cached_property
    def loop(self) -> AgentLoop:
        """The reasoning loop over these dependencies."""
        return AgentLoop(
            store=self.store,
            model=self.model,
            tools=self.tools,
            publisher=self.publisher,
            settings=self.settings,
        )

    @cached_property
    def service(self) -> AgentService:
        """The API's agent operations over these dependencies."""
        return AgentService(
            store=self.store,
            publisher=self.publisher,
            tools=self.tools.describe(),
            model_id=self.model.model_id,
            runtime_version=self.runtime_version,
            ttl_days=self.settings.ttl_days,
        )

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] = os.environ,
        *,
        tools: ToolRegistry | None = None,
        session: Any | None = None,
    ) -> Runtime:
        """Build from ``AGENTRY_*`` variables; a missing or bad one raises naming it."""
        missing = [
            v for v in (Env.TABLE_NAME, Env.EVENT_BUS_NAME, Env.MODEL_ID) if v not in environ
        ]
        if missing:
            raise ValueError(f"missing environment variables: {', '.join(missing)}")
        model_settings = ModelSettings.from_env(environ)
        dynamodb = session.client("dynamodb") if session else None
        events = session.client("events") if session else None
        bedrock = ModelClient.default_client(model_settings, session=session) if session else None
        raw_max_bytes = environ.get(Env.MAX_REQUEST_BYTES, str(DEFAULT_MAX_REQUEST_BYTES))
        try:
            max_bytes = int(raw_max_bytes)
        except ValueError:
            max_bytes = 0
        if max_bytes < 1:
            raise ValueError(
                f"{Env.MAX_REQUEST_BYTES}: expected a positive integer, got {raw_max_bytes!r}"
            )
        settings = LoopSettings.from_env(environ)
        return cls(
            store=AgentStore(environ[Env.TABLE_NAME], client=dynamodb),
            model=ModelClient(model_settings, client=bedrock),
            tools=tools or demo_registry(timeout_seconds=settings.tool_timeout_seconds),
            publisher=Publisher(environ[Env.EVENT_BUS_NAME], client=events),
            settings=settings,
            runtime_version=environ.get(Env.RUNTIME_VERSION, __version__),
            max_request_bytes=max_bytes,
        )


_current: Runtime | None = None


def get_runtime() -> Runtime:
    """The container's runtime, built from the environment on first use."""
    global _current
    if _current is None:
        _current = Runtime.from_env()
    return _current


def set_runtime(runtime: Runtime | None) -> None:
    """Use ``runtime`` for the following invocations (``None``: rebuild from the environment)."""
    global _current
    _current = runtime
