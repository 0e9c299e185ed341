"""What an operator watches: the stack's CloudWatch dashboard and its operational alarms.

Alarms: agent errors by type (``ModelNotAvailable`` is the model access alarm), stuck agents
(the oldest step message's age), EventBridge deliveries that failed (``FailedInvocations`` of
each rule), and the worker's failures counted as failed records plus function errors (a partial
batch failure is no function error). The dashboard and alarms read the runtime's metric names
from its contract, through ``lib/operations.py``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from agentry_platform.components._options import named
from agentry_platform.lib.naming import physical_name
from agentry_platform.lib.operations import (
    ErrorAlarm,
    OperationsNames,
    dashboard_body,
    error_alarms,
    stuck_after_seconds,
)
from agentry_runtime.contract import METRICS_NAMESPACE, METRICS_SERVICE, Metric, MetricDimension

__all__ = ["Operations", "OperationsArgs"]

_PERIOD_SECONDS = 300


@dataclass
class OperationsArgs:
    """Inputs of :class:`Operations`: what to watch and where alarms go."""

    stack: str
    region: str
    topic_arn: pulumi.Input[str]
    steps_queue_name: pulumi.Input[str]
    dead_letter_queue_names: Mapping[str, pulumi.Input[str]]
    worker_function_name: pulumi.Input[str]
    api_function_name: pulumi.Input[str]
    worker_timeout_seconds: int
    state_machine_arn: pulumi.Input[str]
    #: ``(bus name, rule name)`` of every rule whose deliveries are watched (``default`` for a
    #: rule of the account's default bus, such as a schedule).
    rules: Sequence[tuple[pulumi.Input[str], pulumi.Input[str]]]
    models: Sequence[str]
    tags: Mapping[str, str]


class Operations(pulumi.ComponentResource):
    """The dashboard, and the alarms on errors by type, stuck agents, failed deliveries and the
    worker's failed records."""

    dashboard_name: pulumi.Output[str]
    alarms: list[aws.cloudwatch.MetricAlarm]

    def __init__(
        self, name: str, args: OperationsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agentry:operations:Operations", name, None, opts)
        self._prefix = name
        self._args = args
        body = pulumi.Output.all(
            args.steps_queue_name,
            args.worker_function_name,
            args.api_function_name,
            args.state_machine_arn,
            pulumi.Output.all(*args.dead_letter_queue_names.values()),
            pulumi.Output.all(*[pulumi.Output.all(bus, rule) for bus, rule in args.rules]),
        ).apply(
            lambda a: json.dumps(
                dashboard_body(
                    OperationsNames(
                        region=args.region,
                        steps_queue=a[0],
                        dead_letter_queues=dict(
                            zip(args.dead_letter_queue_names, a[4], strict=True)
                        ),
                        functions={"worker": a[1], "api": a[2]},
                        state_machine_arn=a[3],
                        rules=[(bus, rule) for bus, rule in a[5]],
                        models=list(args.models),
                    )
                ),
                sort_keys=True,
            )
        )
        self.dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=physical_name(args.stack, "operations"),
            dashboard_body=body,
            opts=named(self),
        )
        alarms = [self._error_alarm(alarm) for alarm in error_alarms()]
        alarms.append(
            self._alarm(
                "stuck-agents",
                "Step events wait in the queue with no worker taking them: agents are stuck",
                namespace="AWS/SQS",
                metric="ApproximateAgeOfOldestMessage",
                statistic="Maximum",
                dimensions={"QueueName": args.steps_queue_name},
                threshold=stuck_after_seconds(args.worker_timeout_seconds),
            )
        )
        for index, (bus, rule) in enumerate(args.rules):
            alarms.append(
                self._alarm(
                    f"failed-invocations-{index}",
                    "EventBridge could not deliver events of a rule to its target (they go to "
                    "the events DLQ after retries)",
                    namespace="AWS/Events",
                    metric="FailedInvocations",
                    statistic="Sum",
                    dimensions={"EventBusName": bus, "RuleName": rule},
                )
            )
        alarms.append(self._worker_failures())
        self.alarms = alarms
        self.dashboard_name = self.dashboard.dashboard_name
        self.register_outputs(
            {"dashboard": self.dashboard_name, "alarms": [a.name for a in alarms]}
        )

    def _error_alarm(self, alarm: ErrorAlarm) -> aws.cloudwatch.MetricAlarm:
        return self._alarm(
            alarm.suffix,
            alarm.description,
            namespace=METRICS_NAMESPACE,
            metric=Metric.AGENT_ERRORS.value,
            statistic="Sum",
            dimensions={
                MetricDimension.ERROR_TYPE.value: alarm.error_type.value,
                "service": METRICS_SERVICE,
            },
            threshold=alarm.threshold,
        )

    def _alarm(
        self,
        suffix: str,
        description: str,
        *,
        namespace: str,
        metric: str,
        statistic: str,
        dimensions: Mapping[str, pulumi.Input[str]],
        threshold: float = 0,
    ) -> aws.cloudwatch.MetricAlarm:
        args = self._args
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
            threshold=threshold,
            comparison_operator="GreaterThanThreshold",
            treat_missing_data="notBreaching",
            alarm_actions=[args.topic_arn],
            ok_actions=[args.topic_arn],
            tags=dict(args.tags),
            opts=named(self),
        )

    def _worker_failures(self) -> aws.cloudwatch.MetricAlarm:
        """Failed step records (reported as batch item failures) plus function errors."""
        args = self._args

        def query(
            query_id: str, namespace: str, metric: str, dimensions: Mapping[str, pulumi.Input[str]]
        ) -> aws.cloudwatch.MetricAlarmMetricQueryArgs:
            return aws.cloudwatch.MetricAlarmMetricQueryArgs(
                id=query_id,
                return_data=False,
                metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                    namespace=namespace,
                    metric_name=metric,
                    dimensions=dict(dimensions),
                    period=_PERIOD_SECONDS,
                    stat="Sum",
                ),
            )

        return aws.cloudwatch.MetricAlarm(
            f"{self._prefix}-worker-failures",
            name=physical_name(args.stack, "worker-failures"),
            alarm_description="The worker failed step records (they come back, then go to the "
            "steps DLQ) or raised errors",
            metric_queries=[
                query(
                    "records",
                    METRICS_NAMESPACE,
                    Metric.FAILED_RECORDS.value,
                    {"service": METRICS_SERVICE},
                ),
                query(
                    "errors", "AWS/Lambda", "Errors", {"FunctionName": args.worker_function_name}
                ),
                aws.cloudwatch.MetricAlarmMetricQueryArgs(
                    id="failures",
                    expression="FILL(records, 0) + FILL(errors, 0)",
                    label="Failed step records and worker errors",
                    return_data=True,
                ),
            ],
            evaluation_periods=1,
            threshold=0,
            comparison_operator="GreaterThanThreshold",
            treat_missing_data="notBreaching",
            alarm_actions=[args.topic_arn],
            ok_actions=[args.topic_arn],
            tags=dict(args.tags),
            opts=named(self),
        )
