"""A team brings its own toolset and agent: a new folder under lambdas/ and a stack file.

Everything runs on a copy of the project: the new toolset is never installed, the runtime
package is not touched, and the plan, the bundle, the worker role, the policy check and a
scripted local run all pick the toolset up from its folder.
"""

from __future__ import annotations

import json
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.project import REPO, copy_project, tree_digest
from typer.testing import CliRunner

from agentry_stacks.cli import app

STACK = "team"
TOOLSET = textwrap.dedent(
    '''
    """A team's toolset: forecasts, and alerts that must go out once per call."""

    from __future__ import annotations

    import os
    from pathlib import Path

    from pydantic import BaseModel, ConfigDict, Field

    from agentry_runtime.tools import ToolContext, ToolRegistry

    registry = ToolRegistry()


    class City(BaseModel):
        """Input of get_forecast."""

        model_config = ConfigDict(extra="forbid")
        city: str = Field(min_length=2)


    class Alert(BaseModel):
        """Input of send_alert."""

        model_config = ConfigDict(extra="forbid")
        city: str = Field(min_length=2)
        message: str = Field(min_length=1)


    @registry.tool()
    def get_forecast(args: City, ctx: ToolContext) -> dict:
        """Tomorrow's forecast for a city."""
        return {"city": args.city, "forecast": "storms", "high_c": 11}


    @registry.tool()
    def send_alert(args: Alert, ctx: ToolContext) -> dict:
        """Send a weather alert to the city's subscribers."""
        log = Path(os.environ["WEATHER_ALERT_LOG"])
        with log.open("a") as handle:
            handle.write(f"{ctx.tool_use_id} {args.city}: {args.message}\\n")
        return {"sent": True}
    '''
)
PYPROJECT = textwrap.dedent(
    """
    [project]
    name = "acme-weather"
    version = "1.0.0"
    dependencies = ["agentry-runtime"]

    [tool.agentry.toolset]
    statements = [
        {{ Sid = "ReadWeatherParameters", Action = ["ssm:GetParameter"], Resource = [
            "arn:aws:ssm:${{region}}:${{account_id}}:parameter/weather/*"
        ] }},
    ]
    environment = {{ WEATHER_ALERT_LOG = "{log}" }}
    """
)
SCRIPT = {
    "turns": [
        {"toolUse": [{"name": "get_forecast", "input": {"city": "Boston"}}]},
        {
            "toolUse": [
                {"name": "send_alert", "input": {"city": "Boston", "message": "Storms ahead"}},
                {"name": "get_forecast", "input": {"city": "Denver"}},
            ]
        },
        {"text": "Boston is warned about tomorrow's storms."},
    ]
}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the project with the team's toolset folder and a stack whose agent uses it."""
    root = copy_project(tmp_path_factory.mktemp("project"))
    log = root / "alerts.log"
    folder = root / "lambdas" / "weather"
    (folder / "acme_weather").mkdir(parents=True)
    (folder / "acme_weather" / "__init__.py").write_text(TOOLSET)
    (folder / "pyproject.toml").write_text(PYPROJECT.format(log=log))
    stack = yaml.safe_load((root / "Pulumi.dev.yaml").read_text())
    stack["config"]["agentry:agents"] = [
        {
            "name": "weather",
            "description": "Warns cities about bad weather.",
            "systemPrompt": "You warn cities about tomorrow's bad weather.",
            "tools": ["acme_weather:registry"],
            "maxSteps": 8,
        }
    ]
    stack["config"]["agentry:defaultAgent"] = "weather"
    (root / f"Pulumi.{STACK}.yaml").write_text(yaml.safe_dump(stack))
    (root / "policies" / f"{STACK}.json").write_text((REPO / "policies" / "dev.json").read_text())
    (root / "script.json").write_text(json.dumps(SCRIPT))
    return root


