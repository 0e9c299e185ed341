"""The limits check: settings that live on different resources must agree, on any graph.

``agentry limits STACK`` (part of ``make check``) reads a stack's planned graph, or any graph in
the ``agentry plan --json`` format, and reports each disagreement with the resource it names:

- ``worker-batch``: a worker's batch (records one after the other, each a step whose model calls
  are bounded by the Bedrock client's read and connect timeouts and attempts, read from the
  function's environment) finishes inside the function timeout, and the queue's visibility
  timeout is at least six times the function timeout;
- ``api-concurrency``: a function behind an HTTP API stage reserves the concurrency the stage's
  throttle can ask of it (the burst, and the rate times the function timeout);
- ``environment-size``: every function's environment fits Lambda's 4 KB;
- ``statelint``: every state machine definition passes statelint;
- ``key-use``: each principal that uses a customer-managed key (a service delivering to an
  encrypted queue or topic, CloudWatch Logs, a role consuming or publishing) is granted exactly
  what AWS documents for that path, judged by evaluating the calls it makes with the request
  context it sends (``agentry_platform.lib.kms``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from statelint.linter import Linter

from agentry_platform.lib.kms import KeyPath, RoleKeyUse, role_key_use, service_grant
from agentry_platform.lib.limits import (
    LAMBDA_ENVIRONMENT_LIMIT_BYTES,
    VISIBILITY_TIMEOUT_FACTOR,
    StepBudget,
    api_concurrency_needed,
    environment_bytes,
    worst_model_call_seconds,
)
from agentry_policies.documents import (
    Decision,
    PolicyDocument,
    PolicyDocumentError,
    Request,
    UndecidableError,
    evaluate,
    parse_document,
)
from agentry_runtime.contract import Env

__all__ = ["CHECKS", "LimitsError", "LimitsFinding", "LimitsReport", "check_limits", "limits_stack"]

#: The checks, in the order they run.
CHECKS = ("worker-batch", "api-concurrency", "environment-size", "statelint", "key-use")

_FUNCTION = "aws:lambda/function:Function"
_MAPPING = "aws:lambda/eventSourceMapping:EventSourceMapping"
_QUEUE = "aws:sqs/queue:Queue"
_TOPIC = "aws:sns/topic:Topic"
_KEY = "aws:kms/key:Key"
_ALIAS = "aws:kms/alias:Alias"
_LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
_TARGET = "aws:cloudwatch/eventTarget:EventTarget"
_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
_STAGE = "aws:apigatewayv2/stage:Stage"
_INTEGRATION = "aws:apigatewayv2/integration:Integration"
_STATE_MACHINE = "aws:sfn/stateMachine:StateMachine"
_ROLE = "aws:iam/role:Role"
_ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
_TABLE = "aws:dynamodb/table:Table"
_BUS = "aws:cloudwatch/eventBus:EventBus"
_ARCHIVE = "aws:cloudwatch/eventArchive:EventArchive"
_AWS_MANAGED_SNS_KEY = "alias/aws/sns"
# Defaults of the APIs when an input is absent (Lambda CreateFunction, SQS CreateQueue,
# CreateEventSourceMapping for an SQS source).
_DEFAULT_TIMEOUT = 3
_DEFAULT_VISIBILITY = 30
_DEFAULT_SQS_BATCH = 10
_MODEL_VARIABLES = (
    Env.MODEL_READ_TIMEOUT_SECONDS.value,
    Env.MODEL_CONNECT_TIMEOUT_SECONDS.value,
    Env.MODEL_MAX_ATTEMPTS.value,
)


class LimitsError(Exception):
    """The graph cannot be read (usage error: exit 2)."""


class LimitsFinding(BaseModel):
    """One disagreement: the check, the resource it names, and what to change."""

    check: str
    resource: str
    message: str


class LimitsReport(BaseModel):
    """Every finding of one graph, and how many subjects each check looked at."""

    stack: str
    findings: list[LimitsFinding] = Field(default_factory=list)
    examined: dict[str, int] = Field(default_factory=dict)


class _Graph:
    """Lookups over a graph's resources by type and by any of their identities."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        resources = document.get("resources")
        if not isinstance(resources, list):
            raise LimitsError("graph: 'resources' must be a list")
        self.resources: list[dict[str, Any]] = [r for r in resources if isinstance(r, dict)]
        self._by_identity: dict[str, list[dict[str, Any]]] = {}
        for resource in self.resources:
            for value in self.identities(resource):
                self._by_identity.setdefault(value, []).append(resource)

    @staticmethod
    def identities(resource: Mapping[str, Any]) -> set[str]:
        """Every string a reference to this resource may carry (ARN, id, name, URL...)."""
        outputs = resource.get("outputs") or {}
        inputs = resource.get("inputs") or {}
        return {
            str(value)
            for key in ("arn", "id", "name", "url", "invokeArn", "keyId")
            for value in (outputs.get(key), inputs.get(key) if key == "name" else None)
            if isinstance(value, str) and value
        }

    def of(self, type_: str) -> list[dict[str, Any]]:
        """Resources of one type."""
        return [r for r in self.resources if r.get("type") == type_]

    def find(self, reference: Any, type_: str | None = None) -> dict[str, Any] | None:
        """The resource a reference names (by any identity), optionally of one type."""
        if not isinstance(reference, str):
            return None
        candidates = list(self._by_identity.get(reference, []))
        if type_ == _FUNCTION:  # a function may be named by its bare name
            candidates += self._by_identity.get(reference.rsplit(":", 1)[-1], [])
        for found in candidates:
            if type_ is None or found.get("type") == type_:
                return found
        return None


