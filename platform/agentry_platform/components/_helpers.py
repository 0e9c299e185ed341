"""Blocks every component repeats: a service's role with its inline policy, a dead-letter queue.

Private to the components: each declares its resources with these, parented to itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

from agentry_platform.components._json import json_output
from agentry_platform.components._options import named
from agentry_platform.lib.iam import Statement, assume_role_policy, policy_document
from agentry_platform.lib.naming import physical_name

__all__ = ["DLQ_RETENTION_SECONDS", "dead_letter_queue", "service_role"]

#: 14 days, the SQS maximum: time to inspect and redrive what landed there.
DLQ_RETENTION_SECONDS = 1_209_600


def service_role(
    name: str,
    *,
    stack: str,
    suffix: str,
    service: str,
    account_id: pulumi.Input[str],
    statements: pulumi.Input[Sequence[Statement]],
    tags: Mapping[str, str],
    parent: pulumi.Resource,
) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
    """A role ``service`` may assume for this account only, and its inline policy."""
    child = named(parent)
    role = aws.iam.Role(
        f"{name}-role",
        name=physical_name(stack, f"{suffix}-role"),
        assume_role_policy=json_output(
            pulumi.Output.from_input(account_id).apply(
                lambda account: assume_role_policy(service, account)
            )
        ),
        tags=dict(tags),
        opts=child,
    )
    policy = aws.iam.RolePolicy(
        f"{name}-policy",
        name=physical_name(stack, f"{suffix}-policy"),
        role=role.id,
        policy=json_output(pulumi.Output.from_input(statements).apply(policy_document)),
        opts=child,
    )
    return role, policy


def dead_letter_queue(
    name: str,
    *,
    stack: str,
    suffix: str,
    kms_key_arn: pulumi.Input[str] | None,
    tags: Mapping[str, str],
    parent: pulumi.Resource,
    **extra: Any,
) -> aws.sqs.Queue:
    """An encrypted queue that keeps what failed for as long as SQS allows."""
    return aws.sqs.Queue(
        name,
        name=physical_name(stack, suffix),
        message_retention_seconds=DLQ_RETENTION_SECONDS,
        kms_master_key_id=kms_key_arn,
        sqs_managed_sse_enabled=None if kms_key_arn else True,
        tags=dict(tags),
        opts=named(parent),
        **extra,
    )
