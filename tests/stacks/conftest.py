"""Stack fixtures: the dev and prod plans, each computed once per session, and stack files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from agentry_stacks.deploy.config import project_root
from agentry_stacks.offline.plan import plan_stack

STACKS = ("dev", "prod")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (holds Pulumi.yaml and the committed stack files)."""
    return project_root()


@pytest.fixture(scope="session")
def graphs() -> dict[str, dict[str, Any]]:
    """The real program's graph for every committed stack, planned once in this process."""
    return {stack: plan_stack(stack) for stack in STACKS}


@pytest.fixture(params=STACKS)
def graph(request: pytest.FixtureRequest, graphs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One committed stack's graph (tests using it run once per stack)."""
    return graphs[request.param]


@pytest.fixture
def dev_values(repo_root: Path) -> dict[str, Any]:
    """The committed dev stack's ``config:`` mapping, to derive broken variants from."""
    return yaml.safe_load((repo_root / "Pulumi.dev.yaml").read_text())["config"]


@pytest.fixture
def write_stack(tmp_path: Path) -> Callable[[str, dict[str, Any]], Path]:
    """Write ``Pulumi.<stack>.yaml`` with the given config into a temp project dir."""

    def write(stack: str, values: dict[str, Any]) -> Path:
        (tmp_path / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump({"config": values}))
        return tmp_path

    return write
