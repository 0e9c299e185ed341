"""CloudWatch log groups: bounded retention and encryption with the stack's key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from agentry_policies import _props
from agentry_policies._base import Found, resource_policy

__all__ = ["LOG_GROUP_ENCRYPTION", "LOG_GROUP_RETENTION", "POLICIES"]

LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"


def _check_retention(args: ResourceValidationArgs, _config: Mapping[str, Any]) -> Found:
    # Set but not known yet (a first preview) is set; 0 means "never expire" in the provider.
    if not _props.peek(args.props, "retentionInDays"):
        yield "logs never expire; set retentionInDays (e.g. 14 or 30)."


def _check_encryption(args: ResourceValidationArgs, _config: Mapping[str, Any]) -> Found:
    if not _props.peek(args.props, "kmsKeyId"):
        yield "logs are not encrypted with the stack's key; set kmsKeyId to a KMS key ARN."


LOG_GROUP_RETENTION = resource_policy(
    name="log-group-retention",
    description=(
        "Give every CloudWatch log group a retentionInDays so logs expire (checkov CKV_AWS_66; "
        "cfn-nag W86)."
    ),
    types=frozenset({LOG_GROUP}),
    check=_check_retention,
)
LOG_GROUP_ENCRYPTION = resource_policy(
    name="log-group-encryption",
    description=(
        "Encrypt every CloudWatch log group with a customer managed key: set kmsKeyId (checkov "
        "CKV_AWS_158; cfn-nag W84). Advisory where a stack has no key of its own."
    ),
    types=frozenset({LOG_GROUP}),
    check=_check_encryption,
)

POLICIES = (LOG_GROUP_RETENTION, LOG_GROUP_ENCRYPTION)
