"""A stack's agent definitions, resolved: prompts read, toolsets imported, limits merged.

:func:`resolve_agents` turns ``agentry:agents`` into what the program ships: the bundle's agents
file, each agent's model and limits for the functions' environment, and the distributions the
bundle must hold (the runtime plus the toolsets the agents name). Every problem is reported with
its key path (``agentry:agents[1].tools[0]``) before any resource is declared.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from agentry_runtime.agents import AgentsFile, AgentSpec, ToolSummary
from agentry_runtime.settings import AgentLimits
from agentry_runtime.tools import ToolRegistry
from agentry_stacks.deploy.config import ConfigError, EnvironmentConfig, Problem
from agentry_stacks.deploy.toolsets import Distribution, DistributionError, Workspace

__all__ = ["ResolvedAgent", "ResolvedAgents", "resolve_agents", "workspace"]

_AGENTS = "agentry:agents"


@dataclass(frozen=True)
class ResolvedAgent:
    """One agent definition, ready to ship."""

    name: str
    spec: AgentSpec
    limits: AgentLimits
    toolsets: tuple[Distribution, ...]


@dataclass(frozen=True)
class ResolvedAgents:
    """Every agent of a stack, the default one, and where their toolsets come from."""

    agents: dict[str, ResolvedAgent]
    default: str
    workspace: Workspace

    def agents_file(self) -> AgentsFile:
        """The bundle's agents file."""
        return AgentsFile(agents={name: agent.spec for name, agent in self.agents.items()})

    def limits(self) -> dict[str, AgentLimits]:
        """Each agent's model and limits, for the functions' environment."""
        return {name: agent.limits for name, agent in self.agents.items()}

    def distributions(self) -> list[Distribution]:
        """The runtime and every distribution the agents' toolsets need, sorted by name."""
        names = {self.workspace.runtime.name}
        for agent in self.agents.values():
            names.update(dist.name for dist in agent.toolsets)
        return self.workspace.closure(sorted(names))

    def toolsets(self) -> list[Distribution]:
        """The distributions that provide the agents' toolsets (each once), sorted by name."""
        found = {dist.name: dist for agent in self.agents.values() for dist in agent.toolsets}
        return [found[name] for name in sorted(found)]


@functools.cache
def workspace(lambdas_dir: Path) -> Workspace:
    """The distributions of a ``lambdas/`` folder (read once per process and folder)."""
    return Workspace.discover(lambdas_dir)


def resolve_agents(config: EnvironmentConfig) -> ResolvedAgents:
    """Read prompt files and import toolsets; ``ConfigError`` naming every bad key."""
    problems: list[Problem] = []
    try:
        space = workspace(config.project_dir.resolve() / "lambdas")
    except DistributionError as exc:
        raise ConfigError([Problem(_AGENTS, str(exc))]) from None
    resolved: dict[str, ResolvedAgent] = {}
    for index, definition in enumerate(config.agents):
        path = f"{_AGENTS}[{index}]"
        prompt = definition.system_prompt
        if definition.system_prompt_file is not None:
            prompt, problem = _read_prompt(config.project_dir, definition.system_prompt_file)
            if problem:
                problems.append(Problem(f"{path}.systemPromptFile", problem))
        merged = ToolRegistry()
        toolsets: list[Distribution] = []
        for position, toolset in enumerate(definition.tools):
            try:
                registry, dist = space.load_toolset(toolset)
                merged.include(registry)
            except DistributionError as exc:
                problems.append(Problem(f"{path}.tools[{position}]", str(exc)))
                continue
            except ValueError as exc:  # the same tool name in two of the agent's toolsets
                problems.append(Problem(f"{path}.tools[{position}]", f"{toolset!r}: {exc}"))
                continue
            toolsets.append(dist)
        for key, named in (
            ("toolBudgets", definition.tool_budgets),
            ("approvals", definition.approvals),
        ):
            problems.extend(
                Problem(f"{path}.{key}.{tool}", f"no tool {tool!r} in the agent's toolsets")
                for tool in named
                if toolsets and tool not in merged.names()
            )
        if prompt is None or problems:
            continue
        resolved[definition.name] = ResolvedAgent(
            name=definition.name,
            spec=AgentSpec(
                description=definition.description,
                system_prompt=prompt,
                toolsets=list(definition.tools),
                tools=[ToolSummary.model_validate(tool) for tool in merged.describe()],
            ),
            limits=AgentLimits.model_validate(config.limits(definition)),
            toolsets=tuple(toolsets),
        )
    if problems:
        raise ConfigError(problems)
    return ResolvedAgents(agents=resolved, default=config.default_agent_name, workspace=space)


def _read_prompt(project_dir: Path, relative: str) -> tuple[str | None, str | None]:
    path = (project_dir / relative).resolve()
    if not path.is_relative_to(project_dir.resolve()):
        return None, f"{relative!r} is outside the project"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, f"{relative!r}: no such file"
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"{relative!r}: cannot be read ({exc})"
    if not text.strip():
        return None, f"{relative!r} is empty"
    return text, None
