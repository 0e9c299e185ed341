"""SNS topics: KMS encryption and no public access in topic policies."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from agentry_policies import _props
from agentry_policies._base import Found, resource_policy
from agentry_policies.rules._exposure import check_public, public_schema

__all__ = ["POLICIES", "SNS_ENCRYPTION", "SNS_NO_PUBLIC_ACCESS"]

TOPIC = "aws:sns/topic:Topic"
TOPIC_POLICY = "aws:sns/topicPolicy:TopicPolicy"


def _check_encryption(args: ResourceValidationArgs, _config: Mapping[str, Any]) -> Found:
    # A key that is set but not known yet (a first preview) is set.
    if not _props.peek(args.props, "kmsMasterKeyId"):
        yield "the topic is not encrypted; set kmsMasterKeyId to a KMS key."


def _check_public(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Found:
    return check_public(args, config, "topic")


SNS_ENCRYPTION = resource_policy(
    name="sns-encryption",
    description=(
        "Encrypt every SNS topic with a KMS key: set kmsMasterKeyId (checkov CKV_AWS_26; "
        "cfn-nag W47)."
    ),
    types=frozenset({TOPIC}),
    check=_check_encryption,
)
SNS_NO_PUBLIC_ACCESS = resource_policy(
    name="sns-no-public-access",
    description=(
        "Name the principals of every topic policy statement: no Principal '*' without a "
        "concrete restricting condition (for any action, not only Publish), no NotPrincipal, "
        "NotAction or wildcard action (checkov CKV_AWS_169, CKV_AWS_385; cfn-nag F18, F8, W19)."
    ),
    types=frozenset({TOPIC, TOPIC_POLICY}),
    check=_check_public,
    schema=public_schema(),
)

POLICIES = (SNS_ENCRYPTION, SNS_NO_PUBLIC_ACCESS)
