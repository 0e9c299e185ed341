"""What the plan says about cold start: the bundle's bytecode, and whether subsegments trace."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from support.project import copy_project

from agentry_platform import bundle as bundle_module
from agentry_platform.bundle import find_interpreter
from agentry_platform.components.function import BYTECODE_TAG
from agentry_runtime.observability import TRACE_SUBSEGMENTS_VARIABLE
from agentry_stacks.deploy.config import load_stack_config
from agentry_stacks.offline.plan import plan_stack
from agentry_stacks.offline.views import settings_of

FUNCTION = "aws:lambda/function:Function"


def _functions(graph: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in graph["resources"] if r["type"] == FUNCTION]


def test_every_function_says_which_bytecode_its_bundle_ships(
    graph: dict[str, Any], repo_root: Path
) -> None:
    # GIVEN the interpreter the build looks for: the stack's Lambda Python
    version = load_stack_config(graph["stack"], project_dir=repo_root).lambda_runtime
    interpreter = find_interpreter(version.removeprefix("python"))
    expected = f"cpython-{interpreter.version}" if interpreter else "none"
    for function in _functions(graph):
        # THEN each function's tag names it, and the plan's settings show it
        assert function["inputs"]["tags"][BYTECODE_TAG] == expected
        assert expected in settings_of(function)


def test_without_that_interpreter_the_plan_says_the_bundle_has_no_bytecode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a machine with no CPython of the function's version
    monkeypatch.setattr(bundle_module, "find_interpreter", lambda version: None)
    # WHEN the stack is planned
    graph = plan_stack("dev")
    # THEN every function is tagged so, and the plan shows that cold starts compile
    for function in _functions(graph):
        assert function["inputs"]["tags"][BYTECODE_TAG] == "none"
        assert "no bytecode (no python3.12 at build time" in settings_of(function)


def test_subsegments_are_traced_only_when_the_stack_asks(
    graph: dict[str, Any], tmp_path: Path
) -> None:
    # GIVEN the committed stacks: no function gets the variable, so none imports the X-Ray SDK
    for function in _functions(graph):
        assert TRACE_SUBSEGMENTS_VARIABLE not in function["inputs"]["environment"]["variables"]
    # WHEN a stack sets tracingSubsegments
    project = copy_project(tmp_path)
    document = yaml.safe_load((project / "Pulumi.dev.yaml").read_text())
    document["config"]["agentry:tracingSubsegments"] = True
    (project / "Pulumi.traced.yaml").write_text(yaml.safe_dump(document))
    traced = plan_stack("traced", project_dir=project)
    # THEN every function gets it, and keeps Lambda's active tracing
    for function in _functions(traced):
        inputs = function["inputs"]
        assert inputs["environment"]["variables"][TRACE_SUBSEGMENTS_VARIABLE] == "true"
        assert inputs["tracingConfig"] == {"mode": "Active"}
