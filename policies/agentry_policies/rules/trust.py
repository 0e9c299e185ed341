"""Only the platform speaks on its bus and to its humans; queues and topics refuse plain HTTP.

These rules judge resource policies by *evaluating* them (documents.evaluate) against probe
requests, not by matching strings: a principal of the same account that the stack does not
declare (the outsider probe), the stack's own roles, and the services that deliver to a topic.
Inside one account a resource policy that stays silent lets any identity policy through, so the
probes that matter must meet an explicit Deny (IAM evaluation logic, same-account requests).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pulumi_policy import PolicyConfigSchema, PolicyResource

from agentry_policies import _props
from agentry_policies._base import (
    IDENTITY,
    RESOURCE,
    Undecided,
    depends_on,
    documents,
    refers_to,
    stack_policy,
)
from agentry_policies.documents import (
    Decision,
    PolicyDocument,
    Request,
    UndecidableError,
    evaluate,
)

__all__ = [
    "EVENTBRIDGE_BUS_PLATFORM_ONLY",
    "POLICIES",
    "RESOURCE_POLICY_TLS_ONLY",
    "SNS_TOPIC_PUBLISHERS_RESTRICTED",
]

ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
BUS = "aws:cloudwatch/eventBus:EventBus"
BUS_POLICY = "aws:cloudwatch/eventBusPolicy:EventBusPolicy"
TOPIC = "aws:sns/topic:Topic"
TOPIC_POLICY = "aws:sns/topicPolicy:TopicPolicy"
QUEUE = "aws:sqs/queue:Queue"
QUEUE_POLICY = "aws:sqs/queuePolicy:QueuePolicy"
EVENT_TARGET = "aws:cloudwatch/eventTarget:EventTarget"
EVENT_RULE = "aws:cloudwatch/eventRule:EventRule"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"

#: The name of the same-account role no stack declares: it stands for "anyone else".
OUTSIDER_ROLE = "agentry-policy-probe-outsider"
#: An account that is not the stack's (AWS's documentation example account).
FOREIGN_ACCOUNT = "111122223333"

StackFound = Iterable["tuple[PolicyResource, str] | Undecided"]


class _UndecidedError(Exception):
    """Raised inside a rule's helpers when the probe cannot be judged yet."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


@dataclass(frozen=True)
class _Role:
    resource: PolicyResource
    arn: str
    documents: tuple[PolicyDocument, ...]


def _account(arn: str) -> str:
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 else ""


def _arn(resource: PolicyResource) -> str:
    value = _props.peek(resource.props, "arn")
    if not isinstance(value, str) or _props.is_unknown(value) or not value:
        raise _UndecidedError(f"{resource.name}.arn")
    return value


def _attached_documents(
    resource: PolicyResource, resources: Sequence[PolicyResource], policy_type: str, link: str
) -> tuple[list[PolicyDocument], bool]:
    """Resource-policy documents of ``resource`` (its own input and attached policies), and
    whether any policy resource is attached at all. Raises _UndecidedError when one is unknown."""
    parsed, undecided = documents(resource.resource_type, resource.props, RESOURCE)
    attached = bool(parsed or undecided)
    for policy in (r for r in resources if r.resource_type == policy_type):
        linked = refers_to(policy, link, resource)
        if linked is None:
            raise _UndecidedError(f"{policy.name}.{link}")
        if linked:
            attached = True
            found, unknown = documents(policy.resource_type, policy.props, RESOURCE)
            parsed.extend(found)
            undecided.extend(unknown)
    if undecided:
        raise _UndecidedError(undecided[0].what)
    return parsed, attached


