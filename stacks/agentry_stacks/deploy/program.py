"""The Pulumi program: one environment composed from ``agentry_platform`` components."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

from agentry_platform.bundle import Bundle, Source, build_bundle
from agentry_platform.components.alarms import Alarms, AlarmsArgs
from agentry_platform.components.bus import EventBus, EventBusArgs, EventRule, EventRuleArgs
from agentry_platform.components.function import AgentFunction, AgentFunctionArgs, QueueSource
from agentry_platform.components.http_api import HttpApi, HttpApiArgs
from agentry_platform.components.keys import EncryptionKey, EncryptionKeyArgs
from agentry_platform.components.operations import Operations, OperationsArgs
from agentry_platform.components.queue import StepQueue, StepQueueArgs
from agentry_platform.components.recovery_state_machine import (
    RecoveryWorkflow,
    RecoveryWorkflowArgs,
)
from agentry_platform.components.table import AgentTable, AgentTableArgs
from agentry_platform.components.toolset import Toolset, ToolsetArgs
from agentry_platform.components.topic import NotificationTopic, NotificationTopicArgs
from agentry_platform.lib.bedrock import InferenceProfileGrant, bedrock_statements
from agentry_platform.lib.iam import Statement, api_statements, rule_arn, worker_statements
from agentry_platform.lib.kms import KeyPath
from agentry_platform.lib.naming import physical_name, stack_tags
from agentry_platform.lib.patterns import step_pattern
from agentry_runtime.contract import AGENTS_FILE_NAME, Env, Handler
from agentry_runtime.settings import FunctionSettings as RuntimeSettings
from agentry_stacks.deploy.agents import ResolvedAgents, resolve_agents
from agentry_stacks.deploy.config import ConfigError, EnvironmentConfig, FunctionSettings, Problem
from agentry_stacks.deploy.toolsets import Distribution, fill_placeholders

__all__ = ["main", "run", "stack_bundle"]

_STEP_RULE = "step-requests"
_AGENTS = "agentry:agents"


#: Largest API request body (the API refuses larger bodies with 413).
MAX_REQUEST_BYTES = 64 * 1024


def _function_environment(
    config: EnvironmentConfig,
    agents: ResolvedAgents,
    runtime_version: str,
    table_name: pulumi.Output[str],
    bus_name: pulumi.Output[str],
) -> dict[str, pulumi.Input[str]]:
    """The variables every function gets: the runtime's settings contract, written once.

    One value per variable (not one object), so a variable that does not depend on an unknown
    stays known on a first preview, where the policy pack judges it.
    """
    names = {Env.TABLE_NAME.value: table_name, Env.EVENT_BUS_NAME.value: bus_name}
    # The contract writes every variable; the two names are filled in once AWS knows them.
    settings = RuntimeSettings(
        table_name="-",
        event_bus_name="-",
        runtime_version=runtime_version,
        agents_file=AGENTS_FILE_NAME,
        default_agent=agents.default,
        agents=agents.limits(),
        ttl_days=config.agent.ttl_days,
        max_request_bytes=MAX_REQUEST_BYTES,
        model_read_timeout_seconds=config.model_client.read_timeout_seconds,
        model_connect_timeout_seconds=config.model_client.connect_timeout_seconds,
        model_max_attempts=config.model_client.max_attempts,
    ).to_environment()
    return {name: names.get(name, value) for name, value in settings.items()}


def stack_bundle(config: EnvironmentConfig, agents: ResolvedAgents) -> Bundle:
    """The stack's bundle: the runtime, its agents' toolsets and the generated agents file."""
    return build_bundle(
        [_source(dist) for dist in agents.distributions()],
        runtime_version=agents.workspace.runtime.version,
        files={AGENTS_FILE_NAME: agents.agents_file().dumps()},
        architecture=config.lambda_architecture,
        python_version=config.lambda_runtime.removeprefix("python"),
    )


def _source(dist: Distribution) -> Source:
    return Source(
        name=dist.name,
        folder=dist.folder,
        packages=dist.packages,
        requirements=tuple(str(requirement) for requirement in dist.dependencies),
    )


def _toolsets(
    config: EnvironmentConfig,
    agents: ResolvedAgents,
    *,
    account_id: pulumi.Output[str],
    table: AgentTable,
    key_arn: pulumi.Output[str] | None,
    tags: Mapping[str, str],
) -> tuple[pulumi.Output[list[Statement]], dict[str, pulumi.Input[str]]]:
    """Every toolset's declared statements and variables, and those its hook returns."""
    values = pulumi.Output.all(table.arn, table.name, account_id).apply(
        lambda a: {
            "table_arn": a[0],
            "table_name": a[1],
            "account_id": a[2],
            "region": config.region,
            "stack": config.stack,
        }
    )
    statements: list[pulumi.Input[Any]] = []
    environment: dict[str, pulumi.Input[str]] = {}
    owners: dict[str, str] = {}

    def add(name: str, value: pulumi.Input[str], owner: str) -> None:
        if name in owners:
            raise ConfigError(
                [Problem(_AGENTS, f"toolsets {owners[name]} and {owner} both set {name}")]
            )
        owners[name] = owner
        environment[name] = value

    for dist in agents.toolsets():
        statements.append(values.apply(dist.resolve))
        for name, template in (dist.toolset.environment if dist.toolset else {}).items():
            add(
                name,
                template
                if "${" not in template
                else values.apply(functools.partial(fill_placeholders, template)),
                dist.name,
            )
        hook = dist.infrastructure_hook()
        if hook is None:
            continue
        toolset = Toolset(
            dist.name.removeprefix("agentry-"),
            ToolsetArgs(
                stack=config.stack,
                region=config.region,
                account_id=account_id,
                table_name=table.name,
                table_arn=table.arn,
                tags=tags,
                hook=hook,
                kms_key_arn=key_arn,
            ),
        )
        statements.append(pulumi.Output.from_input(toolset.grants.statements))
        for name, value in toolset.grants.environment.items():
            add(name, value, dist.name)
    merged_statements = pulumi.Output.all(*statements).apply(
        lambda lists: [statement for group in lists for statement in group]
    )
    return merged_statements, environment


