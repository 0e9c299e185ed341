"""SQS queues: encryption, a redrive to a dead-letter queue, and DLQs that exist in the stack."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pulumi_policy import PolicyResource, ResourceValidationArgs

from agentry_policies import _props
from agentry_policies._base import arn_name, resource_policy, stack_policy

QUEUE = "aws:sqs/queue:Queue"
_REDRIVE_RESOURCE = "aws:sqs/redrivePolicy:RedrivePolicy"
_EVENT_TARGET = "aws:cloudwatch/eventTarget:EventTarget"
_SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"


def _dead_letter_arn(redrive: Any) -> str:
    try:
        parsed = _props.parse_json(redrive) if redrive else None
    except ValueError:
        return ""
    return _props.text(_props.get(parsed, "deadLetterTargetArn"))


def _queue_name(queue: PolicyResource) -> str:
    return _props.text(queue.props.get("name")) or arn_name(_props.text(queue.props.get("arn")))


def _is_queue(arn: str, queue: PolicyResource) -> bool:
    own = _props.text(queue.props.get("arn"))
    return (own != "" and own == arn) or (
        arn_name(arn) != "" and arn_name(arn) == _queue_name(queue)
    )


def _redrives(resources: list[PolicyResource]) -> dict[str, str]:
    """Queue URN -> its DLQ ARN, from queue inputs and separate RedrivePolicy resources."""
    queues = [r for r in resources if r.resource_type == QUEUE]
    found = {q.urn: _dead_letter_arn(q.props.get("redrivePolicy")) for q in queues}
    for attachment in (r for r in resources if r.resource_type == _REDRIVE_RESOURCE):
        url = _props.text(attachment.props.get("queueUrl"))
        target = _dead_letter_arn(attachment.props.get("redrivePolicy"))
        for queue in queues:
            own_url = _props.text(queue.props.get("url"))
            if url and (url == own_url or url.rsplit("/", 1)[-1] == _queue_name(queue)):
                found[queue.urn] = target
    return {urn: arn for urn, arn in found.items() if arn}


def _check_encryption(args: ResourceValidationArgs, _config: Mapping[str, Any]) -> Iterable[str]:
    managed = _props.is_enabled(args.props.get("sqsManagedSseEnabled"))
    if not managed and not _props.text(args.props.get("kmsMasterKeyId")):
        yield "messages are not encrypted at rest; set kmsMasterKeyId or sqsManagedSseEnabled."


def _dead_letter_targets(resources: list[PolicyResource]) -> list[tuple[PolicyResource, str]]:
    """(owner, DLQ ARN) for every queue redrive, event target and SNS subscription DLQ."""
    by_urn = {r.urn: r for r in resources}
    targets = [(by_urn[urn], arn) for urn, arn in _redrives(resources).items()]
    for owner in resources:
        if owner.resource_type == _EVENT_TARGET:
            arn = _props.text(_props.get(owner.props, "deadLetterConfig", "arn"))
        elif owner.resource_type == _SUBSCRIPTION:
            arn = _dead_letter_arn(owner.props.get("redrivePolicy"))
        else:
            continue
        if arn:
            targets.append((owner, arn))
    return targets


def _check_redrive(
    resources: list[PolicyResource], _config: Mapping[str, Any]
) -> Iterable[tuple[PolicyResource, str]]:
    redrives = _redrives(resources)
    dead_letters = [arn for _owner, arn in _dead_letter_targets(resources)]
    for queue in (r for r in resources if r.resource_type == QUEUE):
        is_dlq = any(_is_queue(arn, queue) for arn in dead_letters)
        if queue.urn not in redrives and not is_dlq:
            yield (
                queue,
                (
                    "has no redrivePolicy; set redrivePolicy with deadLetterTargetArn and "
                    "maxReceiveCount so poison messages move to a dead-letter queue."
                ),
            )


def _check_dlq_declared(
    resources: list[PolicyResource], _config: Mapping[str, Any]
) -> Iterable[tuple[PolicyResource, str]]:
    queues = [r for r in resources if r.resource_type == QUEUE]
    for owner, arn in _dead_letter_targets(resources):
        if not any(_is_queue(arn, q) for q in queues):
            yield (
                owner,
                (
                    f"dead-letter queue '{arn}' is not declared in this stack; declare the DLQ "
                    "in the stack so its retention, encryption and alarms are managed."
                ),
            )


SQS_ENCRYPTION = resource_policy(
    name="sqs-encryption",
    description="Encrypt every SQS queue (SQS-managed SSE or a KMS key).",
    types=frozenset({QUEUE}),
    check=_check_encryption,
)
SQS_REDRIVE = stack_policy(
    name="sqs-redrive",
    description=(
        "Give every queue a redrive policy to a dead-letter queue (queues that are themselves "
        "a DLQ of a queue, event target or subscription are exempt)."
    ),
    check=_check_redrive,
)
STACK_DLQ_DECLARED = stack_policy(
    name="stack-dlq-declared",
    description="Declare every dead-letter queue a queue or event target names in the stack.",
    check=_check_dlq_declared,
)

POLICIES = (SQS_ENCRYPTION, SQS_REDRIVE, STACK_DLQ_DECLARED)