def _inputs(resource: Mapping[str, Any]) -> dict[str, Any]:
    return dict(resource.get("inputs") or {})


def _name(resource: Mapping[str, Any]) -> str:
    return str(resource.get("name", "?"))


def _number(value: Any, default: float) -> float:
    return (
        float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default
    )


def _variables(function: Mapping[str, Any]) -> dict[str, str]:
    environment = _inputs(function).get("environment") or {}
    variables = environment.get("variables") if isinstance(environment, Mapping) else None
    return {str(k): str(v) for k, v in (variables or {}).items()}


# --- worker batches ----------------------------------------------------------------------------


def _tool_timeout(variables: Mapping[str, str]) -> float:
    try:
        agents = json.loads(variables.get(Env.AGENTS.value, "{}"))
    except json.JSONDecodeError:
        return 0.0
    timeouts = [
        _number(agent.get("toolTimeoutSeconds"), 0.0)
        for agent in (agents.values() if isinstance(agents, dict) else [])
        if isinstance(agent, dict)
    ]
    return max(timeouts, default=0.0)


def _worker_batches(graph: _Graph) -> Iterator[LimitsFinding | None]:
    for mapping in graph.of(_MAPPING):
        inputs = _inputs(mapping)
        queue = graph.find(inputs.get("eventSourceArn"), _QUEUE)
        function = graph.find(inputs.get("functionName"), _FUNCTION)
        if queue is None or function is None:
            continue
        yield None
        timeout = _number(_inputs(function).get("timeout"), _DEFAULT_TIMEOUT)
        visibility = _number(_inputs(queue).get("visibilityTimeoutSeconds"), _DEFAULT_VISIBILITY)
        batch = int(_number(inputs.get("batchSize"), _DEFAULT_SQS_BATCH))
        if visibility < VISIBILITY_TIMEOUT_FACTOR * timeout:
            yield LimitsFinding(
                check="worker-batch",
                resource=_name(queue),
                message=(
                    f"visibility timeout {visibility:g} s is less than {VISIBILITY_TIMEOUT_FACTOR}"
                    f" x the timeout of {_name(function)} ({timeout:g} s): a batch still running "
                    "is handed to a second worker; raise visibilityTimeoutSeconds (Lambda "
                    "developer guide, 'Using Lambda with Amazon SQS')"
                ),
            )
        variables = _variables(function)
        if Env.AGENTS.value not in variables:
            continue  # not a function of the agent runtime: its steps are not ours to bound
        missing = [name for name in _MODEL_VARIABLES if name not in variables]
        if missing:
            yield LimitsFinding(
                check="worker-batch",
                resource=_name(function),
                message=f"runs agents but its environment lacks {missing}: its model calls are "
                "unbounded; set agentry:modelClient",
            )
            continue
        try:
            read, connect, attempts = (float(variables[name]) for name in _MODEL_VARIABLES)
            call = worst_model_call_seconds(
                read_timeout=read, connect_timeout=connect, max_attempts=int(attempts)
            )
        except ValueError as exc:
            yield LimitsFinding(
                check="worker-batch",
                resource=_name(function),
                message=f"its model client variables {list(_MODEL_VARIABLES)} are not valid "
                f"numbers ({exc})",
            )
            continue
        budget = StepBudget(
            model_call_seconds=call,
            tool_timeout_seconds=_tool_timeout(variables),
            batch_size=batch,
        )
        if budget.batch_seconds > timeout:
            yield LimitsFinding(
                check="worker-batch",
                resource=_name(function),
                message=(
                    f"a batch of {batch} step record(s) can take {budget.batch_seconds:g} s "
                    f"({batch} x max(plan {budget.plan_seconds:g} s = 2 model calls of "
                    f"{call:g} s each + store, act {budget.act_seconds:g} s)), more than the "
                    f"function timeout {timeout:g} s: lower the batch size (worker.batchSize), "
                    "the model client's readTimeoutSeconds or maxAttempts, or raise "
                    "worker.timeoutSeconds"
                ),
            )


