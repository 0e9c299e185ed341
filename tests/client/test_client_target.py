"""Which API and region ``agentry agents`` calls: stack outputs (through the Pulumi CLI, here a
fake runner), URLs and the local server."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from agentry_stacks.client import LOCAL_PORT, Target, TargetError, resolve_target
from agentry_stacks.client.target import region_of_url, stack_outputs

ENDPOINT = "https://a1b2c3d4e5.execute-api.eu-west-3.amazonaws.com"


class FakePulumi:
    """Runs ``pulumi`` by answering ``stdout`` and exit ``returncode``; records the calls."""

    def __init__(self, stdout: str = "", *, returncode: int = 0, stderr: str = "") -> None:
        self.answer = (returncode, stdout, stderr)
        self.calls: list[tuple[list[str], Path | None]] = []

    def __call__(self, argv: Sequence[str], cwd: Path | None) -> subprocess.CompletedProcess[str]:
        self.calls.append((list(argv), cwd))
        returncode, stdout, stderr = self.answer
        return subprocess.CompletedProcess(list(argv), returncode, stdout, stderr)


def test_a_stack_is_called_at_its_api_endpoint_in_the_region_of_its_host() -> None:
    # GIVEN a stack whose outputs name its API
    runner = FakePulumi(json.dumps({"apiEndpoint": ENDPOINT, "tableName": "t"}))
    # WHEN it is the target
    target = resolve_target(stack="prod", runner=runner, project_dir=Path("/repo"))
    # THEN the CLI was asked for exactly that stack's outputs, and the region is the host's
    assert runner.calls == [
        (["pulumi", "stack", "output", "--json", "--stack", "prod"], Path("/repo"))
    ]
    assert target == Target(ENDPOINT, "eu-west-3")
    assert target.url_for("/agents") == ENDPOINT + "/agents"


def test_region_wins_over_the_host_and_a_custom_domain_needs_it() -> None:
    assert resolve_target(url=ENDPOINT, region="us-west-2").region == "us-west-2"
    with pytest.raises(TargetError, match="pass --region"):
        resolve_target(url="https://agents.example.com/")
    custom = resolve_target(url="https://agents.example.com/v1/", default_region="ap-south-1")
    assert custom == Target("https://agents.example.com/v1", "ap-south-1")


def test_local_is_127_0_0_1_on_the_port_in_the_configured_or_default_region() -> None:
    assert resolve_target(local=True) == Target(f"http://127.0.0.1:{LOCAL_PORT}", "us-east-1")
    assert resolve_target(local=True, port=9000, default_region="eu-west-1") == Target(
        "http://127.0.0.1:9000", "eu-west-1"
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "give exactly one of --stack STACK, --url URL or --local"),
        ({"url": ENDPOINT, "local": True}, "(got --url, --local)"),
        ({"url": "ftp://example.com"}, "not an http(s) URL"),
        ({"url": ENDPOINT + "?x=1"}, "must not carry a query"),
        ({"local": True, "port": 70000}, "not a TCP port"),
        ({"local": True, "region": "Mars-1"}, "not an AWS region name"),
    ],
)
def test_bad_options_are_target_errors(options: dict[str, object], message: str) -> None:
    with pytest.raises(TargetError) as refused:
        resolve_target(**options)  # type: ignore[arg-type]
    assert message in str(refused.value)


def test_stack_outputs_errors_say_what_to_do() -> None:
    # WHEN the Pulumi CLI is not installed
    def missing(argv: Sequence[str], cwd: Path | None) -> subprocess.CompletedProcess[str]:
        raise FileNotFoundError("pulumi")

    with pytest.raises(TargetError, match=r"no `pulumi` on PATH.*--url"):
        stack_outputs("dev", runner=missing)
    # WHEN it fails (no such stack, not logged in): its own words are passed on
    failing = FakePulumi(returncode=255, stderr="error: no stack named 'qa' found\n")
    with pytest.raises(TargetError, match=r"exit 255.*no stack named 'qa' found"):
        stack_outputs("qa", runner=failing)
    # WHEN the stack exists but was never deployed
    with pytest.raises(TargetError, match=r"no apiEndpoint output.*deployed"):
        resolve_target(stack="dev", runner=FakePulumi("{}"))
    with pytest.raises(TargetError, match="did not print JSON"):
        stack_outputs("dev", runner=FakePulumi("Current stack outputs (0)"))


@pytest.mark.parametrize(
    ("url", "region"),
    [
        (ENDPOINT, "eu-west-3"),
        ("https://abc.execute-api.us-gov-west-1.amazonaws.com/prod", "us-gov-west-1"),
        ("https://abc.execute-api.cn-north-1.amazonaws.com.cn", "cn-north-1"),
        ("https://agents.example.com", None),
        ("https://execute-api.us-east-1.amazonaws.com.evil.example", None),
    ],
)
def test_region_of_url(url: str, region: str | None) -> None:
    assert region_of_url(url) == region