def run(config: EnvironmentConfig) -> None:
    """Declare every resource of the environment ``config`` describes and export its outputs."""
    agents = resolve_agents(config)  # every agent problem, before any resource is declared
    stack = config.stack
    tags = stack_tags(stack, config.tags)
    account_id = aws.get_caller_identity_output().account_id
    bundle = stack_bundle(config, agents)

    key_arn: pulumi.Output[str] | None = None
    if config.customer_managed_key:
        key = EncryptionKey(
            "key",
            EncryptionKeyArgs(
                stack=stack,
                region=config.region,
                account_id=account_id,
                tags=tags,
                # EventBridge delivers to the encrypted queues, alarms to the encrypted topic,
                # CloudWatch Logs writes the encrypted groups: each exactly as AWS documents it.
                paths=(KeyPath.EVENTBRIDGE_TO_SQS, KeyPath.CLOUDWATCH_TO_SNS, KeyPath.LOGS),
            ),
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
    step_rule = EventRule(
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

    environment = _function_environment(
        config, agents, bundle.runtime_version, table.name, bus.name
    )
    toolset_statements, toolset_environment = _toolsets(
        config, agents, account_id=account_id, table=table, key_arn=key_arn, tags=tags
    )
    platform_names = set(environment) & set(toolset_environment)
    if platform_names:
        raise ConfigError(
            [Problem(_AGENTS, f"a toolset sets the platform's {sorted(platform_names)}")]
        )
    worker_environment = {**environment, **toolset_environment}
    profiles = [
        InferenceProfileGrant(id=p.id, model=p.model, regions=p.regions, kind=p.kind)
        for p in config.resolved_profiles()
    ]
    worker_policy = pulumi.Output.all(
        table.arn, bus.arn, steps.arn, account_id, key_arn, toolset_statements
    ).apply(
        lambda a: [
            *worker_statements(
                table_arn=a[0],
                bus_arn=a[1],
                queue_arn=a[2],
                bedrock=bedrock_statements(
                    region=config.region, account_id=a[3], models=config.models, profiles=profiles
                ),
                key_arn=a[4],
            ),
            *a[5],
        ]
    )

    def agent_function(
        name: str,
        handler: Handler,
        settings: FunctionSettings,
        statements: pulumi.Input[Sequence[Statement]],
        environment: Mapping[str, pulumi.Input[str]],
        queue: QueueSource | None = None,
    ) -> AgentFunction:
        # Both functions run the same bundle with the same settings; only these differ.
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
        worker_environment,
        QueueSource(
            queue_arn=steps.arn,
            batch_size=config.worker.batch_size,
            max_concurrency=config.worker.max_concurrency,
        ),
    )
    api_policy = pulumi.Output.all(table.arn, bus.arn, key_arn).apply(
        lambda a: api_statements(table_arn=a[0], bus_arn=a[1], key_arn=a[2])
    )
    api_function = agent_function("api", Handler.API, config.api, api_policy, environment)
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
    # admit cloudwatch.amazonaws.com): a stack without a key of its own gets one for its alarms.
    alarm_key_arn = key_arn
    if alarm_key_arn is None:
        alarm_key_arn = EncryptionKey(
            "alarms-key",
            EncryptionKeyArgs(
                stack=stack,
                region=config.region,
                account_id=account_id,
                tags=tags,
                paths=(KeyPath.CLOUDWATCH_TO_SNS,),
                suffix="alarms-key",
                description="the alarm topic (CloudWatch alarms publish to it)",
            ),
        ).arn
    alarm_topic = NotificationTopic(
        "alarms-topic",
        NotificationTopicArgs(
            stack=stack,
            suffix="alarms",
            display_name="Agentry alarms",
            emails=config.alarm_emails,
            account_id=account_id,
            kms_key_arn=alarm_key_arn,
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
            # The worker's alarm is Operations' worker-failures: failed records and errors.
            function_names={"api": api_function.name},
            state_machine_arn=recovery.arn,
            tags=tags,
        ),
    )
    operations = Operations(
        "operations",
        OperationsArgs(
            stack=stack,
            region=config.region,
            topic_arn=alarm_topic.arn,
            steps_queue_name=steps.queue.name,
            dead_letter_queue_names={"steps": steps.dlq.name, "events": bus.dlq.name},
            worker_function_name=worker.name,
            api_function_name=api_function.name,
            worker_timeout_seconds=config.worker.timeout_seconds,
            state_machine_arn=recovery.arn,
            bus_name=bus.name,
            rule_names=[step_rule.rule.name, recovery.error_rule.rule.name],
            models=sorted({limits.model for limits in agents.limits().values()}),
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
    pulumi.export("dashboardName", operations.dashboard_name)
    pulumi.export("runtimeVersion", bundle.runtime_version)
    pulumi.export("bundleSha256", bundle.sha256_hex)


def main() -> None:
    """Entry point of ``pulumi up``: validate the stack's config, then declare the stack."""
    try:
        config = EnvironmentConfig.from_pulumi()
        for warning in config.warnings():
            pulumi.log.warn(str(warning))
        run(config)
    except ConfigError as exc:
        # RunError makes the CLI print the message alone: each line names a key and the reason.
        raise pulumi.RunError(f"invalid stack config:\n{exc}") from None
