"""The recovery workflow: a Standard state machine started by ``Agent Error`` events."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from agentry_platform.components._helpers import service_role
from agentry_platform.components._json import json_output
from agentry_platform.components._options import named
from agentry_platform.components.bus import EventRule, EventRuleArgs
from agentry_platform.lib.iam import (
    recovery_statements,
    statement,
    topic_publish_policy,
)
from agentry_platform.lib.naming import physical_name
from agentry_platform.lib.patterns import error_pattern
from agentry_platform.lib.recovery_definition import recovery_definition

__all__ = ["RecoveryStateMachine", "RecoveryStateMachineArgs"]


@dataclass
class RecoveryStateMachineArgs:
    """Inputs of :class:`RecoveryStateMachine`."""

    stack: str
    account_id: pulumi.Input[str]
    table_name: pulumi.Input[str]
    table_arn: pulumi.Input[str]
    bus_name: pulumi.Input[str]
    events_dlq_arn: pulumi.Input[str]
    topic_arn: pulumi.Input[str]
    max_attempts: int
    delay_seconds: int
    backoff_rate: float
    log_retention_days: int
    tags: Mapping[str, str]
    kms_key_arn: pulumi.Input[str] | None = None
    #: The human topic's key when the stack has no key of its own (the role publishes with it).
    topic_kms_key_arn: pulumi.Input[str] | None = None
    #: EventBridge rules that also deliver to the human topic (approval requests).
    topic_rule_arns: Sequence[pulumi.Input[str]] = ()


class RecoveryStateMachine(pulumi.ComponentResource):
    """State machine, its minimal role, logs, the error rule that starts it, and its grant to
    publish on the human topic."""

    arn: pulumi.Output[str]
    name: pulumi.Output[str]
    role_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: RecoveryStateMachineArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        # Renamed from agentry:workflow:RecoveryWorkflow; the alias keeps a deployed stack's
        # resources (their URNs derive from this type) instead of replacing them.
        opts = pulumi.ResourceOptions.merge(
            opts,
            pulumi.ResourceOptions(
                aliases=[pulumi.Alias(type_="agentry:workflow:RecoveryWorkflow")]
            ),
        )
        super().__init__("agentry:recovery:RecoveryStateMachine", name, None, opts)
        child = named(self)
        machine_name = physical_name(args.stack, "recovery")
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            # The vendedlogs prefix keeps Step Functions under the log resource policy size limit.
            name=f"/aws/vendedlogs/states/{machine_name}",
            retention_in_days=args.log_retention_days,
            kms_key_id=args.kms_key_arn,
            tags=dict(args.tags),
            opts=child,
        )
        self.role, self.policy = service_role(
            name,
            stack=args.stack,
            suffix="recovery",
            service="states.amazonaws.com",
            account_id=args.account_id,
            # The key that encrypts the human topic: the stack's, or the topics' own key.
            statements=pulumi.Output.all(
                args.table_arn, args.topic_arn, args.kms_key_arn or args.topic_kms_key_arn
            ).apply(lambda a: recovery_statements(table_arn=a[0], topic_arn=a[1], key_arn=a[2])),
            tags=args.tags,
            parent=self,
        )
        self.topic_policy = aws.sns.TopicPolicy(
            f"{name}-topic-policy",
            arn=args.topic_arn,
            policy=json_output(
                pulumi.Output.all(
                    args.topic_arn, args.account_id, self.role.arn, *args.topic_rule_arns
                ).apply(
                    lambda a: topic_publish_policy(
                        topic_arn=a[0], account_id=a[1], role_arns=[a[2]], rule_arns=a[3:]
                    )
                )
            ),
            opts=child,
        )
        definition = pulumi.Output.all(args.table_name, args.topic_arn).apply(
            lambda a: json.dumps(
                recovery_definition(
                    table_name=a[0],
                    topic_arn=a[1],
                    max_attempts=args.max_attempts,
                    delay_seconds=args.delay_seconds,
                    backoff_rate=args.backoff_rate,
                ),
                sort_keys=True,
            )
        )
        self.state_machine = aws.sfn.StateMachine(
            f"{name}-state-machine",
            name=machine_name,
            type="STANDARD",
            role_arn=self.role.arn,
            definition=definition,
            logging_configuration=aws.sfn.StateMachineLoggingConfigurationArgs(
                level="ALL",
                include_execution_data=True,
                log_destination=self.log_group.arn.apply(lambda arn: f"{arn}:*"),
            ),
            tracing_configuration=aws.sfn.StateMachineTracingConfigurationArgs(enabled=True),
            tags=dict(args.tags),
            opts=named(self, depends_on=[self.policy]),
        )
        self.start_role, self.start_policy = service_role(
            f"{name}-start",
            stack=args.stack,
            suffix="recovery-start",
            service="events.amazonaws.com",
            account_id=args.account_id,
            statements=self.state_machine.arn.apply(
                lambda arn: [statement("StartRecovery", ["states:StartExecution"], [arn])]
            ),
            tags=args.tags,
            parent=self,
        )
        self.error_rule = EventRule(
            f"{name}-errors",
            EventRuleArgs(
                stack=args.stack,
                suffix="agent-errors",
                description="Agent Error events start the recovery workflow",
                bus_name=args.bus_name,
                pattern=error_pattern(),
                target_arn=self.state_machine.arn,
                target_role_arn=self.start_role.arn,
                dlq_arn=args.events_dlq_arn,
                tags=args.tags,
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.start_policy]),
        )
        self.arn = self.state_machine.arn
        self.name = self.state_machine.name
        self.role_arn = self.role.arn
        self.register_outputs({"arn": self.arn, "name": self.name, "roleArn": self.role.arn})
