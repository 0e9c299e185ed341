"""An agent function: Lambda from the runtime bundle, its log group, role and event source.

A function consumes an SQS queue (the worker) or the state table's DynamoDB stream (the
announcer), always reporting partial batch failures; or nothing (api, reconciler).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_aws as aws

from agentry_platform.bundle import Bundle
from agentry_platform.components._json import json_output
from agentry_platform.components._options import named
from agentry_platform.lib.iam import (
    Statement,
    assume_role_policy,
    lambda_logs_statements,
    policy_document,
    xray_statements,
)
from agentry_platform.lib.naming import lambda_log_group_name, physical_name
from agentry_runtime.contract import Handler

__all__ = [
    "BYTECODE_TAG",
    "AgentFunction",
    "AgentFunctionArgs",
    "QueueSource",
    "StreamSource",
    "bytecode_tag",
]

#: The function tag that says which interpreter compiled the bundle's bytecode, or ``none``.
BYTECODE_TAG = "Bytecode"


def bytecode_tag(bundle: Bundle) -> str:
    """``cpython-3.12.1`` if the bundle ships bytecode compiled by CPython 3.12.1, else ``none``."""
    return f"cpython-{bundle.bytecode}" if bundle.bytecode else "none"


@dataclass
class QueueSource:
    """An SQS queue the function consumes in batches, reporting partial batch failures."""

    queue_arn: pulumi.Input[str]
    batch_size: int
    max_concurrency: int


@dataclass
class StreamSource:
    """A DynamoDB stream the function consumes in order, per shard, with bounded retries.

    Lambda retries a failed batch from the first failed record (``ReportBatchItemFailures``),
    splits it to isolate a bad record (``bisect``), gives up after ``max_retries`` or once a
    record is ``max_record_age_seconds`` old, and then sends the batch's metadata (shard and
    sequence numbers, not the records) to ``failure_queue_arn``
    (https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html).
    """

    stream_arn: pulumi.Input[str]
    failure_queue_arn: pulumi.Input[str]
    batch_size: int = 100
    max_batching_window_seconds: int = 0
    max_retries: int = 10
    max_record_age_seconds: int = 6 * 3600
    parallelization_factor: int = 1
    #: EventBridge-style patterns on the record: only these invoke the function.
    filters: Sequence[str] = ()


@dataclass
class AgentFunctionArgs:
    """Inputs of :class:`AgentFunction`."""

    stack: str
    suffix: str
    handler: Handler
    bundle: Bundle
    account_id: pulumi.Input[str]
    memory_mb: int
    timeout_seconds: int
    reserved_concurrency: int | None
    log_retention_days: int
    environment: Mapping[str, pulumi.Input[str]]
    statements: pulumi.Input[Sequence[Statement]]
    tags: Mapping[str, str]
    runtime: Literal["python3.12", "python3.13"] = "python3.12"
    architecture: Literal["arm64", "x86_64"] = "arm64"
    kms_key_arn: pulumi.Input[str] | None = None
    queue: QueueSource | None = None
    stream: StreamSource | None = None


class AgentFunction(pulumi.ComponentResource):
    """A traced Lambda on the runtime bundle, with its own log group and least-privilege role."""

    name: pulumi.Output[str]
    arn: pulumi.Output[str]
    invoke_arn: pulumi.Output[str]
    role_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: AgentFunctionArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agentry:function:AgentFunction", name, None, opts)
        child = named(self)
        function_name = physical_name(args.stack, args.suffix)
        version = args.bundle.runtime_version
        tags = {**args.tags, "RuntimeVersion": version}
        # Created before the function, so Lambda never auto-creates it without retention.
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=lambda_log_group_name(function_name),
            retention_in_days=args.log_retention_days,
            kms_key_id=args.kms_key_arn,
            tags=tags,
            opts=child,
        )
        self.role = aws.iam.Role(
            f"{name}-role",
            name=physical_name(args.stack, f"{args.suffix}-role"),
            assume_role_policy=json_output(
                pulumi.Output.from_input(args.account_id).apply(
                    lambda account: assume_role_policy("lambda.amazonaws.com", account)
                )
            ),
            tags=tags,
            opts=child,
        )
        statements = pulumi.Output.all(
            pulumi.Output.from_input(args.statements), self.log_group.arn
        ).apply(
            lambda a: policy_document([*a[0], *lambda_logs_statements(a[1]), *xray_statements()])
        )
        self.policy = aws.iam.RolePolicy(
            f"{name}-policy",
            name=physical_name(args.stack, f"{args.suffix}-policy"),
            role=self.role.id,
            policy=json_output(statements),
            opts=child,
        )
        self.function = aws.lambda_.Function(
            f"{name}-function",
            name=function_name,
            description=f"Agentry {args.suffix} (runtime {version})",
            role=self.role.arn,
            handler=args.handler.value,
            runtime=args.runtime,
            architectures=[args.architecture],
            code=pulumi.FileArchive(str(args.bundle.path)),
            # The bundle is reproducible: an unchanged runtime keeps this hash and shows no diff.
            source_code_hash=args.bundle.sha256_base64,
            memory_size=args.memory_mb,
            timeout=args.timeout_seconds,
            reserved_concurrent_executions=args.reserved_concurrency,
            tracing_config=aws.lambda_.FunctionTracingConfigArgs(mode="Active"),
            logging_config=aws.lambda_.FunctionLoggingConfigArgs(
                log_format="JSON", log_group=self.log_group.name
            ),
            environment=aws.lambda_.FunctionEnvironmentArgs(variables=dict(args.environment)),
            # Whether the code ships bytecode (a cold start compiles every module without it):
            # visible in the plan, and a code hash that moves with the compiling interpreter.
            tags={**tags, BYTECODE_TAG: bytecode_tag(args.bundle)},
            # The role's policy must exist before the first invocation can use it.
            opts=named(self, depends_on=[self.log_group, self.policy]),
        )
        self.mapping: aws.lambda_.EventSourceMapping | None = None
        if args.queue is not None:
            self.mapping = aws.lambda_.EventSourceMapping(
                f"{name}-queue-mapping",
                event_source_arn=args.queue.queue_arn,
                function_name=self.function.arn,
                batch_size=args.queue.batch_size,
                function_response_types=["ReportBatchItemFailures"],
                scaling_config=aws.lambda_.EventSourceMappingScalingConfigArgs(
                    maximum_concurrency=args.queue.max_concurrency
                ),
                tags=tags,
                opts=child,
            )
        if args.stream is not None:
            stream = args.stream
            self.mapping = aws.lambda_.EventSourceMapping(
                f"{name}-stream-mapping",
                event_source_arn=stream.stream_arn,
                function_name=self.function.arn,
                # Every record since the mapping exists: nothing committed before it is skipped.
                starting_position="TRIM_HORIZON",
                batch_size=stream.batch_size,
                maximum_batching_window_in_seconds=stream.max_batching_window_seconds,
                parallelization_factor=stream.parallelization_factor,
                bisect_batch_on_function_error=True,
                maximum_retry_attempts=stream.max_retries,
                maximum_record_age_in_seconds=stream.max_record_age_seconds,
                function_response_types=["ReportBatchItemFailures"],
                destination_config=aws.lambda_.EventSourceMappingDestinationConfigArgs(
                    on_failure=aws.lambda_.EventSourceMappingDestinationConfigOnFailureArgs(
                        destination_arn=stream.failure_queue_arn
                    )
                ),
                filter_criteria=aws.lambda_.EventSourceMappingFilterCriteriaArgs(
                    filters=[
                        aws.lambda_.EventSourceMappingFilterCriteriaFilterArgs(pattern=pattern)
                        for pattern in stream.filters
                    ]
                )
                if stream.filters
                else None,
                tags=tags,
                opts=child,
            )
        self.name = self.function.name
        self.arn = self.function.arn
        self.invoke_arn = self.function.invoke_arn
        self.role_arn = self.role.arn
        self.register_outputs(
            {
                "name": self.name,
                "arn": self.arn,
                "roleArn": self.role_arn,
                "logGroup": self.log_group.name,
                "runtimeVersion": version,
            }
        )
