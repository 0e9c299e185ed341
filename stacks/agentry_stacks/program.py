"""The Pulumi program: one environment composed from ``agentry_platform`` components."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_aws as aws

from agentry_platform.alarms import Alarms, AlarmsArgs
from agentry_platform.bedrock import InferenceProfileGrant, bedrock_statements
from agentry_platform.bundle import build_bundle
from agentry_platform.bus import EventBus, EventBusArgs, EventRule, EventRuleArgs
from agentry_platform.function import AgentFunction, AgentFunctionArgs, QueueSource
from agentry_platform.http_api import HttpApi, HttpApiArgs
from agentry_platform.iam import Statement, api_statements, rule_arn, worker_statements
from agentry_platform.keys import EncryptionKey, EncryptionKeyArgs
from agentry_platform.naming import physical_name, stack_tags
from agentry_platform.patterns import step_pattern
from agentry_platform.queue import StepQueue, StepQueueArgs
from agentry_platform.table import AgentTable, AgentTableArgs
from agentry_platform.topic import NotificationTopic, NotificationTopicArgs
from agentry_platform.workflow import RecoveryWorkflow, RecoveryWorkflowArgs
from agentry_runtime.contract import Env, Handler
from agentry_stacks.config import ConfigError, EnvironmentConfig, FunctionSettings

__all__ = ["main", "run"]

_STEP_RULE = "step-requests"


def _agent_environment(
    config: EnvironmentConfig, table_name: pulumi.Output[str], bus_name: pulumi.Output[str]
) -> dict[str, pulumi.Input[str]]:
    agent = config.agent
    return {
        Env.TABLE_NAME.value: table_name,
        Env.EVENT_BUS_NAME.value: bus_name,
        Env.MODEL_ID.value: config.default_model,
        Env.MAX_STEPS.value: str(agent.max_steps),
        Env.MAX_TOOL_FAILURES.value: str(agent.max_tool_failures),
        Env.MAX_PLAN_RETRIES.value: str(agent.max_plan_retries),
        Env.TOOL_TIMEOUT_SECONDS.value: str(agent.tool_timeout_seconds),
        Env.TOKEN_BUDGET.value: str(agent.token_budget),
        Env.MAX_OUTPUT_TOKENS.value: str(agent.max_output_tokens),
        Env.TEMPERATURE.value: str(agent.temperature),
        Env.PROMPT_CACHING.value: "true" if agent.prompt_caching else "false",
        Env.AGENT_TTL_DAYS.value: str(agent.ttl_days),
    }


def run(config: EnvironmentConfig) -> None:
    """Declare every resource of the environment ``config`` describes and export its outputs."""
    stack = config.stack
    tags = stack_tags(stack, config.tags)
    account_id = aws.get_caller_identity_output().account_id
    bundle = build_bundle(
        architecture=config.lambda_architecture,
        python_version=config.lambda_runtime.removeprefix("python"),
    )

    key_arn: pulumi.Output[str] | None = None
    if config.customer_managed_key:
        key = EncryptionKey(
            "key",
            EncryptionKeyArgs(stack=stack, region=config.region, account_id=account_id, tags=tags),
        )
        key_arn = key.arn

    table = AgentTable(
        "table",
        AgentTableArgs(
            stack=stack,
            point_in_time_recovery=config.point_in_time_recovery,
            deletion_protection=config.deletion_protection,
            kms_key_arn=key_arn,
            tags=tags,
        ),
    )
    bus = EventBus(
        "events",
        EventBusArgs(
            stack=stack, archive_days=config.event_archive_days, kms_key_arn=key_arn, tags=tags
        ),
    )
    steps = StepQueue(
        "steps",
        StepQueueArgs(
            stack=stack,
            worker_timeout_seconds=config.worker.timeout_seconds,
            max_receive_count=config.max_receive_count,
            # The rule's ARN follows from its explicit name, which breaks the queue <-> rule cycle.
            sender_rule_arn=bus.arn.apply(
                lambda arn: rule_arn(arn, physical_name(stack, _STEP_RULE))
            ),
            kms_key_arn=key_arn,
            tags=tags,
        ),
    )
    EventRule(
        "step-rule",
        EventRuleArgs(
            stack=stack,
            suffix=_STEP_RULE,
            description="Step requests (runtime and recovery) go to the step queue",
            bus_name=bus.name,
            pattern=step_pattern(),
            target_arn=steps.arn,
            dlq_arn=bus.dlq_arn,
            tags=tags,
        ),
    )

    environment = _agent_environment(config, table.name, bus.name)
    profiles = [
        InferenceProfileGrant(id=p.id, model=p.model, regions=tuple(p.regions))
        for p in config.inference_profiles
    ]
    worker_policy = pulumi.Output.all(table.arn, bus.arn, steps.arn, account_id, key_arn).apply(
        lambda a: worker_statements(
            table_arn=a[0],
            bus_arn=a[1],
            queue_arn=a[2],
            bedrock=bedrock_statements(
                region=config.region, account_id=a[3], models=config.models, profiles=profiles
            ),
            key_arn=a[4],
        )
    )

    def agent_function(
        name: str,
        handler: Handler,
        settings: FunctionSettings,
        statements: pulumi.Input[Sequence[Statement]],
        queue: QueueSource | None = None,
    ) -> AgentFunction:
        # Both functions run the same bundle with the same environment; only these differ.
        return AgentFunction(
            name,
            AgentFunctionArgs(
                stack=stack,
                suffix=name,
                handler=handler,
                bundle=bundle,
                account_id=account_id,
                memory_mb=settings.memory_mb,
                timeout_seconds=settings.timeout_seconds,
                reserved_concurrency=settings.reserved_concurrency,
                log_retention_days=config.log_retention_days,
                environment=environment,
                statements=statements,
                runtime=config.lambda_runtime,
                architecture=config.lambda_architecture,
                kms_key_arn=key_arn,
                queue=queue,
                tags=tags,
            ),
        )

    worker = agent_function(
        "worker",
        Handler.WORKER,
        config.worker,
        worker_policy,
        QueueSource(
            queue_arn=steps.arn,
            batch_size=config.worker.batch_size,
            max_concurrency=config.worker.max_concurrency,
        ),
    )
    api_policy = pulumi.Output.all(table.arn, bus.arn, key_arn).apply(
        lambda a: api_statements(table_arn=a[0], bus_arn=a[1], key_arn=a[2])
    )
    api_function = agent_function("api", Handler.API, config.api, api_policy)
    api = HttpApi(
        "http",
        HttpApiArgs(
            stack=stack,
            function_name=api_function.name,
            function_invoke_arn=api_function.invoke_arn,
            throttle_burst=config.api.throttle_burst,
            throttle_rate=config.api.throttle_rate,
            log_retention_days=config.log_retention_days,
            kms_key_arn=key_arn,
            tags=tags,
        ),
    )

    humans = NotificationTopic(
        "humans",
        NotificationTopicArgs(
            stack=stack,
            suffix="needs-human",
            display_name="Agentry: agents that need a human",
            emails=config.human_emails,
            account_id=account_id,
            kms_key_arn=key_arn,
            tags=tags,
        ),
    )
    recovery = RecoveryWorkflow(
        "recovery",
        RecoveryWorkflowArgs(
            stack=stack,
            account_id=account_id,
            table_name=table.name,
            table_arn=table.arn,
            bus_name=bus.name,
            bus_arn=bus.arn,
            events_dlq_arn=bus.dlq_arn,
            topic_arn=humans.arn,
            max_attempts=config.recovery.max_attempts,
            delay_seconds=config.recovery.delay_seconds,
            backoff_rate=config.recovery.backoff_rate,
            log_retention_days=config.log_retention_days,
            kms_key_arn=key_arn,
            tags=tags,
        ),
    )
    # Only the platform's own publishers may put agentry.* events on the bus (issue #11).
    bus.restrict_publishers([worker.role_arn, api_function.role_arn, recovery.role_arn])
    # CloudWatch cannot publish to a topic under the AWS managed SNS key (its key policy does not
    # admit cloudwatch.amazonaws.com); only the CMK, whose policy does, delivers alarms.
    alarm_topic = NotificationTopic(
        "alarms-topic",
        NotificationTopicArgs(
            stack=stack,
            suffix="alarms",
            display_name="Agentry alarms",
            emails=config.alarm_emails,
            account_id=account_id,
            kms_key_arn=key_arn,
            publisher_service="cloudwatch.amazonaws.com",
            tags=tags,
        ),
    )
    Alarms(
        "alarms",
        AlarmsArgs(
            stack=stack,
            topic_arn=alarm_topic.arn,
            dlq_names={"steps": steps.dlq.name, "events": bus.dlq.name},
            function_names={"worker": worker.name, "api": api_function.name},
            state_machine_arn=recovery.arn,
            tags=tags,
        ),
    )

    pulumi.export("apiEndpoint", api.endpoint)
    pulumi.export("eventBusName", bus.name)
    pulumi.export("eventBusArn", bus.arn)
    pulumi.export("tableName", table.name)
    pulumi.export("tableArn", table.arn)
    pulumi.export("stepQueueUrl", steps.url)
    pulumi.export("stepQueueArn", steps.arn)
    pulumi.export("humanTopicArn", humans.arn)
    pulumi.export("alarmTopicArn", alarm_topic.arn)
    pulumi.export("recoveryStateMachineArn", recovery.arn)
    pulumi.export("recoveryStateMachineName", recovery.name)
    pulumi.export("workerFunctionName", worker.name)
    pulumi.export("apiFunctionName", api_function.name)
    pulumi.export("runtimeVersion", bundle.runtime_version)
    pulumi.export("bundleSha256", bundle.sha256_hex)


def main() -> None:
    """Entry point of ``pulumi up``: validate the stack's config, then declare the stack."""
    try:
        config = EnvironmentConfig.from_pulumi()
    except ConfigError as exc:
        # RunError makes the CLI print the message alone: each line names a key and the reason.
        raise pulumi.RunError(f"invalid stack config:\n{exc}") from None
    run(config)
