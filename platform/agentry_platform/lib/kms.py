"""How each AWS service uses a customer-managed key on the platform's behalf, as AWS documents it.

A key policy grants a service exactly the statement AWS documents for the path on which that
service uses the key (its principal, its actions, and only the condition keys documented for
that path: a condition on a key the service does not send denies it silently). The stack's key
policy is built from the paths the stack uses (:func:`service_statements`), and the offline
limits check (``agentry limits``) verifies any graph's key policies against the same table,
evaluating the calls each service makes with the request context it sends.

Roles that use a key (a queue consumer, a topic publisher, a stream consumer) get it from their
identity policy; the key policy delegates to IAM through the account's root principal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "KeyPath",
    "RoleKeyUse",
    "ServiceKeyGrant",
    "role_key_use",
    "service_grant",
    "service_statements",
]

Statement = dict[str, Any]


class KeyPath(StrEnum):
    """The paths on which something other than the stack's own code uses a key."""

    #: EventBridge delivers to an encrypted SQS queue (a rule target or a target's DLQ).
    EVENTBRIDGE_TO_SQS = "eventbridge-to-sqs"
    #: CloudWatch alarms publish to an encrypted SNS topic.
    CLOUDWATCH_TO_SNS = "cloudwatch-to-sns"
    #: EventBridge delivers to an encrypted SNS topic (a rule target).
    EVENTBRIDGE_TO_SNS = "eventbridge-to-sns"
    #: CloudWatch Logs encrypts a log group.
    LOGS = "logs"
    #: EventBridge encrypts an event bus's events (and its archive) with the key.
    EVENTBRIDGE_BUS = "eventbridge-bus"


@dataclass(frozen=True)
class ServiceKeyGrant:
    """What a service needs from a key policy on one path."""

    path: KeyPath
    principal: str
    #: The actions of the documented key-policy statement (patterns as AWS writes them).
    actions: tuple[str, ...]
    #: The KMS operations the service calls on this path (what an evaluation must allow).
    calls: tuple[str, ...]
    #: The condition keys AWS documents for this statement (and sends on this path).
    condition_keys: tuple[str, ...]
    source: str
    #: The documented condition: key -> value template (``{account}``, ``{region}``,
    #: ``{resource}`` filled in); empty when AWS documents none.
    condition: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


def service_grant(path: KeyPath, region: str) -> ServiceKeyGrant:
    """The documented grant of ``path`` in ``region``."""
    if path == KeyPath.EVENTBRIDGE_TO_SQS:
        # SQS developer guide, "Key management" > "Configure KMS permissions for AWS services":
        # the event source's service principal gets kms:GenerateDataKey and kms:Decrypt, with no
        # condition. The queue policy (EventBridge only for our rules) is what keeps others out.
        return ServiceKeyGrant(
            path=path,
            principal="events.amazonaws.com",
            actions=("kms:GenerateDataKey", "kms:Decrypt"),
            calls=("kms:GenerateDataKey", "kms:Decrypt"),
            condition_keys=(),
            source="https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/"
            "sqs-key-management.html#compatibility-with-aws-services",
        )
    if path == KeyPath.EVENTBRIDGE_TO_SNS:
        # SNS developer guide, "Key management" > "Enable compatibility between event sources
        # from AWS services and encrypted topics": kms:GenerateDataKey* and kms:Decrypt for the
        # service principal, no condition; re:Post "Why isn't my Amazon SNS topic receiving
        # EventBridge notifications?": the topic needs a customer managed key that grants it.
        return ServiceKeyGrant(
            path=path,
            principal="events.amazonaws.com",
            actions=("kms:GenerateDataKey*", "kms:Decrypt"),
            calls=("kms:GenerateDataKey", "kms:Decrypt"),
            condition_keys=(),
            source="https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html"
            "#compatibility-with-aws-services",
        )
    if path == KeyPath.CLOUDWATCH_TO_SNS:
        # CloudWatch user guide (alarm actions to an encrypted SNS topic) and AWS re:Post
        # "Why didn't I receive an SNS notification for my CloudWatch alarm trigger?": the
        # "Allow_CloudWatch_for_CMK" statement, kms:Decrypt and kms:GenerateDataKey*, no
        # condition. The AWS managed key alias/aws/sns cannot carry it. The topic policy admits
        # CloudWatch for this account's alarms only.
        return ServiceKeyGrant(
            path=path,
            principal="cloudwatch.amazonaws.com",
            actions=("kms:Decrypt", "kms:GenerateDataKey*"),
            calls=("kms:Decrypt", "kms:GenerateDataKey"),
            condition_keys=(),
            source="https://repost.aws/knowledge-center/cloudwatch-receive-sns-for-alarm-trigger",
        )
    if path == KeyPath.LOGS:
        # CloudWatch Logs user guide, "Encrypt log data in CloudWatch Logs using AWS KMS", step 2:
        # the regional logs principal, conditioned on the log group's encryption context.
        return ServiceKeyGrant(
            path=path,
            principal=f"logs.{region}.amazonaws.com",
            actions=(
                "kms:Encrypt*",
                "kms:Decrypt*",
                "kms:ReEncrypt*",
                "kms:GenerateDataKey*",
                "kms:Describe*",
            ),
            calls=("kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"),
            condition_keys=("kms:EncryptionContext:aws:logs:arn",),
            condition={
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:{region}:{account}:*"
                }
            },
            source="https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/"
            "encrypt-log-data-kms.html",
        )
    # EventBridge user guide, "Authorizing EventBridge to use a customer managed key": DescribeKey,
    # GenerateDataKey and Decrypt, scoped (best practice) to the bus by aws:SourceArn,
    # aws:SourceAccount or the event-bus encryption context.
    return ServiceKeyGrant(
        path=path,
        principal="events.amazonaws.com",
        actions=("kms:DescribeKey", "kms:GenerateDataKey", "kms:Decrypt"),
        calls=("kms:DescribeKey", "kms:GenerateDataKey", "kms:Decrypt"),
        condition_keys=(
            "aws:SourceArn",
            "aws:SourceAccount",
            "kms:EncryptionContext:aws:events:event-bus:arn",
        ),
        condition={"StringEquals": {"aws:SourceAccount": "{account}"}},
        source="https://docs.aws.amazon.com/eventbridge/latest/userguide/"
        "eb-encryption-key-policy.html",
    )


