"""S3 buckets: no public ACLs or policies, and a public access block on every bucket."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pulumi_policy import PolicyResource, ResourceValidationArgs

from agentry_policies import _props
from agentry_policies._base import Found, Undecided, refers_to, resource_policy, stack_policy
from agentry_policies.rules._exposure import check_public, public_schema

__all__ = ["POLICIES", "S3_NO_PUBLIC_ACL", "S3_NO_PUBLIC_POLICY", "S3_PUBLIC_ACCESS_BLOCK"]

BUCKETS = frozenset({"aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"})
_ACLS = frozenset({"aws:s3/bucketAcl:BucketAcl", "aws:s3/bucketAclV2:BucketAclV2"})
_PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
_PUBLIC_CANNED = frozenset({"public-read", "public-read-write", "authenticated-read"})
#: Grantee group URIs that mean "everyone" and "any AWS account" (S3 ACL overview).
_PUBLIC_GROUPS = (
    "http://acs.amazonaws.com/groups/global/AllUsers",
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers",
)
_BLOCK_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")


def _grants(args: ResourceValidationArgs) -> Iterable[Any]:
    policy = _props.peek(args.props, "accessControlPolicy")
    for grant in _props.as_list(_props.peek(policy, "grants")):
        yield _props.peek(grant, "grantee", "uri")


def _check_acl(args: ResourceValidationArgs, _config: Mapping[str, Any]) -> Found:
    acl = _props.peek(args.props, "acl")
    if acl is _props.UNKNOWN:
        yield Undecided("acl")
    elif acl in _PUBLIC_CANNED:
        yield f"acl is {acl!r}; keep buckets private ('private') and share through policies."
    for uri in _grants(args):
        if uri is _props.UNKNOWN:
            yield Undecided("accessControlPolicy")
        elif uri in _PUBLIC_GROUPS:
            yield f"an ACL grant names the group {uri}; remove it and keep the bucket private."


def _check_policy(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Found:
    return check_public(args, config, "bucket")


def _check_block(
    resources: list[PolicyResource], _config: Mapping[str, Any]
) -> Iterable[tuple[PolicyResource, str] | Undecided]:
    blocks = [r for r in resources if r.resource_type == _PUBLIC_ACCESS_BLOCK]
    for bucket in (r for r in resources if r.resource_type in BUCKETS):
        links = [(block, refers_to(block, "bucket", bucket)) for block in blocks]
        mine = [block for block, linked in links if linked]
        if not mine:
            if any(linked is None for _block, linked in links):
                yield Undecided(f"public access block of {bucket.name}")
            else:
                yield (
                    bucket,
                    "has no public access block; declare a BucketPublicAccessBlock with all "
                    "four settings true.",
                )
            continue
        for block in mine:
            values = {flag: _props.peek(block.props, flag) for flag in _BLOCK_FLAGS}
            off = [flag for flag, value in values.items() if value is not True]
            if any(values[flag] is _props.UNKNOWN for flag in off):
                yield Undecided(f"{block.name} settings")
            elif off:
                yield bucket, f"public access block {block.name} leaves {off} off; set them true."


S3_NO_PUBLIC_ACL = resource_policy(
    name="s3-no-public-acl",
    description=(
        "Keep bucket ACLs private: no public-read, public-read-write or authenticated-read "
        "canned ACL and no grant to AllUsers/AuthenticatedUsers (checkov CKV_AWS_20, "
        "CKV_AWS_57, CKV_AWS_375; cfn-nag F14, W31)."
    ),
    types=BUCKETS | _ACLS,
    check=_check_acl,
)
S3_NO_PUBLIC_POLICY = resource_policy(
    name="s3-no-public-policy",
    description=(
        "Name the principals of every bucket policy statement: no Principal '*' without a "
        "concrete restricting condition, no NotPrincipal, NotAction or 's3:*' (checkov "
        "CKV_AWS_70; cfn-nag F9, F15, F16, W20)."
    ),
    types=BUCKETS | {"aws:s3/bucketPolicy:BucketPolicy"},
    check=_check_policy,
    schema=public_schema(),
)
S3_PUBLIC_ACCESS_BLOCK = stack_policy(
    name="s3-public-access-block",
    description=(
        "Give every bucket a BucketPublicAccessBlock with blockPublicAcls, blockPublicPolicy, "
        "ignorePublicAcls and restrictPublicBuckets all true (checkov CKV_AWS_53, CKV_AWS_54, "
        "CKV_AWS_55, CKV_AWS_56, CKV2_AWS_6; cfn-nag none)."
    ),
    check=_check_block,
)

POLICIES = (S3_NO_PUBLIC_ACL, S3_NO_PUBLIC_POLICY, S3_PUBLIC_ACCESS_BLOCK)
