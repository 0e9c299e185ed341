"""Fixtures of the local environment tests: one plan graph of the dev stack per session."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from agentry_stacks.offline.plan import plan_stack


@pytest.fixture(scope="session")
def dev_graph_document() -> dict[str, Any]:
    """The dev stack's resource graph, planned once (planning takes seconds)."""
    return plan_stack("dev")


@pytest.fixture
def dev_graph(dev_graph_document: dict[str, Any]) -> dict[str, Any]:
    """A private copy of the dev graph that a test may mutate."""
    return copy.deepcopy(dev_graph_document)


@pytest.fixture(scope="session")
def prod_graph_document() -> dict[str, Any]:
    """The prod stack's resource graph (operators, approvals, budgets), planned once."""
    return plan_stack("prod")


@pytest.fixture
def prod_graph(prod_graph_document: dict[str, Any]) -> dict[str, Any]:
    """A private copy of the prod graph that a test may mutate."""
    return copy.deepcopy(prod_graph_document)
