"""Agent definitions in stack config: each bad case exits 2 naming its key path."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.project import copy_project
from typer.testing import CliRunner

from agentry_stacks.cli import app
from agentry_stacks.deploy.agents import resolve_agents, workspace
from agentry_stacks.deploy.config import load_stack_config

Edit = Callable[[dict[str, Any], Path], None]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the project with two extra toolsets: one that cannot import, one that clashes."""
    root = copy_project(tmp_path_factory.mktemp("project"))
    broken = root / "lambdas" / "broken"
    (broken / "acme_broken").mkdir(parents=True)
    (broken / "acme_broken" / "__init__.py").write_text("import acme_not_installed  # noqa\n")
    (broken / "pyproject.toml").write_text('[project]\nname = "acme-broken"\nversion = "1"\n')
    clash = root / "lambdas" / "clash"
    (clash / "acme_clash").mkdir(parents=True)
    (clash / "acme_clash" / "__init__.py").write_text(
        textwrap.dedent(
            '''
            from pydantic import BaseModel

            from agentry_runtime.tools import ToolContext, ToolRegistry

            registry = ToolRegistry()


            class Anything(BaseModel):
                """Input."""


            @registry.tool()
            def book_flight(args: Anything, ctx: ToolContext) -> str:
                """Another tool of the same name as the flight demo's."""
                return "booked elsewhere"
            '''
        )
    )
    (clash / "pyproject.toml").write_text('[project]\nname = "acme-clash"\nversion = "1"\n')
    workspace.cache_clear()
    return root


def _agents(config: dict[str, Any]) -> list[dict[str, Any]]:
    return list(config["agentry:agents"])


def _set(index: int, key: str, value: Any) -> Edit:
    def edit(config: dict[str, Any], _: Path) -> None:
        _agents(config)[index][key] = value

    return edit


def _drop(index: int, key: str) -> Edit:
    def edit(config: dict[str, Any], _: Path) -> None:
        del _agents(config)[index][key]

    return edit


def _duplicate_name(config: dict[str, Any], _: Path) -> None:
    _agents(config)[1]["name"] = "flights"


def _unknown_default(config: dict[str, Any], _: Path) -> None:
    config["agentry:defaultAgent"] = "concierge"


def _no_default_with_two_agents(config: dict[str, Any], _: Path) -> None:
    del config["agentry:defaultAgent"]


CASES: dict[str, tuple[Edit, str, str]] = {
    "unknown toolset": (
        _set(0, "tools", ["acme_nowhere:registry"]),
        "agentry:agents[0].tools[0]",
        "no distribution under lambdas/ provides 'acme_nowhere'",
    ),
    "unimportable toolset": (
        _set(1, "tools", ["acme_broken:registry"]),
        "agentry:agents[1].tools[0]",
        "cannot import acme_broken",
    ),
    "missing attribute": (
        _set(0, "tools", ["agentry_flights:nothing"]),
        "agentry:agents[0].tools[0]",
        "has no attribute 'nothing'",
    ),
    "not a registry": (
        _set(0, "tools", ["agentry_flights:inventory"]),
        "agentry:agents[0].tools[0]",
        "not a ToolRegistry",
    ),
    "not module:attr": (
        _set(0, "tools", ["agentry_flights"]),
        "agentry:agents[0].tools[0]",
        "is not module:attribute",
    ),
    "clashing tool names": (
        _set(0, "tools", ["agentry_flights:registry", "acme_clash:registry"]),
        "agentry:agents[0].tools[1]",
        "'book_flight': registered by two toolsets",
    ),
    "model outside the allowlist": (
        _set(1, "model", "meta.llama3-70b-instruct-v1:0"),
        "agentry:agents[1].model",
        "neither in agentry:models nor an agentry:inferenceProfiles id",
    ),
    "duplicate names": (_duplicate_name, "agentry:agents[1].name", "is also agents[0]"),
    "unknown default": (_unknown_default, "agentry:defaultAgent", "'concierge' is not the name"),
    "no default of two": (_no_default_with_two_agents, "agentry:defaultAgent", "required when"),
    "missing prompt file": (
        _set(0, "systemPromptFile", "prompts/none.md"),
        "agentry:agents[0].systemPromptFile",
        "no such file",
    ),
    "prompt outside the project": (
        _set(0, "systemPromptFile", "../../etc/passwd"),
        "agentry:agents[0].systemPromptFile",
        "outside the project",
    ),
    "two prompts": (
        _set(0, "systemPrompt", "Also this."),
        "agentry:agents[0].systemPrompt",
        "exactly one of systemPrompt or systemPromptFile",
    ),
    "no prompt": (
        _drop(0, "systemPromptFile"),
        "agentry:agents[0].systemPrompt",
        "exactly one of systemPrompt or systemPromptFile",
    ),
    "bad name": (_set(0, "name", "Flights!"), "agentry:agents[0].name", "match pattern"),
    "limit out of range": (_set(1, "maxSteps", 0), "agentry:agents[1].maxSteps", "greater than"),
    "tool timeout over the worker's": (
        _set(0, "toolTimeoutSeconds", 600),
        "agentry:agents[0].toolTimeoutSeconds",
        "must be below worker.timeoutSeconds",
    ),
}


def _write_stack(project: Path, name: str, edit: Edit) -> None:
    document = yaml.safe_load((project / "Pulumi.dev.yaml").read_text())
    edit(document["config"], project)
    (project / f"Pulumi.{name}.yaml").write_text(yaml.safe_dump(document))


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_agent_definition_exits_2_naming_the_key(project: Path, case: str) -> None:
    edit, key, reason = CASES[case]
    stack = f"bad{list(CASES).index(case)}"
    _write_stack(project, stack, edit)
    # WHEN the stack is planned THEN it exits 2 and the message names the key and the reason
    result = CliRunner().invoke(app, ["plan", stack, "--project-dir", str(project)])
    assert result.exit_code == 2, result.output
    lines = [line.strip() for line in result.output.splitlines()]
    assert any(line.startswith(f"{key}:") and reason in line for line in lines), result.output


def test_the_shipped_stacks_resolve_with_their_own_limits() -> None:
    # GIVEN dev's two agents WHEN resolved THEN each has its limits over the stack's defaults
    config = load_stack_config("dev")
    agents = resolve_agents(config)
    assert set(agents.agents) == {"flights", "support"}
    assert agents.default == "flights"
    support = agents.agents["support"].limits
    assert (support.max_steps, support.temperature) == (12, 0.0)
    assert agents.agents["flights"].limits.max_steps == config.agent.max_steps
    assert [d.name for d in agents.distributions()] == [
        "agentry-flights",
        "agentry-runtime",
        "agentry-support",
    ]
    # AND prod ships the flight agent alone
    prod = resolve_agents(load_stack_config("prod"))
    assert set(prod.agents) == {"flights"}
    assert [d.name for d in prod.distributions()] == ["agentry-flights", "agentry-runtime"]
