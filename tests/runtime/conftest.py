"""Shared moto fixtures of the runtime tests: one mocked AWS account with the agents table."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from support.harness import aws_session, create_agents_table, moto_account, without_backoff
from support.world import World

TABLE_NAME = "agentry-test-agents"


@pytest.fixture(scope="session")
def boto_session() -> boto3.session.Session:
    """One boto3 session for the whole run: building clients from it is ~10x faster than anew."""
    return aws_session()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An in-process moto account (fake credentials, fixed region) for the whole test."""
    with moto_account(monkeypatch):
        yield


@pytest.fixture
def dynamodb_client(aws: None, boto_session: boto3.session.Session) -> Any:
    """A low-level DynamoDB client talking to moto."""
    return boto_session.client("dynamodb")


@pytest.fixture
def agent_table(dynamodb_client: Any) -> str:
    """The single agents table (``pk``/``sk`` strings, on demand) in moto; yields its name."""
    return create_agents_table(dynamodb_client, TABLE_NAME)


@pytest.fixture
def world_factory(
    agent_table: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., World]]:
    """Makes functional worlds over the moto table (closed at the end of the test); boto3
    retries there without sleeping between attempts."""
    without_backoff(monkeypatch)
    worlds: list[World] = []

    def make(**kwargs: Any) -> World:
        world = World(agent_table, **kwargs)
        worlds.append(world)
        return world

    yield make
    for world in worlds:
        world.close()
