"""CloudWatch alarms on what needs a person: dead letters, function errors, failed recoveries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from agentry_platform.components._options import named
from agentry_platform.lib.naming import physical_name

__all__ = ["Alarms", "AlarmsArgs"]

_PERIOD_SECONDS = 300


@dataclass
class AlarmsArgs:
    """Inputs of :class:`Alarms`: what to watch and where to send alarms."""

    stack: str
    topic_arn: pulumi.Input[str]
    dlq_names: Mapping[str, pulumi.Input[str]]
    function_names: Mapping[str, pulumi.Input[str]]
    state_machine_arn: pulumi.Input[str]
    tags: Mapping[str, str]


class Alarms(pulumi.ComponentResource):
    """One alarm per DLQ (any visible message), per function (any error), and per failed run."""

    alarms: Sequence[aws.cloudwatch.MetricAlarm]

    def __init__(
        self, name: str, args: AlarmsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agentry:alarms:Alarms", name, None, opts)
        self._prefix = name
        alarms: list[aws.cloudwatch.MetricAlarm] = []
        for key, queue_name in args.dlq_names.items():
            alarms.append(
                self._alarm(
                    args,
                    f"{key}-dlq-depth",
                    "A message reached a dead-letter queue: inspect and redrive it",
                    namespace="AWS/SQS",
                    metric="ApproximateNumberOfMessagesVisible",
                    statistic="Maximum",
                    dimensions={"QueueName": queue_name},
                )
            )
        for key, function_name in args.function_names.items():
            alarms.append(
                self._alarm(
                    args,
                    f"{key}-errors",
                    f"The {key} function raised errors",
                    namespace="AWS/Lambda",
                    metric="Errors",
                    statistic="Sum",
                    dimensions={"FunctionName": function_name},
                )
            )
        alarms.append(
            self._alarm(
                args,
                "recovery-failed",
                "A recovery execution failed: an agent may be stuck without a human knowing",
                namespace="AWS/States",
                metric="ExecutionsFailed",
                statistic="Sum",
                dimensions={"StateMachineArn": args.state_machine_arn},
            )
        )
        self.alarms = alarms
        self.register_outputs({"alarms": [alarm.name for alarm in alarms]})

    def _alarm(
        self,
        args: AlarmsArgs,
        suffix: str,
        description: str,
        *,
        namespace: str,
        metric: str,
        statistic: str,
        dimensions: Mapping[str, pulumi.Input[str]],
    ) -> aws.cloudwatch.MetricAlarm:
        return aws.cloudwatch.MetricAlarm(
            f"{self._prefix}-{suffix}",
            name=physical_name(args.stack, suffix),
            alarm_description=description,
            namespace=namespace,
            metric_name=metric,
            statistic=statistic,
            dimensions=dict(dimensions),
            period=_PERIOD_SECONDS,
            evaluation_periods=1,
            threshold=0,
            comparison_operator="GreaterThanThreshold",
            treat_missing_data="notBreaching",
            alarm_actions=[args.topic_arn],
            ok_actions=[args.topic_arn],
            tags=dict(args.tags),
            opts=named(self),
        )