# --- api concurrency ---------------------------------------------------------------------------


def _api_concurrency(graph: _Graph) -> Iterator[LimitsFinding | None]:
    for stage in graph.of(_STAGE):
        api_id = _inputs(stage).get("apiId")
        settings = _inputs(stage).get("defaultRouteSettings") or {}
        for integration in graph.of(_INTEGRATION):
            if _inputs(integration).get("apiId") != api_id:
                continue
            function = graph.find(_inputs(integration).get("integrationUri"), _FUNCTION)
            if function is None:
                continue
            yield None
            reserved = _inputs(function).get("reservedConcurrentExecutions")
            if not isinstance(reserved, int | float) or reserved < 0:
                continue  # draws on the account's unreserved pool
            burst = settings.get("throttlingBurstLimit")
            rate = settings.get("throttlingRateLimit")
            if not isinstance(burst, int | float) or not isinstance(rate, int | float):
                yield LimitsFinding(
                    check="api-concurrency",
                    resource=_name(stage),
                    message=f"no throttling limits, while {_name(function)} reserves {reserved:g} "
                    "executions: load beyond them gets 5xx; set throttlingBurstLimit and "
                    "throttlingRateLimit",
                )
                continue
            timeout = _number(_inputs(function).get("timeout"), _DEFAULT_TIMEOUT)
            needed = api_concurrency_needed(burst=int(burst), rate=rate, timeout_seconds=timeout)
            if reserved < needed:
                yield LimitsFinding(
                    check="api-concurrency",
                    resource=_name(function),
                    message=(
                        f"reserves {reserved:g} concurrent executions but its stage admits "
                        f"{needed} (burst {burst:g}, or rate {rate:g}/s x timeout {timeout:g} s): "
                        "requests the stage lets through are throttled by Lambda and answered "
                        "5xx instead of 429; raise api.reservedConcurrency or lower the "
                        "throttle"
                    ),
                )


# --- environment size --------------------------------------------------------------------------


def _environment_sizes(graph: _Graph) -> Iterator[LimitsFinding | None]:
    for function in graph.of(_FUNCTION):
        yield None
        size = environment_bytes(_variables(function))
        if size > LAMBDA_ENVIRONMENT_LIMIT_BYTES:
            yield LimitsFinding(
                check="environment-size",
                resource=_name(function),
                message=f"its environment is {size} bytes, over Lambda's "
                f"{LAMBDA_ENVIRONMENT_LIMIT_BYTES} (4 KB): move large values to the bundle or "
                "a parameter",
            )


# --- statelint ---------------------------------------------------------------------------------


def _state_machines(graph: _Graph) -> Iterator[LimitsFinding | None]:
    for machine in graph.of(_STATE_MACHINE):
        yield None
        definition = _inputs(machine).get("definition")
        if not isinstance(definition, str):
            continue  # not known yet (a preview)
        for problem in Linter.validate(definition):
            yield LimitsFinding(check="statelint", resource=_name(machine), message=problem)


# --- key use -----------------------------------------------------------------------------------


def _documents(value: Any, source: str, kind: str) -> list[PolicyDocument]:
    if not isinstance(value, str):
        return []
    try:
        return [parse_document(json.loads(value), source, kind)]
    except (json.JSONDecodeError, PolicyDocumentError):
        return []


