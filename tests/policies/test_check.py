"""The offline check: enforcement semantics, config validation and the CLI's exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from policy_graphs import PACK_CONFIG, function, graph, queue, queue_policy, table
from pulumi_policy import EnforcementLevel, ResourceValidationPolicy
from typer.testing import CliRunner

from agentry_policies import ALL_POLICIES
from agentry_stacks.cli import app
from agentry_stacks.offline.check import (
    CheckError,
    resolve_enforcement,
    run_check,
    validate_pack_config,
)

_PITR = next(p for p in ALL_POLICIES if p.name == "dynamodb-pitr")


def _noop(args: Any, report: Any) -> None:
    return None


@pytest.mark.parametrize(
    ("config", "own", "expected"),
    [
        ({"dynamodb-pitr": "advisory", "all": "disabled"}, EnforcementLevel.MANDATORY, "advisory"),
        ({"all": {"enforcementLevel": "advisory"}}, EnforcementLevel.MANDATORY, "advisory"),
        ({}, EnforcementLevel.ADVISORY, "advisory"),
        ({}, None, "mandatory"),
    ],
)  # fmt: skip
def test_enforcement_precedence(config: dict[str, Any], own: Any, expected: str) -> None:
    # GIVEN a policy with its own level (or none) and a pack config
    policy = ResourceValidationPolicy("p", "A test policy.", _noop, enforcement_level=own)
    named = {("p" if k == "dynamodb-pitr" else k): v for k, v in config.items()}
    # THEN the policy's entry wins, then "all", then its own level, then the pack default
    assert resolve_enforcement(policy, named).value == expected


def test_disabled_policy_is_skipped_and_levels_are_reported() -> None:
    # GIVEN a table without PITR or deletion protection
    bad = graph(table(pointInTimeRecovery=None, deletionProtectionEnabled=False))
    config = {
        **PACK_CONFIG,
        "dynamodb-pitr": "disabled",
        "dynamodb-deletion-protection": "advisory",
    }
    # WHEN checked THEN PITR is skipped and deletion protection is advisory only
    report = run_check(bad, config)
    assert {v.policy for v in report.violations} == {"dynamodb-deletion-protection"}
    assert (report.mandatory, report.advisory) == (0, 1)


def test_policy_config_reaches_the_rule() -> None:
    # GIVEN a pack config that turns reserved concurrency off, and a function without it
    lax = {**PACK_CONFIG, "lambda-reserved-concurrency": {"required": False}}
    bare = graph(function(reservedConcurrentExecutions=None))
    # THEN only the strict config reports it
    policy = [p for p in ALL_POLICIES if p.name == "lambda-reserved-concurrency"]
    assert run_check(bare, PACK_CONFIG, policies=policy).violations
    assert not run_check(bare, lax, policies=policy).violations


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({"no-such-policy": "advisory"}, "'no-such-policy' is not a policy"),
        ({"dynamodb-pitr": "sometimes"}, "dynamodb-pitr.enforcementLevel"),
        ({"lambda-timeout-bounded": {"maxTimeoutSeconds": "long"}}, "maxTimeoutSeconds"),
        ({"lambda-timeout-bounded": {"maxTimout": 3}}, "lambda-timeout-bounded"),
        ({"all": {"required": True}}, "all"),
        ({"dynamodb-pitr": 3}, "expected an enforcement level"),
    ],
)
def test_bad_pack_config_names_the_policy(config: dict[str, Any], fragment: str) -> None:
    with pytest.raises(CheckError, match="pack config") as info:
        validate_pack_config(config)
    assert fragment in str(info.value)


# --- the CLI --------------------------------------------------------------------------------


def _project(tmp_path: Path, pack: Any, resources: list[dict[str, Any]]) -> Path:
    (tmp_path / "policies").mkdir(parents=True)
    text = pack if isinstance(pack, str) else json.dumps(pack)
    (tmp_path / "policies" / "test.json").write_text(text, encoding="utf-8")
    (tmp_path / "graph.json").write_text(json.dumps(graph(*resources)), encoding="utf-8")
    return tmp_path


def _check(project: Path, *extra: str, graph_file: str = "graph.json") -> Any:
    args = ["check", "test", "--project-dir", str(project), "--graph", str(project / graph_file)]
    return CliRunner().invoke(app, [*args, *extra])


def test_cli_exit_0_when_clean_and_1_on_a_mandatory_violation(tmp_path: Path) -> None:
    queues = [queue("q", dlq="d"), queue("d"), queue_policy("q"), queue_policy("d")]
    clean = _check(_project(tmp_path / "a", PACK_CONFIG, queues))
    assert clean.exit_code == 0, clean.output
    dirty = _check(_project(tmp_path / "b", PACK_CONFIG, [queue("q"), table()]))
    assert dirty.exit_code == 1
    assert "sqs-redrive" in dirty.output


def test_cli_json_report(tmp_path: Path) -> None:
    # GIVEN a queue without redrive WHEN checked with --json
    result = _check(_project(tmp_path, PACK_CONFIG, [queue("q"), queue_policy("q")]), "--json")
    # THEN the JSON report names the rule, the resource and the counts
    report = json.loads(result.stdout)
    assert set(report) == {"stack", "violations", "mandatory", "advisory"}
    assert report["stack"] == "test"
    assert report["mandatory"] == 1
    (violation,) = report["violations"]
    assert set(violation) == {"policy", "resource", "urn", "message", "enforcement"}
    assert (violation["policy"], violation["resource"]) == ("sqs-redrive", "q")


@pytest.mark.parametrize(
    ("graph_text", "fragment"),
    [
        ("{not json", "not JSON"),
        ('{"stack": "test"}', "resources"),
        ('{"stack": "test", "resources": [{"name": "x", "urn": "u"}]}', "resources.0.type"),
    ],
)
def test_cli_malformed_graph_exits_2(tmp_path: Path, graph_text: str, fragment: str) -> None:
    project = _project(tmp_path, PACK_CONFIG, [])
    (project / "bad.json").write_text(graph_text, encoding="utf-8")
    result = _check(project, graph_file="bad.json")
    assert result.exit_code == 2
    assert fragment in result.stderr
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "pack", ["[1, 2]", "{oops", json.dumps({"sqs-redrive": {"enforcementLevel": "loud"}})]
)
def test_cli_bad_pack_config_exits_2(tmp_path: Path, pack: str) -> None:
    result = _check(_project(tmp_path, pack, [queue("q")]))
    assert result.exit_code == 2
    assert "pack config" in result.stderr
    assert "Traceback" not in result.output


def test_cli_unknown_stack_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["check", "nosuch", "--project-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "nosuch" in result.stderr


def test_cli_graph_of_another_stack_exits_2(tmp_path: Path) -> None:
    project = _project(tmp_path, PACK_CONFIG, [])
    (project / "other.json").write_text(json.dumps(graph(stack="prod")), encoding="utf-8")
    result = _check(project, graph_file="other.json")
    assert result.exit_code == 2
    assert "'prod'" in result.stderr
