"""Fixtures of the IAM tests: the dev stack's graph, planned once."""

from __future__ import annotations

from typing import Any

import pytest

from agentry_stacks.offline.plan import plan_stack


@pytest.fixture(scope="module")
def dev_graph() -> dict[str, Any]:
    """The dev stack's resource graph (what ``pulumi up`` would deploy), planned offline."""
    return dict(plan_stack("dev"))
