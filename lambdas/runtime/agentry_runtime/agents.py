"""Agent definitions: what each agent of a stack is, and the catalog the functions run them from.

An agent definition names a system prompt, toolsets (``module:attribute`` paths that resolve to
a :class:`~agentry_runtime.tools.ToolRegistry`), a model and limits. The stack program writes
the prompts and toolset paths into the bundle's agents file (:class:`AgentsFile`) and the models
and limits into the environment (:class:`~agentry_runtime.settings.FunctionSettings`); the
runtime joins the two into an :class:`AgentCatalog`. The runtime never learns a toolset's name
any other way: it imports what the definitions name.
"""

from __future__ import annotations

import functools
import importlib
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from agentry_runtime.errors import SettingsError, UnknownAgentError
from agentry_runtime.model import ModelClient, ModelSettings
from agentry_runtime.pricing import ModelPrice
from agentry_runtime.settings import AgentLimits, FunctionSettings, LoopSettings
from agentry_runtime.tools import ToolRegistry

__all__ = [
    "TOOLSET_PATTERN",
    "Agent",
    "AgentCatalog",
    "AgentSpec",
    "AgentsFile",
    "ToolSummary",
    "ToolsetLoader",
    "import_toolset",
]

#: ``package.module:attribute``: where a toolset's registry is found.
TOOLSET_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"

#: Resolves a toolset path to its registry (the default imports it).
ToolsetLoader = Callable[[str], ToolRegistry]

_FILE = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True)


class ToolSummary(BaseModel):
    """A tool as the API shows it: name, description, whether a human approves each call."""

    model_config = _FILE
    name: str
    description: str
    needs_approval: bool = False


class AgentSpec(BaseModel):
    """One agent of the agents file: what does not fit in the environment."""

    model_config = _FILE
    description: str = Field(min_length=1)
    system_prompt: str = Field(min_length=1)
    toolsets: list[str] = Field(min_length=1, description="module:attribute of each registry.")
    tools: list[ToolSummary] = Field(
        default_factory=list, description="The tools these toolsets registered, at build time."
    )


class AgentsFile(BaseModel):
    """The generated ``agentry_agents.json`` of a bundle."""

    model_config = _FILE
    schema_version: Literal[1] = 1
    agents: dict[str, AgentSpec] = Field(min_length=1)

    def dumps(self) -> bytes:
        """Canonical JSON (sorted keys), so the same definitions give the same bundle hash."""
        data = self.model_dump(by_alias=True, mode="json")
        return (json.dumps(data, sort_keys=True, indent=1, ensure_ascii=False) + "\n").encode()

    @classmethod
    def load(cls, path: Path) -> AgentsFile:
        """Read and validate an agents file; ``SettingsError`` naming the file and the field."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise SettingsError(f"agents file {path}: cannot read it ({exc.strerror})") from None
        except json.JSONDecodeError as exc:
            raise SettingsError(f"agents file {path}: not JSON ({exc.msg})") from None
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(map(str, error["loc"])) or "(document)"
            raise SettingsError(f"agents file {path}: {where}: {error['msg']}") from None


def import_toolset(path: str) -> ToolRegistry:
    """The registry at ``module:attribute``; ``SettingsError`` saying why it is not one."""
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise SettingsError(f"toolset {path!r}: expected module:attribute")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SettingsError(f"toolset {path!r}: cannot import {module_name} ({exc})") from exc
    registry = getattr(module, attribute, None)
    if registry is None:
        raise SettingsError(f"toolset {path!r}: {module_name} has no attribute {attribute!r}")
    if not isinstance(registry, ToolRegistry):
        raise SettingsError(f"toolset {path!r}: is a {type(registry).__name__}, not a ToolRegistry")
    return registry


@dataclass
class Agent:
    """One runnable agent: its prompt, its tools (every toolset merged), its model and limits."""

    name: str
    system_prompt: str
    tools: ToolRegistry
    model: ModelClient
    settings: LoopSettings = field(default_factory=LoopSettings)
    description: str = ""
    #: What the model costs; None leaves its calls unpriced.
    price: ModelPrice | None = None

    @property
    def model_id(self) -> str:
        """The model or inference profile this agent calls."""
        return self.model.model_id

    def needs_approval(self, tool: str) -> bool:
        """Whether a person approves each call of ``tool``: the definition's say, else the
        toolset's."""
        if tool in self.settings.approvals:
            return self.settings.approvals[tool]
        return tool in self.tools.names() and self.tools.get(tool).needs_approval

    def describe_tools(self) -> list[dict[str, Any]]:
        """The tools as the API shows them, with the approval rule this agent applies."""
        return [
            {**tool, "needsApproval": self.needs_approval(tool["name"])}
            for tool in self.tools.describe()
        ]


