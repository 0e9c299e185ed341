"""A function run on a schedule: an EventBridge rule on the default bus, its target and grant."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from agentry_platform.components._options import named
from agentry_platform.lib.naming import physical_name

__all__ = ["Schedule", "ScheduleArgs"]

# A scheduled run that cannot be delivered within an hour is superseded by the next one.
_MAX_EVENT_AGE_SECONDS = 3600
_MAX_RETRY_ATTEMPTS = 5


@dataclass
class ScheduleArgs:
    """Inputs of :class:`Schedule`."""

    stack: str
    suffix: str
    description: str
    schedule_expression: str
    function_arn: pulumi.Input[str]
    function_name: pulumi.Input[str]
    dlq_arn: pulumi.Input[str]
    tags: Mapping[str, str]


class Schedule(pulumi.ComponentResource):
    """Invokes a function on ``schedule_expression`` (e.g. ``rate(5 minutes)``)."""

    rule_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: ScheduleArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agentry:schedule:Schedule", name, None, opts)
        child = named(self)
        # Scheduled rules live on the account's default bus (custom buses take no schedules).
        self.rule = aws.cloudwatch.EventRule(
            f"{name}-rule",
            name=physical_name(args.stack, args.suffix),
            description=args.description,
            schedule_expression=args.schedule_expression,
            tags=dict(args.tags),
            opts=child,
        )
        self.target = aws.cloudwatch.EventTarget(
            f"{name}-target",
            rule=self.rule.name,
            target_id=args.suffix,
            arn=args.function_arn,
            dead_letter_config=aws.cloudwatch.EventTargetDeadLetterConfigArgs(arn=args.dlq_arn),
            retry_policy=aws.cloudwatch.EventTargetRetryPolicyArgs(
                maximum_event_age_in_seconds=_MAX_EVENT_AGE_SECONDS,
                maximum_retry_attempts=_MAX_RETRY_ATTEMPTS,
            ),
            opts=child,
        )
        self.permission = aws.lambda_.Permission(
            f"{name}-invoke-permission",
            action="lambda:InvokeFunction",
            function=args.function_name,
            principal="events.amazonaws.com",
            source_arn=self.rule.arn,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.rule_arn = self.rule.arn
        self.register_outputs({"ruleArn": self.rule_arn, "schedule": args.schedule_expression})
