"""DynamoDB tables: point-in-time recovery, KMS encryption, deletion protection."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import PolicyConfigSchema, ResourceValidationArgs

from agentry_policies import _props
from agentry_policies._base import Found, Undecided, resource_policy

__all__ = ["DYNAMODB_DELETION_PROTECTION", "DYNAMODB_ENCRYPTION", "DYNAMODB_PITR", "POLICIES"]

_TABLES = frozenset({"aws:dynamodb/table:Table"})
_ENCRYPTION_SCHEMA = PolicyConfigSchema(
    properties={
        "requireCustomerManagedKey": {
            "type": "boolean",
            "default": False,
            "description": "Require serverSideEncryption.kmsKeyArn (a customer managed key).",
        }
    }
)


def _check_pitr(args: ResourceValidationArgs, _config: Mapping[str, Any]) -> Found:
    enabled = _props.peek(args.props, "pointInTimeRecovery", "enabled")
    if enabled is _props.UNKNOWN:
        yield Undecided("pointInTimeRecovery.enabled")
    elif enabled is not True:
        yield "point-in-time recovery is off; set pointInTimeRecovery.enabled to true."


def _check_encryption(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Found:
    enabled = _props.peek(args.props, "serverSideEncryption", "enabled")
    if enabled is _props.UNKNOWN:
        yield Undecided("serverSideEncryption.enabled")
    elif enabled is not True:
        yield "KMS encryption is off; set serverSideEncryption.enabled to true."
    # A key ARN that is set but not known yet (a first preview) is set.
    elif config.get("requireCustomerManagedKey") and not _props.peek(
        args.props, "serverSideEncryption", "kmsKeyArn"
    ):
        yield "no customer managed key; set serverSideEncryption.kmsKeyArn to the stack's key."


def _check_deletion(args: ResourceValidationArgs, _config: Mapping[str, Any]) -> Found:
    enabled = _props.peek(args.props, "deletionProtectionEnabled")
    if enabled is _props.UNKNOWN:
        yield Undecided("deletionProtectionEnabled")
    elif enabled is not True:
        yield "deletion protection is off; set deletionProtectionEnabled to true."


DYNAMODB_PITR = resource_policy(
    name="dynamodb-pitr",
    description=(
        "Enable point-in-time recovery on every DynamoDB table: set pointInTimeRecovery.enabled "
        "(checkov CKV_AWS_28; cfn-nag none)."
    ),
    types=_TABLES,
    check=_check_pitr,
)
DYNAMODB_ENCRYPTION = resource_policy(
    name="dynamodb-encryption",
    description=(
        "Encrypt every DynamoDB table with KMS: set serverSideEncryption.enabled, and kmsKeyArn "
        "where a customer managed key is required (checkov CKV_AWS_119; cfn-nag none)."
    ),
    types=_TABLES,
    check=_check_encryption,
    schema=_ENCRYPTION_SCHEMA,
)
DYNAMODB_DELETION_PROTECTION = resource_policy(
    name="dynamodb-deletion-protection",
    description=(
        "Turn on deletion protection for every DynamoDB table: set deletionProtectionEnabled "
        "(no checkov or cfn-nag equivalent)."
    ),
    types=_TABLES,
    check=_check_deletion,
)

POLICIES = (DYNAMODB_PITR, DYNAMODB_ENCRYPTION, DYNAMODB_DELETION_PROTECTION)
