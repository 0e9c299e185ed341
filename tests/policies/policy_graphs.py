"""Small resource graphs (the ``agentry plan --json`` format) for the policy tests."""

from __future__ import annotations

import copy
import json
from typing import Any

ACCOUNT = "123456789012"
REGION = "us-east-1"
HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"
PROFILE = f"us.{HAIKU}"
PROFILE_REGIONS = ["us-east-1", "us-east-2", "us-west-2"]
PROFILE_ARN = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:inference-profile/{PROFILE}"
TAGS = {"Project": "agentry", "Environment": "test", "ManagedBy": "pulumi"}
PROFILES = [{"id": PROFILE, "model": HAIKU, "regions": PROFILE_REGIONS}]

#: A pack config whose allowlists match the fixtures below.
PACK_CONFIG: dict[str, Any] = {
    "bedrock-model-allowlist": {"allowedModels": [HAIKU], "inferenceProfiles": PROFILES},
    "bedrock-inference-profile-grants": {"inferenceProfiles": PROFILES},
}


def model_arn(region: str = REGION, model: str = HAIKU) -> str:
    """A foundation-model ARN."""
    return f"arn:aws:bedrock:{region}::foundation-model/{model}"


def statement(actions: Any, resources: Any, sid: str = "", **extra: Any) -> dict[str, Any]:
    """An Allow statement (``extra`` adds or overrides keys: Effect, Condition, NotAction...)."""
    result: dict[str, Any] = {"Effect": "Allow", "Action": actions, "Resource": resources}
    if sid:
        result["Sid"] = sid
    result.update(extra)
    return {key: value for key, value in result.items() if value is not None}


def bedrock_statements() -> list[dict[str, Any]]:
    """The compliant Bedrock grant: the model, the profile, and its conditioned region models."""
    return [
        statement("bedrock:InvokeModel", [model_arn()], "Models"),
        statement(["bedrock:InvokeModel"], PROFILE_ARN, "Profile"),
        statement(
            "bedrock:InvokeModel",
            [model_arn(region) for region in PROFILE_REGIONS],
            "ProfileModels",
            Condition={"StringEquals": {"bedrock:InferenceProfileArn": PROFILE_ARN}},
        ),
    ]


def resource(
    type_: str, name: str, inputs: dict[str, Any], outputs: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One graph resource with a URN derived from its type and name."""
    return {
        "type": type_,
        "name": name,
        "urn": f"urn:pulumi:test::agentry::{type_}::{name}",
        "parent": None,
        "dependencies": [],
        "inputs": inputs,
        "outputs": outputs or {},
    }


def role_policy(name: str, statements: list[dict[str, Any]]) -> dict[str, Any]:
    """An ``aws:iam/rolePolicy:RolePolicy`` whose policy is a JSON string, as the engine sends."""
    document = {"Version": "2012-10-17", "Statement": statements}
    return resource(
        "aws:iam/rolePolicy:RolePolicy",
        name,
        {"role": "agentry-test-worker", "policy": json.dumps(document)},
    )


def role(name: str = "worker-role", physical: str = "agentry-test-worker") -> dict[str, Any]:
    """An IAM role with its ARN in the outputs."""
    return resource(
        "aws:iam/role:Role",
        name,
        {"name": physical, "assumeRolePolicy": "{}", "tags": TAGS},
        {"arn": f"arn:aws:iam::{ACCOUNT}:role/{physical}", "name": physical},
    )


def function(name: str = "worker", **overrides: Any) -> dict[str, Any]:
    """A compliant Lambda function; ``overrides`` replace (or, with None, drop) inputs."""
    inputs: dict[str, Any] = {
        "name": f"agentry-test-{name}",
        "role": f"arn:aws:iam::{ACCOUNT}:role/agentry-test-worker",
        "runtime": "python3.12",
        "timeout": 60,
        "reservedConcurrentExecutions": 5,
        "tracingConfig": {"mode": "Active"},
        "environment": {
            "variables": {"AGENTRY_AGENTS": json.dumps({"flights": {"model": PROFILE}})}
        },
        "tags": TAGS,
    }
    inputs.update(overrides)
    return resource(
        "aws:lambda/function:Function",
        name,
        {k: v for k, v in inputs.items() if v is not None},
    )


def log_group(function_name: str, retention: int | None = 14) -> dict[str, Any]:
    """The log group of a function named ``agentry-test-<function_name>``."""
    inputs: dict[str, Any] = {"name": f"/aws/lambda/agentry-test-{function_name}", "tags": TAGS}
    if retention is not None:
        inputs["retentionInDays"] = retention
    return resource("aws:cloudwatch/logGroup:LogGroup", f"{function_name}-logs", inputs)


def queue(name: str, dlq: str | None = None, **overrides: Any) -> dict[str, Any]:
    """An SQS queue named ``agentry-test-<name>``, redriving to queue ``dlq`` when given."""
    physical = f"agentry-test-{name}"
    inputs: dict[str, Any] = {"name": physical, "sqsManagedSseEnabled": True, "tags": TAGS}
    if dlq is not None:
        target = f"arn:aws:sqs:{REGION}:{ACCOUNT}:agentry-test-{dlq}"
        inputs["redrivePolicy"] = json.dumps({"deadLetterTargetArn": target, "maxReceiveCount": 3})
    inputs.update(overrides)
    return resource(
        "aws:sqs/queue:Queue",
        name,
        {k: v for k, v in inputs.items() if v is not None},
        {"arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{physical}", "url": f"https://sqs/{physical}"},
    )


def table(**overrides: Any) -> dict[str, Any]:
    """A compliant DynamoDB table."""
    inputs: dict[str, Any] = {
        "name": "agentry-test-state",
        "pointInTimeRecovery": {"enabled": True},
        "serverSideEncryption": {"enabled": True, "kmsKeyArn": "arn:aws:kms:us-east-1:1:key/k"},
        "deletionProtectionEnabled": True,
        "tags": TAGS,
    }
    inputs.update(overrides)
    return resource("aws:dynamodb/table:Table", "state", inputs)


def graph(*resources: dict[str, Any], stack: str = "test") -> dict[str, Any]:
    """A graph document holding deep copies of ``resources``."""
    return {"stack": stack, "project": "agentry", "resources": copy.deepcopy(list(resources))}


def arn(service: str, resource_path: str, region: str = REGION) -> str:
    """An ARN of the fixtures' account."""
    return f"arn:aws:{service}:{region}:{ACCOUNT}:{resource_path}"


def tls_deny(actions: Any, resource_arn: str) -> dict[str, Any]:
    """The statement that refuses plain HTTP for ``actions`` on ``resource_arn``."""
    return {
        "Effect": "Deny",
        "Principal": "*",
        "Action": actions,
        "Resource": resource_arn,
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def document(*statements: dict[str, Any]) -> str:
    """A policy document as the JSON string the engine sends."""
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def queue_policy(name: str, *statements: dict[str, Any]) -> dict[str, Any]:
    """A QueuePolicy on queue ``agentry-test-<name>``: TLS-only unless ``statements`` given."""
    queue_arn = arn("sqs", f"agentry-test-{name}")
    body = statements or (tls_deny("sqs:*", queue_arn),)
    return resource(
        "aws:sqs/queuePolicy:QueuePolicy",
        f"{name}-policy",
        {"queueUrl": f"https://sqs/agentry-test-{name}", "policy": document(*body)},
    )
