"""Pulumi mocks for component tests: realistic ARNs and every registered resource recorded."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pulumi
import pytest
from pulumi.runtime import settings

ACCOUNT = "123456789012"
REGION = "us-east-1"


class RecordingMocks(pulumi.runtime.Mocks):
    """Answers like AWS would (names, ARNs, URLs) and keeps each resource's inputs by name."""

    def __init__(self) -> None:
        self.inputs: dict[str, dict[str, Any]] = {}
        self.types: dict[str, str] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.inputs[args.name] = dict(args.inputs)
        self.types[args.name] = args.typ
        name = args.inputs.get("name", args.name)
        service = args.typ.split(":")[1].split("/")[0]
        outputs = {
            **args.inputs,
            "name": name,
            "arn": f"arn:aws:{service}:{REGION}:{ACCOUNT}:{name}",
            "url": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}",
            "invokeArn": f"arn:aws:apigateway:{REGION}:lambda:path/{name}",
            "executionArn": f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{name}",
            "apiEndpoint": f"https://{name}.execute-api.{REGION}.amazonaws.com",
        }
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:root", "userId": "x"}
        return {}


@pytest.fixture
def mocks() -> Iterator[RecordingMocks]:
    """Fresh mocks (and a fresh root stack) per test."""
    settings.ROOT.set(None)
    recorder = RecordingMocks()
    pulumi.runtime.set_mocks(recorder, project="agentry", stack="test", preview=False)
    yield recorder
    settings.ROOT.set(None)
