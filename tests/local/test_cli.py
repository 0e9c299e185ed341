"""``agentry local run``: exit codes and the ``--json`` report."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from agentry_stacks.cli import app
from agentry_stacks.offline import plan as plan_module

GOAL = "Book a flight from New York to San Francisco for tomorrow"
REPORT_KEYS = {
    "agentId",
    "status",
    "steps",
    "toolCalls",
    "bookings",
    "recoveries",
    "notifications",
    "runtimeVersion",
    "model",
}


@pytest.fixture
def planned_once(monkeypatch: pytest.MonkeyPatch, dev_graph_document: dict[str, Any]) -> None:
    """The CLI gets the session's dev graph instead of planning again (seconds per plan)."""
    monkeypatch.setattr(
        plan_module, "plan_stack", lambda stack, project_dir=None: dev_graph_document
    )


def test_completed_run_exits_0_with_the_json_report() -> None:
    # WHEN the demo goal runs with --json (planning the dev stack for real)
    result = CliRunner().invoke(app, ["local", "run", "--goal", GOAL, "--json"])
    # THEN it exits 0 and prints one JSON object with the public keys
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report.keys() >= REPORT_KEYS
    assert report["status"] == "COMPLETED"
    assert report["toolCalls"] == {"book_flight": 1, "get_flight_info": 1}
    [booking] = report["bookings"]
    assert set(booking) == {"origin", "destination", "date", "confirmation"}
    assert report["model"]["offline"] is True
    assert report["model"]["label"] == "[offline model]"
    assert report["notifications"] == []


@pytest.mark.usefixtures("planned_once")
def test_a_tool_that_always_fails_exits_3() -> None:
    # WHEN book_flight always fails
    result = CliRunner().invoke(
        app, ["local", "run", "--goal", GOAL, "--fail-tool", "book_flight", "--json"]
    )
    # THEN the agent needs a human: exit 3, a notification naming it, recoveries counted
    assert result.exit_code == 3, result.output
    report = json.loads(result.stdout)
    assert report["status"] == "NEEDS_HUMAN"
    assert report["bookings"] == []
    assert report["recoveries"] >= 1
    assert [n["message"]["agentId"] for n in report["notifications"]] == [report["agentId"]]


@pytest.mark.usefixtures("planned_once")
def test_live_output_without_json() -> None:
    # WHEN the run is not --json
    result = CliRunner().invoke(app, ["local", "run", "--goal", GOAL])
    # THEN it prints progress and a summary
    assert result.exit_code == 0, result.output
    assert "COMPLETED" in result.output
    assert "book_flight" in result.output
    assert "[offline model]" in result.output


@pytest.mark.parametrize(
    "arguments",
    [
        ["--fail-tool", "no_such_tool"],
        ["--stack", "no-such-stack"],
        ["--throttle", "-1"],
        ["--goal", ""],
    ],
)
def test_usage_errors_exit_2(arguments: list[str]) -> None:
    # WHEN an option is wrong THEN the command exits 2 before running anything
    result = CliRunner().invoke(app, ["local", "run", "--goal", GOAL, *arguments])
    assert result.exit_code == 2, result.output
