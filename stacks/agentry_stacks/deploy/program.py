"""The Pulumi program: one environment composed from ``agentry_platform`` components."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

from agentry_platform.bundle import Bundle, Source, build_bundle
from agentry_platform.components._helpers import dead_letter_queue
from agentry_platform.components._json import json_output
from agentry_platform.components.alarms import Alarms, AlarmsArgs
from agentry_platform.components.bus import EventBus, EventBusArgs, EventRule, EventRuleArgs
from agentry_platform.components.function import (
    AgentFunction,
    AgentFunctionArgs,
    QueueSource,
    StreamSource,
)
from agentry_platform.components.http_api import HttpApi, HttpApiArgs
from agentry_platform.components.keys import EncryptionKey, EncryptionKeyArgs
from agentry_platform.components.operations import Operations, OperationsArgs
from agentry_platform.components.queue import StepQueue, StepQueueArgs
from agentry_platform.components.recovery_state_machine import (
    RecoveryStateMachine,
    RecoveryStateMachineArgs,
)
from agentry_platform.components.schedule import Schedule, ScheduleArgs
from agentry_platform.components.table import AgentTable, AgentTableArgs
from agentry_platform.components.toolset import Toolset, ToolsetArgs
from agentry_platform.components.topic import NotificationTopic, NotificationTopicArgs
from agentry_platform.lib.bedrock import InferenceProfileGrant, bedrock_statements
from agentry_platform.lib.iam import (
    Statement,
    announcer_statements,
    api_statements,
    queue_tls_policy,
    reconciler_statements,
    rule_arn,
    worker_statements,
)
from agentry_platform.lib.kms import KeyPath
from agentry_platform.lib.naming import physical_name, stack_tags
from agentry_platform.lib.patterns import (
    approval_notification,
    approval_pattern,
    header_changes_pattern,
    step_pattern,
)
from agentry_runtime.contract import AGENTS_FILE_NAME, Env, Handler, Index
from agentry_runtime.observability import TRACE_SUBSEGMENTS_VARIABLE
from agentry_runtime.settings import AccessSettings, ReconcilerSettings
from agentry_runtime.settings import FunctionSettings as RuntimeSettings
from agentry_stacks.deploy.agents import ResolvedAgents, resolve_agents
from agentry_stacks.deploy.config import ConfigError, EnvironmentConfig, FunctionSettings, Problem
from agentry_stacks.deploy.toolsets import Distribution, fill_placeholders

__all__ = ["main", "run", "stack_bundle"]

_STEP_RULE = "step-requests"
_APPROVAL_RULE = "approvals"
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
        access=AccessSettings(
            operators=config.operators,
            max_active_agents_per_caller=config.max_active_agents_per_caller,
            approval_window_seconds=config.approvals.window_seconds,
        ),
    ).to_environment()
    variables: dict[str, pulumi.Input[str]] = {
        name: names.get(name, value) for name, value in settings.items()
    }
    if config.tracing_subsegments:
        # Absent by default: the handlers then never import the X-Ray SDK (observability).
        variables[TRACE_SUBSEGMENTS_VARIABLE] = "true"
    return variables


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
                # EventBridge delivers to the encrypted queues and the human topic, alarms to
                # the alarm topic, CloudWatch Logs writes the encrypted groups: each exactly as
                # AWS documents it.
                paths=(
                    KeyPath.EVENTBRIDGE_TO_SQS,
                    KeyPath.EVENTBRIDGE_TO_SNS,
                    KeyPath.CLOUDWATCH_TO_SNS,
                    KeyPath.LOGS,
                ),
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
            description="Step requests go to the step queue",
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
    profiles = [
        InferenceProfileGrant(id=p.id, model=p.model, regions=p.regions, kind=p.kind)
        for p in config.resolved_profiles()
    ]
    worker_policy = pulumi.Output.all(
        table.arn, steps.arn, account_id, key_arn, toolset_statements
    ).apply(
        lambda a: [
            *worker_statements(
                table_arn=a[0],
                queue_arn=a[1],
                bedrock=bedrock_statements(
                    region=config.region, account_id=a[2], models=config.models, profiles=profiles
                ),
                key_arn=a[3],
            ),
            *a[4],
        ]
    )

    def agent_function(
        name: str,
        handler: Handler,
        settings: FunctionSettings,
        statements: pulumi.Input[Sequence[Statement]],
        variables: Mapping[str, pulumi.Input[str]],
        *,
        queue: QueueSource | None = None,
        stream: StreamSource | None = None,
    ) -> AgentFunction:
        # Every function runs the same bundle with the same settings; only these differ.
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
                environment=variables,
                statements=statements,
                runtime=config.lambda_runtime,
                architecture=config.lambda_architecture,
                kms_key_arn=key_arn,
                queue=queue,
                stream=stream,
                tags=tags,
            ),
        )

    worker = agent_function(
        "worker",
        Handler.WORKER,
        config.worker,
        worker_policy,
        {**environment, **toolset_environment},
        queue=QueueSource(
            queue_arn=steps.arn,
            batch_size=config.worker.batch_size,
            max_concurrency=config.worker.max_concurrency,
        ),
    )
    api_policy = pulumi.Output.all(table.arn, key_arn).apply(
        lambda a: api_statements(table_arn=a[0], owner_index=Index.OWNER.value, key_arn=a[1])
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

    # The outbox: the table's stream feeds the announcer, the only publisher on the bus.
    announcer_failures = dead_letter_queue(
        "announcer-failures",
        stack=stack,
        suffix="announcer-failures",
        kms_key_arn=key_arn,
        tags=tags,
        parent=table,
    )
    aws.sqs.QueuePolicy(
        "announcer-failures-policy",
        queue_url=announcer_failures.url,
        policy=json_output(
            announcer_failures.arn.apply(lambda arn: queue_tls_policy(queue_arn=arn))
        ),
        # One policy per queue: its replacement must not be created before the old one goes.
        opts=pulumi.ResourceOptions(parent=table, delete_before_replace=True),
    )
    announcer_policy = pulumi.Output.all(
        table.arn, table.stream_arn, bus.arn, announcer_failures.arn, key_arn
    ).apply(
        lambda a: announcer_statements(
            table_arn=a[0], stream_arn=a[1], bus_arn=a[2], failure_queue_arn=a[3], key_arn=a[4]
        )
    )
    announcer = agent_function(
        "announcer",
        Handler.ANNOUNCER,
        config.announcer,
        announcer_policy,
        environment,
        stream=StreamSource(
            stream_arn=table.stream_arn,
            failure_queue_arn=announcer_failures.arn,
            batch_size=config.announcer.batch_size,
            max_retries=config.announcer.max_retries,
            max_record_age_seconds=config.announcer.max_record_age_seconds,
            filters=[json.dumps(pattern, sort_keys=True) for pattern in header_changes_pattern()],
        ),
    )

    reconciler_environment = _reconciler_environment(config, environment, steps.dlq.url)
    reconciler_policy = pulumi.Output.all(table.arn, steps.dlq_arn, key_arn).apply(
        lambda a: reconciler_statements(
            table_arn=a[0],
            active_index=Index.ACTIVE.value,
            dead_letter_queue_arn=a[1],
            key_arn=a[2],
        )
    )
    reconciler = agent_function(
        "reconciler",
        Handler.RECONCILER,
        config.reconciler,
        reconciler_policy,
        reconciler_environment,
    )
    reconcile_schedule = Schedule(
        "reconcile",
        ScheduleArgs(
            stack=stack,
            suffix="reconcile",
            description="Re-announce stalled agents, re-drive dead-lettered steps",
            schedule_expression=f"rate({config.reconciler.schedule_minutes} minutes)"
            if config.reconciler.schedule_minutes > 1
            else "rate(1 minute)",
            function_arn=reconciler.arn,
            function_name=reconciler.name,
            dlq_arn=bus.dlq_arn,
            tags=tags,
        ),
    )

    # Services cannot publish to a topic under the AWS managed SNS key (its policy admits no
    # service principal): CloudWatch alarms and the approval rule need a customer-managed key,
    # so a stack without a key of its own gets one for its two topics.
    topics_key_arn = key_arn
    if topics_key_arn is None:
        topics_key_arn = EncryptionKey(
            "topics-key",
            EncryptionKeyArgs(
                stack=stack,
                region=config.region,
                account_id=account_id,
                tags=tags,
                paths=(KeyPath.EVENTBRIDGE_TO_SNS, KeyPath.CLOUDWATCH_TO_SNS),
                suffix="topics-key",
                description="the human and alarm topics (EventBridge and alarms publish)",
            ),
        ).arn
    humans = NotificationTopic(
        "humans",
        NotificationTopicArgs(
            stack=stack,
            suffix="needs-human",
            display_name="Agentry: agents that need a human",
            emails=config.human_emails,
            account_id=account_id,
            kms_key_arn=topics_key_arn,
            tags=tags,
        ),
    )
    recovery = RecoveryStateMachine(
        "recovery",
        RecoveryStateMachineArgs(
            stack=stack,
            account_id=account_id,
            table_name=table.name,
            table_arn=table.arn,
            bus_name=bus.name,
            events_dlq_arn=bus.dlq_arn,
            topic_arn=humans.arn,
            max_attempts=config.recovery.max_attempts,
            delay_seconds=config.recovery.delay_seconds,
            backoff_rate=config.recovery.backoff_rate,
            log_retention_days=config.log_retention_days,
            kms_key_arn=key_arn,
            topic_kms_key_arn=topics_key_arn,
            tags=tags,
            # Named ahead of the rule, which needs the topic: the ARN follows from the name.
            topic_rule_arns=[
                bus.arn.apply(lambda arn: rule_arn(arn, physical_name(stack, _APPROVAL_RULE)))
            ],
        ),
    )
    # Approval requests go straight to the humans: ids and tool names only (the event holds
    # nothing else), the inputs are at GET /agents/{id}/approvals for the owner or an operator.
    approval_rule = EventRule(
        "approval-rule",
        EventRuleArgs(
            stack=stack,
            suffix=_APPROVAL_RULE,
            description="Calls waiting for a person's approval go to the human topic",
            bus_name=bus.name,
            pattern=approval_pattern(),
            target_arn=humans.arn,
            transform=approval_notification(),
            dlq_arn=bus.dlq_arn,
            tags=tags,
        ),
        opts=pulumi.ResourceOptions(depends_on=[recovery]),
    )
    # Only the announcer may put agentry.* events on the bus: every writer only commits.
    bus.restrict_publishers([announcer.role_arn])
    alarm_topic = NotificationTopic(
        "alarms-topic",
        NotificationTopicArgs(
            stack=stack,
            suffix="alarms",
            display_name="Agentry alarms",
            emails=config.alarm_emails,
            account_id=account_id,
            kms_key_arn=topics_key_arn,
            publisher_service="cloudwatch.amazonaws.com",
            tags=tags,
        ),
    )
    Alarms(
        "alarms",
        AlarmsArgs(
            stack=stack,
            topic_arn=alarm_topic.arn,
            dlq_names={
                "steps": steps.dlq.name,
                "events": bus.dlq.name,
                "announcer": announcer_failures.name,
            },
            # The worker's alarm is Operations' worker-failures: failed records and errors.
            function_names={
                "api": api_function.name,
                "announcer": announcer.name,
                "reconciler": reconciler.name,
            },
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
            dead_letter_queue_names={
                "steps": steps.dlq.name,
                "events": bus.dlq.name,
                "announcer": announcer_failures.name,
            },
            worker_function_name=worker.name,
            api_function_name=api_function.name,
            worker_timeout_seconds=config.worker.timeout_seconds,
            state_machine_arn=recovery.arn,
            rules=[
                (bus.name, step_rule.rule.name),
                (bus.name, recovery.error_rule.rule.name),
                (bus.name, approval_rule.rule.name),
                ("default", reconcile_schedule.rule.name),
            ],
            models=sorted({limits.model for limits in agents.limits().values()}),
            tags=tags,
        ),
    )

    pulumi.export("apiEndpoint", api.endpoint)
    pulumi.export("eventBusName", bus.name)
    pulumi.export("eventBusArn", bus.arn)
    pulumi.export("tableName", table.name)
    pulumi.export("tableArn", table.arn)
    pulumi.export("tableStreamArn", table.stream_arn)
    pulumi.export("stepQueueUrl", steps.url)
    pulumi.export("stepQueueArn", steps.arn)
    pulumi.export("humanTopicArn", humans.arn)
    pulumi.export("alarmTopicArn", alarm_topic.arn)
    pulumi.export("recoveryStateMachineArn", recovery.arn)
    pulumi.export("recoveryStateMachineName", recovery.name)
    pulumi.export("workerFunctionName", worker.name)
    pulumi.export("apiFunctionName", api_function.name)
    pulumi.export("announcerFunctionName", announcer.name)
    pulumi.export("reconcilerFunctionName", reconciler.name)
    pulumi.export("dashboardName", operations.dashboard_name)
    pulumi.export("runtimeVersion", bundle.runtime_version)
    pulumi.export("bundleSha256", bundle.sha256_hex)


def _reconciler_environment(
    config: EnvironmentConfig,
    environment: Mapping[str, pulumi.Input[str]],
    dead_letter_queue_url: pulumi.Output[str],
) -> dict[str, pulumi.Input[str]]:
    """The reconciler's variables: everyone's, and its own settings (through the contract)."""
    settings = dead_letter_queue_url.apply(
        lambda url: ReconcilerSettings(
            stale_after_seconds=config.reconciler.stale_after_seconds,
            max_redrives=config.reconciler.max_redrives,
            dead_letter_queue_url=url,
        ).model_dump_json(by_alias=True)
    )
    return {**environment, Env.RECONCILER.value: settings}


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