def _fill(condition: Mapping[str, Mapping[str, str]], **values: str) -> dict[str, Any]:
    return {
        operator: {key: template.format(**values) for key, template in tests.items()}
        for operator, tests in condition.items()
    }


def service_statements(
    paths: Sequence[KeyPath], *, account_id: str, region: str
) -> list[Statement]:
    """The documented key-policy statement of each path the key serves; paths of one principal
    with the same documented condition share a statement (their actions together)."""
    merged: dict[tuple[str, str], Statement] = {}
    for path in paths:
        grant = service_grant(path, region)
        condition = _fill(grant.condition, account=account_id, region=region)
        slot = (grant.principal, repr(sorted(condition.items())))
        sid = "".join(part.capitalize() for part in grant.path.split("-"))
        if slot in merged:
            statement = merged[slot]
            statement["Sid"] += f"And{sid}"
            statement["Action"] += [a for a in grant.actions if a not in statement["Action"]]
            continue
        statement = {
            "Sid": sid,
            "Effect": "Allow",
            "Principal": {"Service": grant.principal},
            "Action": list(grant.actions),
            "Resource": "*",
        }
        if condition:
            statement["Condition"] = condition
        merged[slot] = statement
    return list(merged.values())


@dataclass(frozen=True)
class RoleKeyUse:
    """What a role needs on a key when it uses a resource encrypted with it."""

    why: str
    calls: tuple[str, ...]
    source: str


def role_key_use(kind: str) -> RoleKeyUse:
    """The KMS calls a role makes when it ``kind``s an encrypted resource."""
    if kind == "publish-sns":
        return RoleKeyUse(
            why="publishes to an encrypted topic",
            calls=("kms:GenerateDataKey", "kms:Decrypt"),
            source="https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html",
        )
    if kind == "send-sqs":
        return RoleKeyUse(
            why="sends to an encrypted queue",
            calls=("kms:GenerateDataKey", "kms:Decrypt"),
            source="https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/"
            "sqs-key-management.html#send-to-encrypted-queue",
        )
    if kind == "consume-sqs":
        return RoleKeyUse(
            why="receives from an encrypted queue",
            calls=("kms:Decrypt",),
            source="https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/"
            "sqs-key-management.html#receive-from-encrypted-queue",
        )
    if kind == "state-machine-data":
        return RoleKeyUse(
            why="runs a state machine whose data is encrypted",
            calls=("kms:GenerateDataKey", "kms:Decrypt"),
            source="https://docs.aws.amazon.com/step-functions/latest/dg/encryption-at-rest.html",
        )
    if kind == "read-stream":
        return RoleKeyUse(
            why="reads the stream of an encrypted table",
            calls=("kms:Decrypt",),
            source="https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/"
            "encryption.usagenotes.html",
        )
    raise ValueError(f"kind: {kind!r} is not a known key use")