def _run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def _graph(project: Path) -> dict[str, Any]:
    result = _run("plan", STACK, "--json", "--project-dir", str(project))
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def _worker_statements(graph: dict[str, Any]) -> list[dict[str, Any]]:
    (policy,) = [
        r
        for r in graph["resources"]
        if r["type"] == "aws:iam/rolePolicy:RolePolicy" and r["name"] == "worker-policy"
    ]
    return list(json.loads(policy["inputs"]["policy"])["Statement"])


def test_the_plan_ships_the_new_toolset_and_grants_exactly_its_statements(project: Path) -> None:
    runtime_before = tree_digest(project / "lambdas" / "runtime")
    # WHEN the team's stack is planned
    graph = _graph(project)
    functions = [r for r in graph["resources"] if r["type"] == "aws:lambda/function:Function"]
    # THEN the bundle holds the runtime and the team's toolset, and no other toolset
    (archive,) = {f["inputs"]["code"]["archive"] for f in functions}
    path = Path(archive) if Path(archive).is_absolute() else project / archive
    with zipfile.ZipFile(path) as bundle:
        names = bundle.namelist()
        agents = json.loads(bundle.read("agentry_agents.json"))
    assert "acme_weather/__init__.py" in names
    assert not [n for n in names if n.startswith(("agentry_flights/", "agentry_support/"))]
    assert agents["agents"]["weather"]["toolsets"] == ["acme_weather:registry"]
    assert {t["name"] for t in agents["agents"]["weather"]["tools"]} == {
        "get_forecast",
        "send_alert",
    }
    # AND the worker's role holds the declared statement, placeholders filled in
    [grant] = [s for s in _worker_statements(graph) if s.get("Sid") == "ReadWeatherParameters"]
    assert grant["Resource"] == ["arn:aws:ssm:us-east-1:123456789012:parameter/weather/*"]
    # AND only the worker gets the toolset's variable
    worker, api = (
        next(f for f in functions if f["name"] == f"{name}-function") for name in ("worker", "api")
    )
    assert "WEATHER_ALERT_LOG" in worker["inputs"]["environment"]["variables"]
    assert "WEATHER_ALERT_LOG" not in api["inputs"]["environment"]["variables"]
    # AND nothing under the runtime package changed
    assert tree_digest(project / "lambdas" / "runtime") == runtime_before
    assert tree_digest(REPO / "lambdas" / "runtime") == runtime_before


def test_the_scripted_agent_runs_each_tool_call_once(project: Path) -> None:
    # WHEN the team's agent runs its script on the local environment
    result = _run(
        "local",
        "run",
        "--stack",
        STACK,
        "--agent",
        "weather",
        "--script",
        str(project / "script.json"),
        "--goal",
        "Warn Boston if tomorrow brings storms",
        "--json",
        "--project-dir",
        str(project),
    )
    # THEN it completes with the scripted answer
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["status"] == "COMPLETED"
    assert report["agent"] == "weather"
    assert report["answer"].endswith("Boston is warned about tomorrow's storms.")
    assert report["toolCalls"] == {"get_forecast": 2, "send_alert": 1}
    # AND the side effect ran exactly once for its one call
    lines = (project / "alerts.log").read_text().splitlines()
    assert len(lines) == 1
    assert lines[0].endswith("Boston: Storms ahead")


def test_the_policy_pack_judges_a_toolset_statement_like_any_other(project: Path) -> None:
    # GIVEN the toolset asks for every S3 action on every bucket
    pyproject = project / "lambdas" / "weather" / "pyproject.toml"
    original = pyproject.read_text()
    pyproject.write_text(
        original.replace('"ssm:GetParameter"', '"s3:*"').replace(
            '"arn:aws:ssm:${region}:${account_id}:parameter/weather/*"', '"*"'
        )
    )
    try:
        from agentry_stacks.deploy.agents import workspace

        workspace.cache_clear()
        # WHEN the stack is checked THEN a mandatory violation fails it
        result = _run("check", STACK, "--project-dir", str(project), "--json")
        assert result.exit_code == 1, result.output
        report = json.loads(result.stdout)
        assert any("worker-policy" in v["resource"] for v in report["violations"])
    finally:
        pyproject.write_text(original)
        workspace.cache_clear()
