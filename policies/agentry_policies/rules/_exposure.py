"""What every resource-policy rule checks: no grant to everyone, no NotPrincipal, no wildcards.

SQS, SNS, KMS, EventBridge and S3 resource policies share this reading (through the shared
document parser), so "public" means the same thing on every resource type.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import PolicyConfigSchema, ResourceValidationArgs

from agentry_policies._base import RESOURCE, Found, Undecided, documents
from agentry_policies.documents import RESTRICTING_CONDITION_KEYS, Statement, is_public

__all__ = ["check_public", "public_schema"]


def public_schema(extra_keys: tuple[str, ...] = ()) -> PolicyConfigSchema:
    """Config of a no-public-access rule: the condition keys that make a ``*`` grant specific."""
    return PolicyConfigSchema(
        properties={
            "restrictingConditionKeys": {
                "type": "array",
                "items": {"type": "string"},
                "default": [*RESTRICTING_CONDITION_KEYS, *extra_keys],
                "description": (
                    "Condition keys that, with concrete values, make a Principal '*' grant "
                    "non-public."
                ),
            }
        }
    )


def _problems(statement: Statement, keys: list[str], noun: str, wildcard_actions: bool) -> Found:
    if statement.effect == "Unknown":
        yield Undecided("policy Effect")
        return
    if not statement.allows:
        return
    if statement.not_principals is not None:
        yield (
            f"{statement.label} allows everyone but a few (Allow with NotPrincipal) on the "
            f"{noun}; name the principals in Principal instead."
        )
        return
    if statement.not_actions is not None:
        yield (
            f"{statement.label} combines Allow with NotAction on the {noun}; list the actions "
            "it allows."
        )
    wide = any(set(a) <= {"*", ":", "?"} or a.endswith(":*") for a in statement.known_actions)
    if wildcard_actions and wide:
        yield f"{statement.label} allows every action on the {noun}; list the actions needed."
    public = is_public(statement, keys)
    if public is None:
        yield Undecided("policy condition")
    elif public:
        yield (
            f"{statement.label} lets any principal ('*') act on the {noun} with no restricting "
            "condition; name the principals, or add aws:SourceArn/aws:SourceAccount (or "
            "aws:PrincipalOrgID) with concrete values."
        )


def check_public(
    args: ResourceValidationArgs,
    config: Mapping[str, Any],
    noun: str,
    *,
    wildcard_actions: bool = True,
) -> Found:
    """Problems of every resource policy the resource declares, as a no-public-access rule.

    ``wildcard_actions`` False accepts ``svc:*`` granted to named principals (a key policy's
    documented default gives ``kms:*`` to the account, which then decides through IAM).
    """
    parsed, undecided = documents(args.resource_type, args.props, RESOURCE)
    yield from undecided
    keys = list(config.get("restrictingConditionKeys", []))
    for document in parsed:
        for statement in document.statements:
            yield from _problems(statement, keys, noun, wildcard_actions)