class _Keys:
    """The graph's keys: what names each one, and each role's identity documents."""

    def __init__(self, graph: _Graph) -> None:
        self.graph = graph
        self.names: dict[str, dict[str, Any]] = {}
        for key in graph.of(_KEY):
            for value in graph.identities(key):
                self.names[value] = key
        for alias in graph.of(_ALIAS):
            target = graph.find(_inputs(alias).get("targetKeyId"), _KEY)
            if target is not None:
                self.names[str(_inputs(alias).get("name"))] = target
        self.role_documents: dict[str, list[PolicyDocument]] = {}
        for policy in graph.of(_ROLE_POLICY):
            role = graph.find(_inputs(policy).get("role"), _ROLE)
            if role is None:
                continue
            arn = str((role.get("outputs") or {}).get("arn"))
            self.role_documents.setdefault(arn, []).extend(
                _documents(_inputs(policy).get("policy"), _name(policy), "identity")
            )

    def key_of(self, reference: Any) -> dict[str, Any] | None:
        """The key a ``kmsKeyId``-like input names (ARN, id or alias)."""
        return self.names.get(reference) if isinstance(reference, str) else None


def _arn(resource: Mapping[str, Any]) -> str:
    return str((resource.get("outputs") or {}).get("arn", ""))


def _account_region(key: Mapping[str, Any]) -> tuple[str, str]:
    parts = _arn(key).split(":")
    return (parts[4], parts[3]) if len(parts) > 5 else ("", "")


def _service_uses(keys: _Keys, graph: _Graph) -> dict[str, dict[KeyPath, list[tuple[str, str]]]]:
    """Key ARN -> path -> (resource name, resource ARN) of each use by a service."""
    uses: dict[str, dict[KeyPath, list[tuple[str, str]]]] = {}

    def add(key: dict[str, Any] | None, path: KeyPath, resource: Mapping[str, Any]) -> None:
        if key is not None:
            entry = uses.setdefault(_arn(key), {}).setdefault(path, [])
            entry.append((_name(resource), _arn(resource)))

    delivered = set()
    for target in graph.of(_TARGET):
        delivered.add(_inputs(target).get("arn"))
        delivered.add((_inputs(target).get("deadLetterConfig") or {}).get("arn"))
    for topic in graph.of(_TOPIC):
        if _arn(topic) in delivered:
            add(
                keys.key_of(_inputs(topic).get("kmsMasterKeyId")), KeyPath.EVENTBRIDGE_TO_SNS, topic
            )
    for queue in graph.of(_QUEUE):
        if _arn(queue) in delivered:
            add(
                keys.key_of(_inputs(queue).get("kmsMasterKeyId")), KeyPath.EVENTBRIDGE_TO_SQS, queue
            )
    alarmed = {
        action
        for alarm in graph.of(_ALARM)
        for field in ("alarmActions", "okActions", "insufficientDataActions")
        for action in _inputs(alarm).get(field) or []
    }
    for topic in graph.of(_TOPIC):
        if _arn(topic) in alarmed:
            add(keys.key_of(_inputs(topic).get("kmsMasterKeyId")), KeyPath.CLOUDWATCH_TO_SNS, topic)
    for group in graph.of(_LOG_GROUP):
        add(keys.key_of(_inputs(group).get("kmsKeyId")), KeyPath.LOGS, group)
    for bus in (*graph.of(_BUS), *graph.of(_ARCHIVE)):
        add(keys.key_of(_inputs(bus).get("kmsKeyIdentifier")), KeyPath.EVENTBRIDGE_BUS, bus)
    return uses


def _context(path: KeyPath, resource_arn: str, account: str) -> dict[str, str]:
    """The request context a service sends on a path, as AWS documents it."""
    if path == KeyPath.LOGS:
        return {"kms:EncryptionContext:aws:logs:arn": resource_arn}
    if path == KeyPath.EVENTBRIDGE_BUS:
        bus_arn = resource_arn.replace(":archive/", ":event-bus/")
        return {
            "aws:SourceArn": bus_arn,
            "aws:SourceAccount": account,
            "kms:EncryptionContext:aws:events:event-bus:arn": bus_arn,
        }
    return {}


def _decide(documents: list[PolicyDocument], request: Request) -> Decision | None:
    try:
        return evaluate(documents, request)
    except UndecidableError:
        return None