class AgentCatalog:
    """The agents a function can run, by name; each is built on first use and then reused."""

    def __init__(
        self,
        builders: Mapping[str, Callable[[], Agent]],
        *,
        default: str,
        summaries: Mapping[str, dict[str, Any]] | None = None,
    ) -> None:
        if default not in builders:
            raise SettingsError(f"default agent {default!r} is not one of {sorted(builders)}")
        self.default = default
        self._builders = dict(builders)
        self._summaries = dict(summaries or {})
        self._built: dict[str, Agent] = {}
        self._lock = threading.Lock()

    @classmethod
    def of(cls, *agents: Agent, default: str | None = None) -> AgentCatalog:
        """A catalog of ready agents (the first is the default unless ``default`` names one)."""
        if not agents:
            raise ValueError("agents: at least one agent is required")
        return cls(
            {agent.name: functools.partial(_ready, agent) for agent in agents},
            default=default or agents[0].name,
            summaries={
                agent.name: {
                    "description": agent.description,
                    "model": agent.model_id,
                    "tools": agent.describe_tools(),
                    "price": agent.price,
                }
                for agent in agents
            },
        )

    @classmethod
    def from_settings(
        cls,
        settings: FunctionSettings,
        agents_file: AgentsFile,
        *,
        bedrock: Any | None = None,
        loader: ToolsetLoader = import_toolset,
    ) -> AgentCatalog:
        """Join the environment's limits with the agents file; the names must be the same."""
        in_env, in_file = set(settings.agents), set(agents_file.agents)
        if in_env != in_file:
            raise SettingsError(
                f"agents file and environment disagree: only in the environment "
                f"{sorted(in_env - in_file)}, only in the file {sorted(in_file - in_env)}"
            )

        window = settings.access.approval_window_seconds

        def builder(name: str, spec: AgentSpec, limits: AgentLimits) -> Callable[[], Agent]:
            return lambda: _build(
                name,
                spec,
                limits,
                bedrock=bedrock,
                loader=loader,
                approval_window=window,
                client=settings,
            )

        return cls(
            {
                name: builder(name, agents_file.agents[name], limits)
                for name, limits in settings.agents.items()
            },
            default=settings.default_agent,
            summaries={
                name: {
                    "description": agents_file.agents[name].description,
                    "model": limits.model,
                    "tools": [
                        {
                            **t.model_dump(by_alias=True),
                            "needsApproval": limits.approvals.get(t.name, t.needs_approval),
                        }
                        for t in agents_file.agents[name].tools
                    ],
                    "price": limits.price,
                }
                for name, limits in settings.agents.items()
            },
        )

    def names(self) -> list[str]:
        """The agent names, sorted."""
        return sorted(self._builders)

    def __contains__(self, name: object) -> bool:
        return name in self._builders

    def get(self, name: str) -> Agent:
        """The agent called ``name`` (its toolsets imported on first use)."""
        if name not in self._builders:
            raise UnknownAgentError(name, self.names())
        with self._lock:
            if name not in self._built:
                self._built[name] = self._builders[name]()
            return self._built[name]

    def describe(self, name: str) -> dict[str, Any]:
        """``{"description", "model", "tools", "price"}`` of an agent, without importing its
        toolsets."""
        if name not in self._builders:
            raise UnknownAgentError(name, self.names())
        return dict(self._summaries.get(name) or {})


def _ready(agent: Agent) -> Agent:
    return agent


def _build(
    name: str,
    spec: AgentSpec,
    limits: AgentLimits,
    *,
    bedrock: Any | None,
    loader: ToolsetLoader,
    approval_window: int,
    client: FunctionSettings | None = None,
) -> Agent:
    tools = ToolRegistry(default_timeout_seconds=limits.tool_timeout_seconds)
    for path in spec.toolsets:
        try:
            tools.include(loader(path))
        except ValueError as exc:  # two toolsets registered the same tool name
            raise SettingsError(f"agent {name!r}: toolset {path!r}: {exc}") from exc
    model = ModelClient(
        ModelSettings(
            model_id=limits.model,
            max_tokens=limits.max_output_tokens,
            temperature=limits.temperature,
            prompt_caching=limits.prompt_caching,
            # The stack's Bedrock client: a chain's worst case is the client's real one.
            **(
                {
                    "max_attempts": client.model_max_attempts,
                    "read_timeout_seconds": client.model_read_timeout_seconds,
                    "connect_timeout_seconds": client.model_connect_timeout_seconds,
                }
                if client is not None
                else {}
            ),
        ),
        client=bedrock,
    )
    return Agent(
        name=name,
        system_prompt=spec.system_prompt,
        tools=tools,
        model=model,
        settings=limits.loop_settings(approval_window_seconds=approval_window),
        description=spec.description,
        price=limits.price,
    )
