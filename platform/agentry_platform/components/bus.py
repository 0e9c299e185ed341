"""The event bus (with an archive for replay and a DLQ for undeliverable events) and its rules."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from agentry_platform.components._json import json_output
from agentry_platform.components._options import named
from agentry_platform.lib.iam import bus_policy, queue_send_policy
from agentry_platform.lib.naming import physical_name

__all__ = ["EventBus", "EventBusArgs", "EventRule", "EventRuleArgs"]

# A target retries for up to a day, then the event lands in the bus DLQ (never silently lost).
_MAX_EVENT_AGE_SECONDS = 86_400
_MAX_RETRY_ATTEMPTS = 185
_DLQ_RETENTION_SECONDS = 1_209_600


@dataclass
class EventBusArgs:
    """Inputs of :class:`EventBus`."""

    stack: str
    archive_days: int
    tags: Mapping[str, str]
    kms_key_arn: pulumi.Input[str] | None = None


class EventBus(pulumi.ComponentResource):
    """A custom bus, an archive of every event on it, the DLQ its rules' targets use, and (once
    :meth:`restrict_publishers` names them) a bus policy admitting only the platform's roles."""

    name: pulumi.Output[str]
    arn: pulumi.Output[str]
    dlq_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: EventBusArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agentry:bus:EventBus", name, None, opts)
        self._name = name
        self.policy: aws.cloudwatch.EventBusPolicy | None = None
        child = named(self)
        self.bus = aws.cloudwatch.EventBus(
            f"{name}-bus", name=physical_name(args.stack, "bus"), tags=dict(args.tags), opts=child
        )
        self.archive = aws.cloudwatch.EventArchive(
            f"{name}-archive",
            name=physical_name(args.stack, "archive"),
            event_source_arn=self.bus.arn,
            retention_days=args.archive_days,
            description="Every Agentry event, for replay",
            opts=child,
        )
        self.dlq = aws.sqs.Queue(
            f"{name}-dlq",
            name=physical_name(args.stack, "events-dlq"),
            message_retention_seconds=_DLQ_RETENTION_SECONDS,
            kms_master_key_id=args.kms_key_arn,
            sqs_managed_sse_enabled=None if args.kms_key_arn else True,
            tags=dict(args.tags),
            opts=child,
        )
        # Only rules of this bus may dead-letter into the DLQ.
        rules = self.bus.arn.apply(lambda arn: arn.replace(":event-bus/", ":rule/", 1) + "/*")
        self.dlq_policy = aws.sqs.QueuePolicy(
            f"{name}-dlq-policy",
            queue_url=self.dlq.url,
            policy=json_output(
                pulumi.Output.all(self.dlq.arn, rules).apply(
                    lambda a: queue_send_policy(queue_arn=a[0], source_arns=[a[1]])
                )
            ),
            opts=child,
        )
        self.name = self.bus.name
        self.arn = self.bus.arn
        self.dlq_arn = self.dlq.arn
        self.register_outputs({"name": self.name, "arn": self.arn, "dlqArn": self.dlq_arn})

    def restrict_publishers(
        self, publisher_arns: Sequence[pulumi.Input[str]]
    ) -> aws.cloudwatch.EventBusPolicy:
        """Attach the bus policy: only ``publisher_arns`` may put ``agentry.*`` events.

        A method, not a constructor argument: the publishers' roles are declared after the
        bus, since their own policies name the bus.
        """
        if self.policy is not None:
            raise ValueError(f"{self._name}: the bus policy is already attached")
        self.policy = aws.cloudwatch.EventBusPolicy(
            f"{self._name}-policy",
            event_bus_name=self.bus.name,
            policy=json_output(
                pulumi.Output.all(self.bus.arn, *publisher_arns).apply(
                    lambda a: bus_policy(bus_arn=a[0], publisher_arns=list(a[1:]))
                )
            ),
            opts=named(self),
        )
        return self.policy


@dataclass
class EventRuleArgs:
    """Inputs of :class:`EventRule`: a pattern on a bus, delivered to one target."""

    stack: str
    suffix: str
    description: str
    bus_name: pulumi.Input[str]
    pattern: dict[str, Any]
    target_arn: pulumi.Input[str]
    dlq_arn: pulumi.Input[str]
    tags: Mapping[str, str]
    target_role_arn: pulumi.Input[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: ``(input paths, template)``: what the target receives instead of the whole event.
    transform: tuple[dict[str, str], str] | None = None


class EventRule(pulumi.ComponentResource):
    """A rule and its target, which retries with a bounded age and dead-letters failures."""

    arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: EventRuleArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agentry:bus:EventRule", name, None, opts)
        child = named(self)
        self.rule = aws.cloudwatch.EventRule(
            f"{name}-rule",
            name=physical_name(args.stack, args.suffix),
            description=args.description,
            event_bus_name=args.bus_name,
            event_pattern=json.dumps(args.pattern, sort_keys=True),
            tags=dict(args.tags),
            opts=child,
        )
        self.target = aws.cloudwatch.EventTarget(
            f"{name}-target",
            rule=self.rule.name,
            event_bus_name=args.bus_name,
            target_id=args.suffix,
            arn=args.target_arn,
            role_arn=args.target_role_arn,
            input_transformer=None
            if args.transform is None
            else aws.cloudwatch.EventTargetInputTransformerArgs(
                input_paths=args.transform[0], input_template=args.transform[1]
            ),
            dead_letter_config=aws.cloudwatch.EventTargetDeadLetterConfigArgs(arn=args.dlq_arn),
            retry_policy=aws.cloudwatch.EventTargetRetryPolicyArgs(
                maximum_event_age_in_seconds=_MAX_EVENT_AGE_SECONDS,
                maximum_retry_attempts=_MAX_RETRY_ATTEMPTS,
            ),
            opts=child,
        )
        self.arn = self.rule.arn
        self.register_outputs({"arn": self.arn, "name": self.rule.name})
