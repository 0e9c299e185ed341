"""DynamoDB tables: point-in-time recovery, KMS encryption, deletion protection."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pulumi_policy import PolicyConfigSchema, ResourceValidationArgs

from agentry_policies import _props
from agentry_policies._base import resource_policy

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


def _check_pitr(args: ResourceValidationArgs, _config: Mapping[str, Any]) -> Iterable[str]:
    if not _props.is_enabled(_props.get(args.props, "pointInTimeRecovery", "enabled")):
        yield "point-in-time recovery is off; set pointInTimeRecovery.enabled to true."


def _check_encryption(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterable[str]:
    sse = args.props.get("serverSideEncryption")
    if not _props.is_enabled(_props.get(sse, "enabled")):
        yield "KMS encryption is off; set serverSideEncryption.enabled to true."
    elif config.get("requireCustomerManagedKey") and not _props.get(sse, "kmsKeyArn"):
        yield "no customer managed key; set serverSideEncryption.kmsKeyArn to the stack's key."


def _check_deletion(args: ResourceValidationArgs, _config: Mapping[str, Any]) -> Iterable[str]:
    if not _props.is_enabled(args.props.get("deletionProtectionEnabled")):
        yield "deletion protection is off; set deletionProtectionEnabled to true."


DYNAMODB_PITR = resource_policy(
    name="dynamodb-pitr",
    description="Enable point-in-time recovery on every DynamoDB table.",
    types=_TABLES,
    check=_check_pitr,
)
DYNAMODB_ENCRYPTION = resource_policy(
    name="dynamodb-encryption",
    description="Encrypt every DynamoDB table with KMS (serverSideEncryption.enabled).",
    types=_TABLES,
    check=_check_encryption,
    schema=_ENCRYPTION_SCHEMA,
)
DYNAMODB_DELETION_PROTECTION = resource_policy(
    name="dynamodb-deletion-protection",
    description="Turn on deletion protection for every DynamoDB table.",
    types=_TABLES,
    check=_check_deletion,
)

POLICIES = (DYNAMODB_PITR, DYNAMODB_ENCRYPTION, DYNAMODB_DELETION_PROTECTION)