def _roles(resources: Sequence[PolicyResource]) -> list[_Role]:
    """The stack's roles with their identity documents (inline and RolePolicy resources)."""
    roles: list[_Role] = []
    for role in (r for r in resources if r.resource_type == ROLE):
        parsed, undecided = documents(ROLE, role.props, IDENTITY)
        for policy in (r for r in resources if r.resource_type == ROLE_POLICY):
            linked = refers_to(policy, "role", role)
            if linked is None:
                raise _UndecidedError(f"{policy.name}.role")
            if linked:
                found, unknown = documents(ROLE_POLICY, policy.props, IDENTITY)
                parsed.extend(found)
                undecided.extend(unknown)
        if undecided:
            raise _UndecidedError(undecided[0].what)
        roles.append(_Role(role, _arn(role), tuple(parsed)))
    return roles


def _decide(documents_: Sequence[PolicyDocument], request: Request) -> Decision:
    try:
        return evaluate(documents_, request)
    except UndecidableError as exc:
        raise _UndecidedError(str(exc)) from None


def _allowed(role: _Role, action: str, resource: str) -> bool:
    return _decide(role.documents, Request(role.arn, action, resource)) is Decision.ALLOW


def _judge(
    resources: list[PolicyResource], subjects: Iterable[PolicyResource], judge: Any
) -> StackFound:
    for subject in subjects:
        try:
            yield from ((subject, message) for message in judge(subject))
        except _UndecidedError as exc:
            yield Undecided(f"{subject.name}: {exc.what}")


# --- the bus ---------------------------------------------------------------------------------

_BUS_SCHEMA = PolicyConfigSchema(
    properties={
        "protectedSources": {
            "type": "array",
            "items": {"type": "string"},
            "default": ["agentry.*"],
            "description": "Event sources only the stack's own roles may put on its buses.",
        }
    }
)


def _sample(pattern: str) -> str:
    return pattern.replace("*", "probe").replace("?", "p")


def _check_bus(resources: list[PolicyResource], config: Mapping[str, Any]) -> StackFound:
    sources = [_sample(p) for p in config.get("protectedSources", [])]

    def judge(bus: PolicyResource) -> Iterable[str]:
        policies, attached = _attached_documents(bus, resources, BUS_POLICY, "eventBusName")
        if not attached:
            yield (
                "has no bus policy; attach an EventBusPolicy that denies events:PutEvents of "
                f"{config.get('protectedSources')} sources to every principal but the stack's "
                "own roles (aws:PrincipalArn)."
            )
            return
        arn = _arn(bus)
        outsider = f"arn:aws:iam::{_account(arn)}:role/{OUTSIDER_ROLE}"
        roles = _roles(resources)
        for source in sources:
            # A batch: one entry of another source, one claiming the protected one.
            context = {"events:source": ["probe.other", source], "aws:SecureTransport": "true"}
            if _decide(policies, Request(outsider, "events:PutEvents", arn, context)) is not (
                Decision.EXPLICIT_DENY
            ):
                yield (
                    f"lets a principal the stack does not declare put '{source}' events on the "
                    "bus; add a Deny of events:PutEvents for those sources to every principal "
                    "but the stack's roles (ArnNotEquals aws:PrincipalArn)."
                )
            for role in roles:
                if not _allowed(role, "events:PutEvents", arn):
                    continue
                request = Request(role.arn, "events:PutEvents", arn, context)
                if _decide(policies, request) is Decision.EXPLICIT_DENY:
                    yield (
                        f"denies the stack's own publisher {role.resource.name} '{source}' "
                        "events; list its role ARN among the platform's publishers."
                    )

    yield from _judge(resources, (r for r in resources if r.resource_type == BUS), judge)


# --- topics ----------------------------------------------------------------------------------


def _routes(resources: Sequence[PolicyResource], topic: PolicyResource) -> list[str]:
    """ARNs of the stack's rules that deliver to ``topic`` (targets whose arn is the topic)."""
    rules: list[str] = []
    for target in (r for r in resources if r.resource_type == EVENT_TARGET):
        linked = refers_to(target, "arn", topic)
        if linked is None:
            raise _UndecidedError(f"{target.name}.arn")
        if not linked:
            continue
        for rule in (r for r in resources if r.resource_type == EVENT_RULE):
            if refers_to(target, "rule", rule):
                rules.append(_arn(rule))
    return rules


