"""Wiring: builds the store, agent catalog, loop, announcer and reconciler from the environment.

A Lambda container builds one ``Runtime`` on first use and reuses it across invocations;
``set_runtime`` injects another (the local environment, tests) the way Powertools takes
injectable clients.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import boto3

from agentry_runtime import __version__
from agentry_runtime.agents import AgentCatalog, AgentsFile, ToolsetLoader, import_toolset
from agentry_runtime.announcer import Announcer
from agentry_runtime.contract import TASK_ROOT_VARIABLE
from agentry_runtime.errors import SettingsError
from agentry_runtime.events import Publisher
from agentry_runtime.identity import Operators
from agentry_runtime.loop import AgentLoop
from agentry_runtime.model import ModelClient, ModelSettings
from agentry_runtime.reconciler import Reconciler
from agentry_runtime.service import AgentService
from agentry_runtime.settings import AccessSettings, FunctionSettings, ReconcilerSettings
from agentry_runtime.store import AgentStore

__all__ = ["DEFAULT_MAX_REQUEST_BYTES", "Runtime", "get_runtime", "set_runtime"]

#: Largest request body the API accepts, in bytes (the stack config sets the real value).
DEFAULT_MAX_REQUEST_BYTES = 64 * 1024


@dataclass
class Runtime:
    """Everything a handler needs, built once per container."""

    store: AgentStore
    agents: AgentCatalog
    publisher: Publisher
    runtime_version: str = __version__
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    ttl_days: int = 30
    #: Operators, per-caller cap and approval window (a stack's; open defaults for tests).
    access: AccessSettings = field(
        default_factory=lambda: AccessSettings(
            operators=[], max_active_agents_per_caller=1000, approval_window_seconds=86_400
        )
    )

    reconciler_settings: ReconcilerSettings | None = None
    _session: Any | None = None

    @cached_property
    def loop(self) -> AgentLoop:
        """The reasoning loop over these dependencies."""
        return AgentLoop(store=self.store, agents=self.agents)

    @cached_property
    def service(self) -> AgentService:
        """The API's agent operations over these dependencies."""
        return AgentService(
            store=self.store,
            agents=self.agents,
            runtime_version=self.runtime_version,
            ttl_days=self.ttl_days,
            operators=Operators(self.access.operators),
            max_active_per_caller=self.access.max_active_agents_per_caller,
        )

    @cached_property
    def sqs(self) -> Any:
        """An SQS client (the worker shortens a chain's message visibility with it)."""
        return self._session.client("sqs") if self._session else boto3.client("sqs")

    @cached_property
    def announcer(self) -> Announcer:
        """Turns header transitions from the table's stream into events on the bus."""
        return Announcer(store=self.store, publisher=self.publisher)

    @cached_property
    def reconciler(self) -> Reconciler:
        """Re-announces agents that made no progress, re-drives dead letters."""
        if self.reconciler_settings is None:
            raise SettingsError("this function has no reconciler settings (AGENTRY_RECONCILER)")
        return Reconciler(
            store=self.store,
            settings=self.reconciler_settings,
            sqs=self.sqs,
            expire_approvals=self.service.expire_approvals,
        )

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] = os.environ,
        *,
        session: Any | None = None,
        toolset_loader: ToolsetLoader = import_toolset,
    ) -> Runtime:
        """Build from the function's environment and its bundle's agents file.

        A missing or bad variable, or an agents file that disagrees with the environment,
        raises ``SettingsError`` naming it. Toolsets are imported on an agent's first step.
        """
        settings = FunctionSettings.from_environment(environ)
        # Lambda runs the handler with the unpacked bundle as its task root.
        task_root = Path(environ.get(TASK_ROOT_VARIABLE) or Path.cwd())
        agents_file = AgentsFile.load(task_root / settings.agents_file)
        # One Bedrock client serves every agent: its timeouts and attempts are the stack's.
        any_model = ModelSettings(
            model_id=settings.agents[settings.default_agent].model,
            max_attempts=settings.model_max_attempts,
            read_timeout_seconds=settings.model_read_timeout_seconds,
            connect_timeout_seconds=settings.model_connect_timeout_seconds,
        )
        bedrock = ModelClient.default_client(any_model, session=session) if session else None
        return cls(
            store=AgentStore(
                settings.table_name, client=session.client("dynamodb") if session else None
            ),
            agents=AgentCatalog.from_settings(
                settings,
                agents_file,
                bedrock=bedrock or _LazyBedrock(any_model),
                loader=toolset_loader,
            ),
            publisher=Publisher(
                settings.event_bus_name, client=session.client("events") if session else None
            ),
            runtime_version=settings.runtime_version,
            max_request_bytes=settings.max_request_bytes,
            ttl_days=settings.ttl_days,
            access=settings.access,
            reconciler_settings=settings.reconciler,
            _session=session,
        )


class _LazyBedrock:
    """One ``bedrock-runtime`` client for every agent of the container, created on first call.

    The api function never calls a model, so it never pays for building the client.
    """

    def __init__(self, settings: ModelSettings) -> None:
        self._settings = settings
        self._client: Any | None = None

    def __getattr__(self, name: str) -> Any:
        if self._client is None:
            self._client = ModelClient.default_client(self._settings)
        return getattr(self._client, name)


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
