"""Fixtures of the chaos suite: one moto account per test (the shared harness's), quiet logs."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import jsonpath_ng.ext
import pytest
from support.harness import aws_session, moto_account

from agentry_runtime.observability import logger, metrics


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An in-process moto account and a boto3 session whose clients the worlds attach."""
    # Thousands of invocations would print their metrics (EMF) to stdout, and Powertools
    # flushes a metric set that reaches 100 values even with metrics disabled.
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    monkeypatch.setattr(metrics, "add_metric", lambda **_: None)
    # moto parses the same few JSONPath expressions again for every target of every PutEvents
    # (half its time); the parsed expressions are immutable, so parse each once.
    monkeypatch.setattr(jsonpath_ng.ext, "parse", functools.cache(jsonpath_ng.ext.parse))
    with moto_account(monkeypatch):
        yield aws_session()


@pytest.fixture(autouse=True)
def quiet_runtime() -> Iterator[None]:
    """Only errors from the runtime's logger: the chaos makes it warn thousands of times."""
    level = logger.log_level
    logger.setLevel("CRITICAL")
    yield
    logger.setLevel(level)