def _alarms(resources: Sequence[PolicyResource], topic: PolicyResource, arn: str) -> list[str]:
    """ARNs of the stack's alarms whose actions notify ``topic``."""
    keys = ("alarmActions", "okActions", "insufficientDataActions")
    found: list[str] = []
    for alarm in (r for r in resources if r.resource_type == ALARM):
        linked = any(depends_on(alarm, key, topic) for key in keys)
        actions = [a for key in keys for a in _props.as_list(_props.peek(alarm.props, key))]
        if not linked and any(_props.is_unknown(a) for a in actions):
            raise _UndecidedError(f"{alarm.name} actions")
        if linked or arn in actions:
            found.append(_arn(alarm))
    return found


def _check_topics(resources: list[PolicyResource], _config: Mapping[str, Any]) -> StackFound:
    def judge(topic: PolicyResource) -> Iterable[str]:
        policies, attached = _attached_documents(topic, resources, TOPIC_POLICY, "arn")
        if not attached:
            yield (
                "has no topic policy; attach one that denies sns:Publish to every principal but "
                "the roles, rules and alarms of the stack that publish to it."
            )
            return
        arn = _arn(topic)
        account = _account(arn)
        publish = "sns:Publish"
        roles = _roles(resources)
        publishers = {r.arn for r in roles if _allowed(r, publish, arn)}
        probes = [f"arn:aws:iam::{account}:role/{OUTSIDER_ROLE}"]
        probes.extend(r.arn for r in roles if r.arn not in publishers)
        for principal in probes:
            decision = _decide(policies, Request(principal, publish, arn))
            if decision is not Decision.EXPLICIT_DENY:
                yield (
                    f"does not deny sns:Publish to {principal}, which is not one of its "
                    "publishers; add a Deny of sns:Publish to every principal but the "
                    "publishing roles (ArnNotEquals aws:PrincipalArn)."
                )
        for principal in sorted(publishers):
            if _decide(policies, Request(principal, publish, arn)) is Decision.EXPLICIT_DENY:
                yield f"denies its own publisher {principal}; list it among the publishers."
        yield from _service_publishers(resources, topic, policies, arn, account)

    yield from _judge(resources, (r for r in resources if r.resource_type == TOPIC), judge)


def _caller(context: Mapping[str, str]) -> str:
    return context.get("aws:SourceArn") or f"account {context.get('aws:SourceAccount')}"


def _service_publishers(
    resources: Sequence[PolicyResource],
    topic: PolicyResource,
    policies: list[PolicyDocument],
    arn: str,
    account: str,
) -> Iterable[str]:
    publish = "sns:Publish"
    rules = _routes(resources, topic)
    alarms = _alarms(resources, topic, arn)
    region_prefix = arn.rsplit(":", 2)[0].replace(":sns:", ":events:", 1)
    stray_rule = f"{region_prefix}:{account}:rule/{OUTSIDER_ROLE}"
    checks: list[tuple[str, dict[str, str], bool]] = [
        # (service, context, must be allowed)
        (
            "events.amazonaws.com",
            {"aws:SourceArn": stray_rule, "aws:SourceAccount": account},
            False,
        ),
        ("cloudwatch.amazonaws.com", {"aws:SourceAccount": FOREIGN_ACCOUNT}, False),
    ]
    checks.extend(
        ("events.amazonaws.com", {"aws:SourceArn": r, "aws:SourceAccount": account}, True)
        for r in rules
    )
    checks.extend(
        ("cloudwatch.amazonaws.com", {"aws:SourceArn": a, "aws:SourceAccount": account}, True)
        for a in alarms
    )
    if not alarms:
        checks.append(("cloudwatch.amazonaws.com", {"aws:SourceAccount": account}, False))
    for service, context, legit in checks:
        decision = _decide(policies, Request(service, publish, arn, context))
        if legit and decision is not Decision.ALLOW:
            yield (
                f"does not let {service} publish for {context.get('aws:SourceArn')}, which "
                "routes to it; allow that service with an aws:SourceArn condition."
            )
        elif not legit and decision is Decision.ALLOW:
            yield (
                f"lets {service} publish for {_caller(context)}, which does not route to it; "
                "allow the service only with aws:SourceArn of the stack's own rules or alarms "
                "(and aws:SourceAccount)."
            )


