"""The functional tests' AWS, built one way: a moto account, the agents table, a bus with queues,
and the fake Bedrock endpoint with a real boto3 client in front of it.

``World`` (``support.world``), the runtime and fuzz fixtures and the recovery execution tests
build on these; each piece is what the deployed stack has, made from the same source
(``contract.table_schema`` for the table, the step rule's pattern for the routes).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.retries.standard import ExponentialBackoff
from moto import mock_aws

from agentry_offline.bedrock import FakeBedrockServer, Responder
from agentry_runtime.contract import table_schema

__all__ = [
    "REGION",
    "Queue",
    "aws_session",
    "bedrock_client",
    "create_agents_table",
    "create_queue",
    "fake_credentials",
    "moto_account",
    "route",
    "start_fake_bedrock",
    "without_backoff",
]

REGION = "us-east-1"
_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
}


@functools.cache
def aws_session() -> boto3.session.Session:
    """One boto3 session (fake credentials, the fixed region) for every test of the process.

    moto resets ``boto3.DEFAULT_SESSION`` whenever it starts, so ``boto3.client`` reloads every
    service model from JSON (~0.1 s a client); a session keeps its loaded models, and moto
    intercepts its clients all the same.
    """
    return boto3.session.Session(
        aws_access_key_id=_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=_CREDENTIALS["AWS_SESSION_TOKEN"],
        region_name=REGION,
    )


def fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and the fixed region in the environment, for the test's duration."""
    for name, value in _CREDENTIALS.items():
        monkeypatch.setenv(name, value)


@contextmanager
def moto_account(
    monkeypatch: pytest.MonkeyPatch, *, config: Mapping[str, Any] | None = None
) -> Iterator[None]:
    """An in-process moto account (fake credentials, fixed region); ``config`` is moto's."""
    fake_credentials(monkeypatch)
    with mock_aws(config=dict(config) if config else None):
        yield


def without_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """boto3's retries still happen, attempt by attempt; only the sleeps between them go."""
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0)


def create_agents_table(client: Any, name: str) -> str:
    """The agents table exactly as the platform declares it (keys, indexes, stream)."""
    client.create_table(**table_schema(name))
    return name


@dataclass(frozen=True)
class Queue:
    """An SQS queue's URL and ARN, and its dead-letter queue's URL if it has one."""

    url: str
    arn: str
    dead_letter_url: str | None = None


def create_queue(sqs: Any, name: str, *, max_receive_count: int = 0) -> Queue:
    """A queue with no visibility delay; with ``max_receive_count``, a dead-letter queue."""
    attributes = {"VisibilityTimeout": "0"}
    dead_letter_url = None
    if max_receive_count:
        dead_letter = create_queue(sqs, f"{name}-dlq")
        dead_letter_url = dead_letter.url
        attributes["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": dead_letter.arn, "maxReceiveCount": str(max_receive_count)}
        )
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return Queue(url, arn, dead_letter_url)


def route(events: Any, bus: str, name: str, pattern: Mapping[str, Any], target_arn: str) -> None:
    """A rule on ``bus`` sending what matches ``pattern`` to ``target_arn``."""
    events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": name, "Arn": target_arn}])


def start_fake_bedrock(responder: Responder) -> FakeBedrockServer:
    """The fake Converse endpoint on 127.0.0.1, answering with ``responder`` (stop it after)."""
    return FakeBedrockServer(responder).start()


def bedrock_client(server: FakeBedrockServer, *, total_max_attempts: int = 5) -> Any:
    """A real boto3 ``bedrock-runtime`` client on the fake endpoint, standard retry mode."""
    return aws_session().client(
        "bedrock-runtime",
        endpoint_url=server.endpoint_url,
        config=Config(retries={"mode": "standard", "total_max_attempts": total_max_attempts}),
    )
