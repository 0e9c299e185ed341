"""Scripted offline runs: any agent plays a script; running out is an error, never success."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from support.project import REPO
from typer.testing import CliRunner

from agentry_offline.script import Script, ScriptError
from agentry_stacks.cli import app
from agentry_stacks.local import LocalEnvironment
from agentry_stacks.offline import plan as plan_module

REFUND = REPO / "scripts" / "support-refund.json"
REFUND_GOAL = "My rain jacket from order A-1002 arrived torn, please refund it"


@pytest.fixture
def planned_once(monkeypatch: pytest.MonkeyPatch, dev_graph_document: dict[str, Any]) -> None:
    """The CLI gets the session's dev graph instead of planning again."""
    monkeypatch.setattr(
        plan_module, "plan_stack", lambda stack, project_dir=None: dev_graph_document
    )


def test_the_support_agent_completes_its_script_with_one_refund(dev_graph: dict[str, Any]) -> None:
    # GIVEN the dev stack's second agent and the shipped script
    with LocalEnvironment(graph=dev_graph, script=Script.load(REFUND)) as env:
        # WHEN it runs
        agent_id = env.start(REFUND_GOAL, agent="support")
        env.run_until_idle()
        view = env.agent(agent_id)
        # THEN it completes with the scripted calls, each executed once
        assert view["status"] == "COMPLETED", view
        assert [(p["toolName"], p["status"]) for p in view["plan"]] == [
            ("get_order", "COMPLETED"),
            ("issue_refund", "COMPLETED"),
        ]
        # AND the refund landed once in the toolset's own table, from the stack's seed orders
        dynamodb = env.clients["dynamodb"]
        order = dynamodb.get_item(
            TableName="agentry-dev-support-orders", Key={"orderId": {"S": "A-1002"}}
        )["Item"]
        assert order["refundedCents"] == {"N": "8900"}
        assert env.model_failure() is None


def test_a_script_that_runs_out_exits_1_naming_the_turn(planned_once: None, tmp_path: Path) -> None:
    script = tmp_path / "short.json"
    script.write_text(
        json.dumps(
            {"turns": [{"toolUse": [{"name": "get_order", "input": {"order_id": "A-1001"}}]}]}
        )
    )
    result = CliRunner().invoke(
        app,
        [
            "local",
            "run",
            "--agent",
            "support",
            "--script",
            str(script),
            "--goal",
            "Where is A-1001?",
            "--json",
        ],
    )
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["status"] != "COMPLETED"
    assert "script turn 2: the script ran out" in report["modelFailure"]
    assert "script turn 2" in result.stderr


def test_a_script_naming_a_tool_the_agent_lacks_exits_1(planned_once: None, tmp_path: Path) -> None:
    script = tmp_path / "wrong.json"
    script.write_text(json.dumps({"turns": [{"toolUse": [{"name": "book_flight", "input": {}}]}]}))
    result = CliRunner().invoke(
        app,
        ["local", "run", "--agent", "support", "--script", str(script), "--goal", "Refund A-1001"],
    )
    assert result.exit_code == 1, result.output
    assert "script turn 1: toolUse[0] names tool 'book_flight'" in result.stderr


def test_without_a_script_another_agent_fails_clearly(planned_once: None) -> None:
    result = CliRunner().invoke(
        app, ["local", "run", "--agent", "support", "--goal", "Refund A-1001", "--json"]
    )
    assert result.exit_code == 1, result.output
    assert "plans only for the flight demo" in json.loads(result.stdout)["modelFailure"]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("[", "not JSON"),
        ({"turns": []}, "turns: List should have at least 1 item"),
        ({"turns": [{}]}, "turns[0]: a turn has exactly one of toolUse or text"),
        ({"turns": [{"text": "a", "toolUse": [{"name": "x"}]}]}, "turns[0]: a turn has exactly"),
        ({"turns": [{"toolUse": [{"name": "bad name"}]}]}, "turns[0].toolUse[0].name"),
        ({"turns": [{"text": "x"}], "extra": 1}, "extra: Extra inputs are not permitted"),
    ],
)
def test_a_bad_script_exits_2_naming_the_field(
    planned_once: None, tmp_path: Path, document: Any, message: str
) -> None:
    script = tmp_path / "bad.json"
    script.write_text(document if isinstance(document, str) else json.dumps(document))
    with pytest.raises(ScriptError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Script.load(script)
    result = CliRunner().invoke(
        app, ["local", "run", "--script", str(script), "--goal", "anything"]
    )
    assert result.exit_code == 2, result.output


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_no_stack_bundle_ships_the_offline_tooling(stack: str) -> None:
    # GIVEN each shipped stack's plan WHEN its bundle is opened
    graph = plan_module.plan_stack(stack)
    archives = {
        r["inputs"]["code"]["archive"]
        for r in graph["resources"]
        if r["type"] == "aws:lambda/function:Function"
    }
    (archive,) = archives
    with zipfile.ZipFile(REPO / archive) as bundle:
        names = bundle.namelist()
        sources = b"".join(bundle.read(n) for n in names if n.startswith("agentry_"))
    # THEN it holds no offline model, fake endpoint, event builders or fault injection
    assert not [n for n in names if n.startswith("agentry_offline/")]
    for marker in (b"FakeBedrockServer", b"OfflineModel", b"http_api_event", b"with_tool_faults"):
        assert marker not in sources, marker
    assert "jsonschema/__init__.py" not in names
