"""Components under Pulumi mocks: the inputs the engine (and the policy pack) would see."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
import pytest

from agentry_platform.bundle import Bundle
from agentry_platform.components.bus import EventBus, EventBusArgs
from agentry_platform.components.function import AgentFunction, AgentFunctionArgs, QueueSource
from agentry_platform.components.queue import StepQueue, StepQueueArgs
from agentry_platform.components.table import AgentTable, AgentTableArgs
from agentry_platform.lib.iam import statement
from agentry_runtime.contract import Env, Handler

ACCOUNT = "123456789012"  # what the mocks in conftest.py answer
TAGS = {"Project": "agentry", "Environment": "test", "ManagedBy": "pulumi"}
BUNDLE = Bundle(
    path=Path(__file__),
    sha256_hex="ab" * 32,
    sha256_base64="q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=",
    size=1,
    runtime_version="9.9.9",
    architecture="arm64",
    python_version="3.12",
)


@pulumi.runtime.test
def test_step_queue_has_dlq_redrive_sse_and_rule_only_policy(mocks: Any) -> Any:
    # GIVEN a worker timeout of 120 s and a step rule ARN
    rule = f"arn:aws:events:us-east-1:{ACCOUNT}:rule/agentry-test-bus/agentry-test-step-requests"
    queue = StepQueue(
        "steps",
        StepQueueArgs(
            stack="test",
            worker_timeout_seconds=120,
            max_receive_count=4,
            sender_rule_arn=rule,
            tags=TAGS,
        ),
    )

    def check(_: Any) -> None:
        # THEN the queue waits 6x the worker timeout and redrives to its DLQ after 4 receives
        main = mocks.inputs["steps-queue"]
        assert main["visibilityTimeoutSeconds"] == 720
        redrive = json.loads(main["redrivePolicy"])
        assert redrive == {
            "deadLetterTargetArn": f"arn:aws:sqs:us-east-1:{ACCOUNT}:agentry-test-steps-dlq",
            "maxReceiveCount": 4,
        }
        assert main["sqsManagedSseEnabled"] is True
        assert mocks.inputs["steps-dlq"]["sqsManagedSseEnabled"] is True
        # AND only the step rule may send to it, and only over TLS
        policy = json.loads(mocks.inputs["steps-policy"]["policy"])
        allow, tls = policy["Statement"]
        assert allow["Condition"] == {"ArnLike": {"aws:SourceArn": [rule]}}
        assert tls["Effect"] == "Deny"
        assert tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        assert main["tags"] == TAGS
        # AND the DLQ, which no service sends to, refuses plain HTTP too
        [dlq_tls] = json.loads(mocks.inputs["steps-dlq-policy"]["policy"])["Statement"]
        assert dlq_tls == {
            **tls,
            "Resource": f"arn:aws:sqs:us-east-1:{ACCOUNT}:agentry-test-steps-dlq",
        }

    return pulumi.Output.all(queue.arn, queue.policy.urn, queue.dlq_policy.urn).apply(check)


@pulumi.runtime.test
def test_table_follows_config_and_contract(mocks: Any) -> Any:
    # GIVEN prod-like settings with a CMK
    table = AgentTable(
        "table",
        AgentTableArgs(
            stack="test",
            point_in_time_recovery=True,
            deletion_protection=True,
            kms_key_arn="arn:aws:kms:us-east-1:1:key/k",
            tags=TAGS,
        ),
    )

    def check(_: Any) -> None:
        inputs = mocks.inputs["table-table"]
        assert inputs["billingMode"] == "PAY_PER_REQUEST"
        assert (inputs["hashKey"], inputs["rangeKey"]) == ("pk", "sk")
        assert inputs["ttl"] == {"attributeName": "ttl", "enabled": True}
        assert inputs["pointInTimeRecovery"] == {"enabled": True}
        assert inputs["deletionProtectionEnabled"] is True
        assert inputs["serverSideEncryption"] == {
            "enabled": True,
            "kmsKeyArn": "arn:aws:kms:us-east-1:1:key/k",
        }

    return table.arn.apply(check)


def _worker(queue: QueueSource | None = None) -> AgentFunction:
    return AgentFunction(
        "worker",
        AgentFunctionArgs(
            stack="test",
            suffix="worker",
            handler=Handler.WORKER,
            bundle=BUNDLE,
            account_id=ACCOUNT,
            memory_mb=512,
            timeout_seconds=120,
            reserved_concurrency=7,
            log_retention_days=14,
            environment={Env.TABLE_NAME.value: "agentry-test-agents"},
            statements=[statement("AgentTable", ["dynamodb:GetItem"], ["arn:table"])],
            queue=queue,
            tags=TAGS,
        ),
    )


@pulumi.runtime.test
def test_function_is_traced_stamped_and_logged(mocks: Any) -> Any:
    # GIVEN a worker function consuming a queue
    function = _worker(QueueSource(queue_arn="arn:queue", batch_size=5, max_concurrency=3))

    def check(_: Any) -> None:
        inputs = mocks.inputs["worker-function"]
        # THEN it runs the bundle on arm64 with tracing and reserved concurrency
        assert inputs["architectures"] == ["arm64"]
        assert inputs["runtime"] == "python3.12"
        assert inputs["tracingConfig"] == {"mode": "Active"}
        assert inputs["reservedConcurrentExecutions"] == 7
        assert inputs["handler"] == Handler.WORKER.value
        assert inputs["sourceCodeHash"] == BUNDLE.sha256_base64
        # AND the runtime version is stamped as tag and description (the settings contract
        # carries it in the environment: tests/stacks checks the variable)
        assert inputs["tags"]["RuntimeVersion"] == "9.9.9"
        assert "9.9.9" in inputs["description"]
        assert inputs["environment"]["variables"][Env.TABLE_NAME.value] == "agentry-test-agents"
        assert "9.9.9" in inputs["description"]
        # AND its log group is its own, with retention
        logs = mocks.inputs["worker-logs"]
        assert logs["name"] == "/aws/lambda/agentry-test-worker"
        assert logs["retentionInDays"] == 14
        # AND the role is assumable by Lambda only and its policy adds own logs and X-Ray
        trust = json.loads(mocks.inputs["worker-role"]["assumeRolePolicy"])
        assert trust["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
        policy = json.loads(mocks.inputs["worker-policy"]["policy"])
        sids = [s["Sid"] for s in policy["Statement"]]
        assert sids == ["AgentTable", "WriteOwnLogs", "SendTraces"]
        # AND the queue mapping reports partial batch failures with bounded concurrency
        mapping = mocks.inputs["worker-queue-mapping"]
        assert mapping["functionResponseTypes"] == ["ReportBatchItemFailures"]
        assert mapping["batchSize"] == 5
        assert mapping["scalingConfig"] == {"maximumConcurrency": 3}

    assert function.mapping is not None
    return pulumi.Output.all(function.arn, function.policy.urn, function.mapping.urn).apply(check)


@pulumi.runtime.test
def test_function_without_queue_has_no_mapping(mocks: Any) -> Any:
    function = _worker()

    def check(_: Any) -> None:
        assert function.mapping is None
        assert "worker-queue-mapping" not in mocks.inputs

    return function.arn.apply(check)


@pulumi.runtime.test
def test_event_bus_policy_names_the_publishers(mocks: Any) -> Any:
    # GIVEN a bus whose publishers are two roles
    bus = EventBus("events", EventBusArgs(stack="test", archive_days=7, tags=TAGS))
    roles = [f"arn:aws:iam::{ACCOUNT}:role/agentry-test-{n}-role" for n in ("worker", "api")]
    policy = bus.restrict_publishers(roles)

    def check(_: Any) -> None:
        # THEN one bus policy on that bus denies agentry.* events to every other principal
        inputs = mocks.inputs["events-policy"]
        assert inputs["eventBusName"] == "agentry-test-bus"
        [deny] = json.loads(inputs["policy"])["Statement"]
        assert deny["Effect"] == "Deny"
        assert deny["Condition"]["ArnNotEquals"] == {"aws:PrincipalArn": sorted(roles)}
        assert deny["Condition"]["ForAnyValue:StringLike"] == {"events:source": ["agentry.*"]}

    # AND a second call is refused (one policy per bus)
    with pytest.raises(ValueError, match="already attached"):
        bus.restrict_publishers(roles)
    return pulumi.Output.all(policy.urn, bus.arn).apply(check)