# --- TLS ---------------------------------------------------------------------------------

_TLS_SCHEMA = PolicyConfigSchema(
    properties={
        "queueActions": {
            "type": "array",
            "items": {"type": "string"},
            "default": ["sqs:SendMessage", "sqs:ReceiveMessage"],
            "description": "Queue actions that must be refused over plain HTTP.",
        },
        "topicActions": {
            "type": "array",
            "items": {"type": "string"},
            "default": ["sns:Publish", "sns:Subscribe"],
            "description": "Topic actions that must be refused over plain HTTP.",
        },
    }
)


def _check_tls(resources: list[PolicyResource], config: Mapping[str, Any]) -> StackFound:
    kinds = {
        QUEUE: (QUEUE_POLICY, "queueUrl", config.get("queueActions", [])),
        TOPIC: (TOPIC_POLICY, "arn", config.get("topicActions", [])),
    }

    def judge(subject: PolicyResource) -> Iterable[str]:
        policy_type, link, actions = kinds[subject.resource_type]
        policies, attached = _attached_documents(subject, resources, policy_type, link)
        remedy = "add a Deny of these actions to Principal '*' when aws:SecureTransport is false"
        if not attached:
            yield f"has no resource policy, so plain-HTTP requests are not refused; {remedy}."
            return
        arn = _arn(subject)
        principals = [f"arn:aws:iam::{_account(arn)}:role/{OUTSIDER_ROLE}"]
        principals.extend(r.arn for r in _roles(resources))
        context = {"aws:SecureTransport": "false"}
        open_actions = sorted(
            {
                action
                for action in actions
                for principal in principals
                if _decide(policies, Request(principal, action, arn, context))
                is not Decision.EXPLICIT_DENY
            }
        )
        if open_actions:
            yield f"does not refuse {open_actions} over plain HTTP; {remedy}."

    subjects = (r for r in resources if r.resource_type in kinds)
    yield from _judge(resources, subjects, judge)


EVENTBRIDGE_BUS_PLATFORM_ONLY = stack_policy(
    name="eventbridge-bus-platform-only",
    description=(
        "Attach a bus policy to every event bus that denies events:PutEvents of the "
        "platform's sources (agentry.*) to every principal but the stack's own roles, so no "
        "one else in the account can forge an agent's events (no checkov or cfn-nag "
        "equivalent)."
    ),
    check=_check_bus,
    schema=_BUS_SCHEMA,
)
SNS_TOPIC_PUBLISHERS_RESTRICTED = stack_policy(
    name="sns-topic-publishers-restricted",
    description=(
        "Deny sns:Publish on every topic to all but its publishers in the stack: the roles "
        "granted Publish on it, the bus rules that target it and (for alarm topics) "
        "cloudwatch.amazonaws.com for this account's alarms (no checkov or cfn-nag "
        "equivalent; related checkov CKV_AWS_169)."
    ),
    check=_check_topics,
)
RESOURCE_POLICY_TLS_ONLY = stack_policy(
    name="resource-policy-tls-only",
    description=(
        "Give every queue and topic a resource policy that denies its actions to Principal '*' "
        "when aws:SecureTransport is false, so nothing reaches them over plain HTTP (no "
        "checkov or cfn-nag equivalent; checkov CKV_AWS_379 is the S3 counterpart)."
    ),
    check=_check_tls,
    schema=_TLS_SCHEMA,
)

POLICIES = (
    EVENTBRIDGE_BUS_PLATFORM_ONLY,
    SNS_TOPIC_PUBLISHERS_RESTRICTED,
    RESOURCE_POLICY_TLS_ONLY,
)
