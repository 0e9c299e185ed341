"""KMS keys: yearly rotation and key policies that grant no one outside the account."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from agentry_policies import _props
from agentry_policies._base import Found, Undecided, resource_policy
from agentry_policies.rules._exposure import check_public, public_schema

__all__ = ["KMS_KEY_NO_PUBLIC_ACCESS", "KMS_KEY_ROTATION", "POLICIES"]

KEY = "aws:kms/key:Key"
_SYMMETRIC = "SYMMETRIC_DEFAULT"


def _check_rotation(args: ResourceValidationArgs, _config: Mapping[str, Any]) -> Found:
    spec = _props.peek(args.props, "customerMasterKeySpec") or _props.peek(args.props, "keySpec")
    if spec is _props.UNKNOWN:
        yield Undecided("keySpec")
        return
    if spec not in (None, _SYMMETRIC):
        return  # KMS rotates only symmetric encryption keys
    enabled = _props.peek(args.props, "enableKeyRotation")
    if enabled is _props.UNKNOWN:
        yield Undecided("enableKeyRotation")
    elif enabled is not True:
        yield "key rotation is off; set enableKeyRotation to true (yearly rotation)."


def _check_public(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Found:
    return check_public(args, config, "key", wildcard_actions=False)


KMS_KEY_ROTATION = resource_policy(
    name="kms-key-rotation",
    description=(
        "Turn on automatic rotation of every symmetric customer managed key: set "
        "enableKeyRotation to true (checkov CKV_AWS_7; cfn-nag F19)."
    ),
    types=frozenset({KEY}),
    check=_check_rotation,
)
KMS_KEY_NO_PUBLIC_ACCESS = resource_policy(
    name="kms-key-no-public-access",
    description=(
        "Grant key use to named principals only: no Principal '*' without a concrete "
        "kms:CallerAccount or aws:PrincipalOrgID condition, no NotPrincipal, and no 'kms:*' "
        "to everyone (checkov CKV_AWS_33; cfn-nag F76)."
    ),
    types=frozenset({KEY, "aws:kms/keyPolicy:KeyPolicy"}),
    check=_check_public,
    schema=public_schema(),
)

POLICIES = (KMS_KEY_ROTATION, KMS_KEY_NO_PUBLIC_ACCESS)
