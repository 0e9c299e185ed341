"""SQS queues: encryption, a redrive to a dead-letter queue, and DLQs that exist in the stack."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pulumi_policy import PolicyResource, ResourceValidationArgs

from agentry_policies import _props
from agentry_policies._base import (
    Found,
    Undecided,
    arn_name,
    depends_on,
    resource_policy,
    stack_policy,
)
from agentry_policies.rules._exposure import check_public, public_schema

__all__ = [
    "POLICIES",
    "SQS_ENCRYPTION",
    "SQS_NO_PUBLIC_ACCESS",
    "SQS_REDRIVE",
    "STACK_DLQ_DECLARED",
]

QUEUE = "aws:sqs/queue:Queue"
_REDRIVE_RESOURCE = "aws:sqs/redrivePolicy:RedrivePolicy"
_EVENT_SOURCE_MAPPING = "aws:lambda/eventSourceMapping:EventSourceMapping"
_EVENT_TARGET = "aws:cloudwatch/eventTarget:EventTarget"
_SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"


def _dead_letter_arn(redrive: Any) -> Any:
    """The DLQ ARN a redrive policy names, '' without one, UNKNOWN when not known yet."""
    if _props.is_unknown(redrive):
        return _props.UNKNOWN
    try:
        parsed = _props.parse_json(redrive) if redrive else None
    except ValueError:
        return ""
    target = _props.peek(parsed, "deadLetterTargetArn")
    return target if target is _props.UNKNOWN else _props.text(target)


def _queue_name(queue: PolicyResource) -> str:
    return _props.text(_props.peek(queue.props, "name")) or arn_name(
        _props.text(_props.peek(queue.props, "arn"))
    )


def _is_queue(target: tuple[PolicyResource, str, Any], queue: PolicyResource) -> bool:
    owner, prop, arn = target
    if depends_on(owner, prop, queue):
        return True  # the ARN is computed from this queue (known or not)
    if not isinstance(arn, str) or _props.is_unknown(arn):
        return False
    own = _props.text(_props.peek(queue.props, "arn"))
    return (own != "" and own == arn) or (
        arn_name(arn) != "" and arn_name(arn) == _queue_name(queue)
    )


def _redrives(resources: list[PolicyResource]) -> dict[str, tuple[PolicyResource, str, Any]]:
    """Queue URN -> (owner, input, DLQ ARN) from queue inputs and RedrivePolicy resources."""
    queues = [r for r in resources if r.resource_type == QUEUE]
    found = {
        q.urn: (q, "redrivePolicy", _dead_letter_arn(_props.peek(q.props, "redrivePolicy")))
        for q in queues
    }
    for attachment in (r for r in resources if r.resource_type == _REDRIVE_RESOURCE):
        url = _props.text(_props.peek(attachment.props, "queueUrl"))
        target = _dead_letter_arn(_props.peek(attachment.props, "redrivePolicy"))
        for queue in queues:
            own_url = _props.text(_props.peek(queue.props, "url"))
            linked = depends_on(attachment, "queueUrl", queue) or (
                url and (url == own_url or url.rsplit("/", 1)[-1] == _queue_name(queue))
            )
            if linked:
                found[queue.urn] = (attachment, "redrivePolicy", target)
    return {urn: entry for urn, entry in found.items() if entry[2]}


def _check_encryption(args: ResourceValidationArgs, _config: Mapping[str, Any]) -> Found:
    # A key that is set but not known yet (a first preview) is set.
    managed = _props.peek(args.props, "sqsManagedSseEnabled")
    if managed is _props.UNKNOWN:
        yield Undecided("sqsManagedSseEnabled")
    elif managed is not True and not _props.peek(args.props, "kmsMasterKeyId"):
        yield "messages are not encrypted at rest; set kmsMasterKeyId or sqsManagedSseEnabled."


def _dead_letter_targets(resources: list[PolicyResource]) -> list[tuple[PolicyResource, str, Any]]:
    """(owner, input, DLQ ARN) for every queue redrive, event target and SNS subscription DLQ,
    and every event source mapping's on-failure destination (a stream consumer's DLQ)."""
    targets = list(_redrives(resources).values())
    for owner in resources:
        if owner.resource_type == _EVENT_TARGET:
            arn = _props.peek(owner.props, "deadLetterConfig", "arn")
            targets.append((owner, "deadLetterConfig", arn))
        elif owner.resource_type == _EVENT_SOURCE_MAPPING:
            arn = _props.peek(owner.props, "destinationConfig", "onFailure", "destinationArn")
            targets.append((owner, "destinationConfig.onFailure", arn))
        elif owner.resource_type == _SUBSCRIPTION:
            arn = _dead_letter_arn(_props.peek(owner.props, "redrivePolicy"))
            targets.append((owner, "redrivePolicy", arn))
    return [t for t in targets if t[2]]


def _check_redrive(
    resources: list[PolicyResource], _config: Mapping[str, Any]
) -> Iterable[tuple[PolicyResource, str] | Undecided]:
    redrives = _redrives(resources)
    dead_letters = _dead_letter_targets(resources)
    for queue in (r for r in resources if r.resource_type == QUEUE):
        is_dlq = any(_is_queue(target, queue) for target in dead_letters)
        if queue.urn not in redrives and not is_dlq:
            if any(_props.is_unknown(arn) for _owner, _prop, arn in dead_letters):
                # An unknown DLQ ARN with no property dependency may name this queue.
                yield Undecided(f"dead-letter targets of {queue.name}")
                continue
            yield (
                queue,
                (
                    "has no redrivePolicy; set redrivePolicy with deadLetterTargetArn and "
                    "maxReceiveCount so poison messages move to a dead-letter queue."
                ),
            )


def _check_dlq_declared(
    resources: list[PolicyResource], _config: Mapping[str, Any]
) -> Iterable[tuple[PolicyResource, str] | Undecided]:
    queues = [r for r in resources if r.resource_type == QUEUE]
    for owner, prop, arn in _dead_letter_targets(resources):
        if any(_is_queue((owner, prop, arn), q) for q in queues):
            continue
        if _props.is_unknown(arn):
            yield Undecided(f"{owner.name}.{prop}")
        else:
            yield (
                owner,
                (
                    f"dead-letter queue '{arn}' is not declared in this stack; declare the DLQ "
                    "in the stack so its retention, encryption and alarms are managed."
                ),
            )


def _check_public(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Found:
    return check_public(args, config, "queue")


SQS_ENCRYPTION = resource_policy(
    name="sqs-encryption",
    description=(
        "Encrypt every SQS queue: set sqsManagedSseEnabled or kmsMasterKeyId (checkov "
        "CKV_AWS_27; cfn-nag W48)."
    ),
    types=frozenset({QUEUE}),
    check=_check_encryption,
)
SQS_REDRIVE = stack_policy(
    name="sqs-redrive",
    description=(
        "Give every queue a redrive policy to a dead-letter queue (queues that are themselves "
        "a DLQ of a queue, event target or subscription are exempt) (no checkov/cfn-nag "
        "equivalent for queues; closest checkov CKV_AWS_116 for functions)."
    ),
    check=_check_redrive,
)
STACK_DLQ_DECLARED = stack_policy(
    name="stack-dlq-declared",
    description=(
        "Declare in the stack every dead-letter queue a queue, event target or subscription "
        "names, so its retention, encryption and alarms are managed (no checkov/cfn-nag "
        "equivalent)."
    ),
    check=_check_dlq_declared,
)

SQS_NO_PUBLIC_ACCESS = resource_policy(
    name="sqs-no-public-access",
    description=(
        "Name the principals of every queue policy statement: no Principal '*' without a "
        "concrete restricting condition such as aws:SourceArn, no NotPrincipal, NotAction or "
        "'sqs:*' (checkov CKV_AWS_72, CKV_AWS_168, CKV_AWS_387; cfn-nag F7, F20, F21, W18)."
    ),
    types=frozenset({QUEUE, "aws:sqs/queuePolicy:QueuePolicy"}),
    check=_check_public,
    schema=public_schema(),
)

POLICIES = (SQS_ENCRYPTION, SQS_NO_PUBLIC_ACCESS, SQS_REDRIVE, STACK_DLQ_DECLARED)
