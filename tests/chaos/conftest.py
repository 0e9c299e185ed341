"""Fixtures of the chaos suite: one moto account, one fake Bedrock endpoint, a movable clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest
from botocore.retries.standard import ExponentialBackoff
from moto import mock_aws

from agentry_runtime import state
from agentry_runtime.observability import logger

REGION = "us-east-1"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An in-process moto account; boto3's retry back-off does not sleep (chaos throttles)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    # The retries still happen, attempt by attempt; only the waiting between them is skipped.
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0)
    with mock_aws():
        yield


@pytest.fixture(autouse=True)
def quiet_runtime() -> Iterator[None]:
    """Only warnings from the runtime's logger: thousands of steps would print their INFO lines."""
    level = logger.log_level
    logger.setLevel("WARNING")
    yield
    logger.setLevel(level)


@pytest.fixture
def advance_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """Move the store's clock forward (tool-call leases expire without waiting)."""
    offset = [timedelta(0)]
    real = state.utcnow

    def now() -> datetime:
        return real() + offset[0]

    monkeypatch.setattr(state, "utcnow", now)

    def advance(seconds: float) -> None:
        offset[0] += timedelta(seconds=seconds)

    return advance