def _service_findings(
    key: Mapping[str, Any],
    policy: list[PolicyDocument],
    uses: Mapping[KeyPath, list[tuple[str, str]]],
) -> Iterator[LimitsFinding]:
    account, region = _account_region(key)
    granted_services: dict[str, set[KeyPath]] = {}
    for path, resources in uses.items():
        grant = service_grant(path, region)
        granted_services.setdefault(grant.principal, set()).add(path)
        for resource_name, resource_arn in resources:
            context = _context(path, resource_arn, account)
            for call in grant.calls:
                request = Request(grant.principal, call, _arn(key), context)
                if _decide(policy, request) != Decision.ALLOW:
                    yield LimitsFinding(
                        check="key-use",
                        resource=_name(key),
                        message=(
                            f"its policy does not let {grant.principal} {call} for "
                            f"{resource_name} ({path}) as AWS documents that path: add "
                            f"{{Principal: {{Service: {grant.principal}}}, Action: "
                            f"{list(grant.actions)}, Resource: '*'}} with only the condition "
                            f"keys AWS documents for it {list(grant.condition_keys)} "
                            f"({grant.source})"
                        ),
                    )
                    break
    for document in policy:
        for statement in document.statements:
            services = (statement.principals or {}).get("Service") if statement.allows else None
            for service in services or ():
                if not isinstance(service, str):
                    continue
                yield from _exact(key, statement, service, granted_services.get(service), region)


def _exact(
    key: Mapping[str, Any], statement: Any, service: str, paths: set[KeyPath] | None, region: str
) -> Iterator[LimitsFinding]:
    label = statement.label
    if not paths:
        yield LimitsFinding(
            check="key-use",
            resource=_name(key),
            message=f"{label} grants {service} the key, but nothing in the stack uses it through "
            f"{service}: remove the statement",
        )
        return
    grants = [service_grant(path, region) for path in sorted(paths)]
    allowed_actions = {a.lower() for g in grants for a in g.actions}
    extra = [a for a in statement.known_actions if a.lower() not in allowed_actions]
    if extra or statement.not_actions is not None:
        yield LimitsFinding(
            check="key-use",
            resource=_name(key),
            message=f"{label} grants {service} {extra or 'NotAction'} beyond what AWS documents "
            f"for {sorted(str(p) for p in paths)} ({sorted(allowed_actions)})",
        )
    allowed_keys = {k.lower() for g in grants for k in g.condition_keys}
    unknown_keys = [c.key for c in statement.conditions if c.key.lower() not in allowed_keys]
    if unknown_keys:
        yield LimitsFinding(
            check="key-use",
            resource=_name(key),
            message=f"{label} conditions {service} on {unknown_keys}, which AWS does not document "
            f"for {sorted(str(p) for p in paths)}: the service may not send them and be denied "
            f"(documented: {sorted(allowed_keys) or 'none'})",
        )


def _role_uses(
    keys: _Keys, graph: _Graph
) -> Iterator[tuple[str, dict[str, Any], RoleKeyUse, dict[str, str]]]:
    """(role ARN, key, use) for each role whose identity policy lets it use a resource encrypted
    with a key of the graph (publish to a topic, send to or receive from a queue, read a stream),
    and the role of each state machine whose data a key encrypts, each with its request context."""
    encrypted: list[tuple[str, str, dict[str, Any], str]] = []
    for topic in graph.of(_TOPIC):
        key = keys.key_of(_inputs(topic).get("kmsMasterKeyId"))
        if key is not None:
            encrypted.append(("sns:Publish", _arn(topic), key, "publish-sns"))
    for queue in graph.of(_QUEUE):
        key = keys.key_of(_inputs(queue).get("kmsMasterKeyId"))
        if key is not None:
            encrypted.append(("sqs:SendMessage", _arn(queue), key, "send-sqs"))
            encrypted.append(("sqs:ReceiveMessage", _arn(queue), key, "consume-sqs"))
    for table in graph.of(_TABLE):
        encryption = _inputs(table).get("serverSideEncryption") or {}
        key = keys.key_of(encryption.get("kmsKeyArn"))
        stream = (table.get("outputs") or {}).get("streamArn")
        if key is not None and isinstance(stream, str):
            encrypted.append(("dynamodb:GetRecords", stream, key, "read-stream"))
    for role_arn, documents in keys.role_documents.items():
        for action, resource_arn, key, kind in encrypted:
            if _decide(documents, Request(role_arn, action, resource_arn)) == Decision.ALLOW:
                yield role_arn, key, role_key_use(kind), {}
    for machine in graph.of(_STATE_MACHINE):
        encryption = _inputs(machine).get("encryptionConfiguration") or {}
        key = keys.key_of(encryption.get("kmsKeyId"))
        if key is not None:
            # Step Functions calls KMS with the state machine's ARN as encryption context.
            context = {"kms:EncryptionContext:aws:states:stateMachineArn": _arn(machine)}
            role_arn = str(_inputs(machine).get("roleArn"))
            yield role_arn, key, role_key_use("state-machine-data"), context


