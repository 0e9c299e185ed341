"""``agentry agents`` against ``agentry local serve`` (in-process, a free port), and its errors.

Credentials come from the usual chain, here the environment (as `local serve` prints them);
every error is one line on stderr naming what is wrong, never a traceback.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from served_api import ALICE_KEY, BOB_KEY, Served, serving
from typer.testing import CliRunner

from agentry_stacks import cli
from agentry_stacks.client import LOCAL_PORT

GOAL = "Book a flight from New York to San Francisco for tomorrow"


@pytest.fixture(scope="module")
def served(prod_graph_document: dict[str, Any]) -> Iterator[Served]:
    with serving(prod_graph_document) as running:
        yield running


@pytest.fixture(autouse=True)
def _alice_in_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Alice's key in the environment, and no AWS config files of this machine."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ALICE_KEY.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", ALICE_KEY.secret_access_key)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    for name in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)


def _agents(*args: str) -> Result:
    return CliRunner().invoke(cli.app, ["agents", *args])


def _local(served: Served) -> list[str]:
    return ["--local", "--port", str(served.server.port)]


def _no_traceback(result: Result) -> None:
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_start_get_approve_and_watch_from_the_command_line(served: Served) -> None:
    # WHEN Alice starts an agent
    started = _agents("start", "--goal", GOAL, "--json", *_local(served))
    assert started.exit_code == 0, started.output
    agent_id = json.loads(started.stdout)["agentId"]
    # THEN get shows it waiting for her approval, as JSON and as a table
    got = _agents("get", agent_id, "--json", *_local(served))
    assert got.exit_code == 0, got.output
    assert json.loads(got.stdout)["status"] == "AWAITING_APPROVAL"
    table = _agents("get", agent_id, *_local(served))
    assert table.exit_code == 0, table.output
    assert "AWAITING_APPROVAL" in table.stdout
    assert "book_flight" in table.stdout
    # AND watch exits 3: a person must act
    waiting = _agents("watch", agent_id, *_local(served))
    assert waiting.exit_code == 3, waiting.output
    assert "AWAITING_APPROVAL" in waiting.stdout
    # WHEN she lists the held calls, then approves them all
    shown = _agents("approve", agent_id, "--json", *_local(served))
    (call,) = json.loads(shown.stdout)["calls"]
    assert call["decision"] == "PENDING"
    approved = _agents("approve", agent_id, "--all", *_local(served))
    assert approved.exit_code == 0, approved.output
    assert "APPROVED" in approved.stdout
    # THEN watch --json prints the rest of the timeline and exits 0 on COMPLETED
    done = _agents("watch", agent_id, "--json", *_local(served))
    assert done.exit_code == 0, done.output
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert events[-1] == {
        "kind": "status",
        "agentId": agent_id,
        "status": "COMPLETED",
        "previous": None,
    }
    assert any(e["kind"] == "message" for e in events)
    # AND the list shows it
    listed = _agents("list", "--json", *_local(served))
    assert agent_id in {a["agentId"] for a in json.loads(listed.stdout)["agents"]}


def test_start_with_watch_exits_as_watch_does(served: Served) -> None:
    result = _agents("start", "--goal", GOAL, "--watch", *_local(served))
    assert result.exit_code == 3, result.output
    assert "started" in result.stdout
    assert "AWAITING_APPROVAL" in result.stdout


def test_an_api_error_names_the_field(served: Served) -> None:
    # WHEN Alice asks for an agent that does not exist
    missing = _agents("get", "agent-" + "0" * 32, *_local(served))
    # THEN exit 2, one line naming the field and the reason
    assert missing.exit_code == 2
    assert missing.stdout == ""
    assert "404 AgentNotFound: id: no such agent" in missing.stderr
    _no_traceback(missing)
    # WHEN a goal is blank, or an id malformed
    blank = _agents("start", "--goal", "   ", *_local(served))
    assert blank.exit_code == 2
    assert "goal: must not be blank" in blank.stderr
    malformed = _agents("resume", "agent-x", "--instruction", "go", *_local(served))
    assert malformed.exit_code == 2
    assert "id: not an agent id" in malformed.stderr
    # WHEN a state does not allow the request
    started = json.loads(_agents("start", "--goal", GOAL, "--json", *_local(served)).stdout)
    resumed = _agents("resume", started["agentId"], "--instruction", "go", *_local(served))
    assert resumed.exit_code == 2
    assert "409" in resumed.stderr
    assert "status:" in resumed.stderr
    _no_traceback(resumed)


def test_another_callers_agent_is_not_found(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent_id = json.loads(_agents("start", "--goal", GOAL, "--json", *_local(served)).stdout)[
        "agentId"
    ]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", BOB_KEY.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", BOB_KEY.secret_access_key)
    result = _agents("cancel", agent_id, *_local(served))
    assert result.exit_code == 2
    assert "AgentNotFound: id: no such agent" in result.stderr


def test_a_refused_signature_is_reported(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    result = _agents("list", *_local(served))
    assert result.exit_code == 2
    assert "403" in result.stderr
    assert "signature" in result.stderr
    _no_traceback(result)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_no_server_is_a_clear_network_error() -> None:
    result = _agents("list", "--local", "--port", str(_closed_port()))
    assert result.exit_code == 1
    assert "cannot reach 127.0.0.1:" in result.stderr
    assert "connection refused" in result.stderr
    _no_traceback(result)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["list"], "give exactly one of --stack", id="no-target"),
        pytest.param(
            ["list", "--local", "--url", "http://127.0.0.1:1"], "got --url, --local", id="two"
        ),
        pytest.param(["list", "--url", "ftp://x"], "not an http(s) URL", id="bad-url"),
        pytest.param(["list", "--local", "--region", "mars"], "not an AWS region", id="region"),
        pytest.param(
            ["approve", "agent-x", "--all", "--reject", "t", "--local"],
            "give one of --all, --none",
            id="approve-modes",
        ),
    ],
)
def test_usage_errors_exit_2(args: list[str], message: str) -> None:
    result = _agents(*args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    _no_traceback(result)


def test_stack_without_the_pulumi_cli_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no pulumi here
    result = _agents("get", "agent-" + "0" * 32, "--stack", "dev")
    assert result.exit_code == 2
    assert "no `pulumi` on PATH" in result.stderr
    assert "--url" in result.stderr
    _no_traceback(result)


def test_local_serve_refuses_a_malformed_key_before_starting() -> None:
    result = CliRunner().invoke(cli.app, ["local", "serve", "--key", "AKIA=nosecret"])
    assert result.exit_code == 2
    assert "ACCESS_KEY_ID=SECRET:PRINCIPAL_ARN" in result.stderr
    _no_traceback(result)


def test_the_cli_and_the_client_agree_on_the_local_port() -> None:
    assert cli.DEFAULT_LOCAL_PORT == LOCAL_PORT
