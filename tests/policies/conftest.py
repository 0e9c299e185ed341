"""Graphs of the shipped stacks, planned once per session (planning runs the whole program)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from preview_graphs import plan_first_preview

from agentry_stacks.offline.plan import plan_stack

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def graphs() -> dict[str, dict[str, Any]]:
    """The dev and prod graphs as ``agentry plan`` gives them."""
    return {stack: plan_stack(stack, project_dir=ROOT) for stack in ("dev", "prod")}


@pytest.fixture(scope="session")
def preview_graphs() -> dict[str, dict[str, Any]]:
    """The dev and prod graphs as a stack's first ``pulumi preview`` shows them."""
    return {stack: plan_first_preview(stack, ROOT) for stack in ("dev", "prod")}