def _key_use(graph: _Graph) -> Iterator[LimitsFinding | None]:
    keys = _Keys(graph)
    uses = _service_uses(keys, graph)
    for key in graph.of(_KEY):
        yield None
        policy = _documents(_inputs(key).get("policy"), _name(key), "resource")
        yield from _service_findings(key, policy, uses.get(_arn(key), {}))
    seen: set[tuple[str, str, str]] = set()
    for role_arn, key, use, context in _role_uses(keys, graph):
        if (role_arn, _arn(key), use.why) in seen:
            continue
        seen.add((role_arn, _arn(key), use.why))
        yield None
        policy = _documents(_inputs(key).get("policy"), _name(key), "resource")
        identity = keys.role_documents.get(role_arn, [])
        for call in use.calls:
            request = Request(role_arn, call, _arn(key), context)
            if (
                _decide(policy, request) != Decision.ALLOW
                or _decide(identity, request) != Decision.ALLOW
            ):
                yield LimitsFinding(
                    check="key-use",
                    resource=role_arn.rsplit("/", 1)[-1],
                    message=f"{use.why} but is not allowed {call} on {_name(key)} (its identity "
                    f"policy and the key policy must both allow it; {use.source})",
                )
    alarmed = {
        action for alarm in graph.of(_ALARM) for action in _inputs(alarm).get("alarmActions") or []
    }
    targeted = {_inputs(target).get("arn") for target in graph.of(_TARGET)}
    for topic in graph.of(_TOPIC):
        if _inputs(topic).get("kmsMasterKeyId") != _AWS_MANAGED_SNS_KEY:
            continue
        services = [
            name
            for name, publishes in (
                ("CloudWatch alarms", _arn(topic) in alarmed),
                ("EventBridge rules", _arn(topic) in targeted),
            )
            if publishes
        ]
        if services:
            yield LimitsFinding(
                check="key-use",
                resource=_name(topic),
                message=f"{' and '.join(services)} publish to it, but it is encrypted with the "
                f"AWS managed {_AWS_MANAGED_SNS_KEY}, whose policy admits no service principal: "
                "every such notification fails; use a customer-managed key that grants them",
            )


_RUNNERS = {
    "worker-batch": _worker_batches,
    "api-concurrency": _api_concurrency,
    "environment-size": _environment_sizes,
    "statelint": _state_machines,
    "key-use": _key_use,
}


def check_limits(document: Mapping[str, Any], checks: Iterable[str] = CHECKS) -> LimitsReport:
    """Run ``checks`` over a graph document; ``LimitsError`` if it is not one."""
    graph = _Graph(document)
    report = LimitsReport(stack=str(document.get("stack", "?")))
    for name in checks:
        report.examined[name] = 0
        for found in _RUNNERS[name](graph):
            if found is None:
                report.examined[name] += 1
            else:
                report.findings.append(found)
    return report


def limits_stack(
    stack: str, *, graph_file: Path | None = None, project_dir: Path | None = None
) -> LimitsReport:
    """Check ``stack``'s planned graph, or ``graph_file``; config errors raise ``ConfigError``."""
    if graph_file is not None:
        try:
            document = json.loads(graph_file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise LimitsError(f"graph file {graph_file}: {exc}") from None
        if not isinstance(document, dict):
            raise LimitsError(f"graph file {graph_file}: not a graph document")
        return check_limits(document)
    from agentry_stacks.offline.plan import plan_stack

    return check_limits(plan_stack(stack, project_dir=project_dir))
