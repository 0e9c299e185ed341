"""The step queue: SQS with a dead-letter queue and redrive, fed only by the step rule."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from agentry_platform.components._json import json_output
from agentry_platform.components._options import named
from agentry_platform.lib.iam import queue_send_policy, queue_tls_policy
from agentry_platform.lib.naming import physical_name

__all__ = ["StepQueue", "StepQueueArgs"]

_DLQ_RETENTION_SECONDS = 1_209_600  # 14 days, the SQS maximum: time to inspect and redrive
# AWS asks for a visibility timeout of at least six times the consumer's timeout, so a batch
# that is retried inside Lambda is not redelivered to a second worker meanwhile.
_VISIBILITY_FACTOR = 6


@dataclass
class StepQueueArgs:
    """Inputs of :class:`StepQueue`."""

    stack: str
    worker_timeout_seconds: int
    max_receive_count: int
    sender_rule_arn: pulumi.Input[str]
    tags: Mapping[str, str]
    kms_key_arn: pulumi.Input[str] | None = None


class StepQueue(pulumi.ComponentResource):
    """Step events wait here for the worker; poison messages go to the DLQ after N receives."""

    arn: pulumi.Output[str]
    url: pulumi.Output[str]
    dlq_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: StepQueueArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agentry:queue:StepQueue", name, None, opts)
        if args.max_receive_count < 1:
            raise ValueError(f"max_receive_count: must be >= 1, got {args.max_receive_count}")
        child = named(self)
        encryption = {
            "kms_master_key_id": args.kms_key_arn,
            "sqs_managed_sse_enabled": None if args.kms_key_arn else True,
        }
        self.dlq = aws.sqs.Queue(
            f"{name}-dlq",
            name=physical_name(args.stack, "steps-dlq"),
            message_retention_seconds=_DLQ_RETENTION_SECONDS,
            tags=dict(args.tags),
            opts=child,
            **encryption,
        )
        self.queue = aws.sqs.Queue(
            f"{name}-queue",
            name=physical_name(args.stack, "steps"),
            visibility_timeout_seconds=_VISIBILITY_FACTOR * args.worker_timeout_seconds,
            redrive_policy=json_output(
                {"deadLetterTargetArn": self.dlq.arn, "maxReceiveCount": args.max_receive_count}
            ),
            tags=dict(args.tags),
            opts=child,
            **encryption,
        )
        self.dlq_redrive = aws.sqs.RedriveAllowPolicy(
            f"{name}-dlq-redrive-allow",
            queue_url=self.dlq.url,
            redrive_allow_policy=json_output(
                {"redrivePermission": "byQueue", "sourceQueueArns": [self.queue.arn]}
            ),
            opts=child,
        )
        # No service sends to the DLQ (SQS redrives into it), so its policy only refuses HTTP.
        self.dlq_policy = aws.sqs.QueuePolicy(
            f"{name}-dlq-policy",
            queue_url=self.dlq.url,
            policy=json_output(self.dlq.arn.apply(lambda arn: queue_tls_policy(queue_arn=arn))),
            opts=child,
        )
        self.policy = aws.sqs.QueuePolicy(
            f"{name}-policy",
            queue_url=self.queue.url,
            policy=json_output(
                pulumi.Output.all(self.queue.arn, args.sender_rule_arn).apply(
                    lambda a: queue_send_policy(queue_arn=a[0], source_arns=[a[1]])
                )
            ),
            opts=child,
        )
        self.arn = self.queue.arn
        self.url = self.queue.url
        self.dlq_arn = self.dlq.arn
        self.register_outputs(
            {"arn": self.arn, "url": self.url, "dlqArn": self.dlq_arn, "dlqName": self.dlq.name}
        )
