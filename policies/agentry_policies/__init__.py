"""Agentry's CrossGuard rules, as plain policy objects.

``policies/__main__.py`` registers exactly :data:`ALL_POLICIES` with :data:`PACK_NAME` and
:data:`PACK_ENFORCEMENT_LEVEL`; the offline ``agentry check`` runs the same objects, so the two
can never drift. This package imports nothing else of Agentry's: the Pulumi CLI loads it alone.
"""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, Policy

from agentry_policies.rules import (
    apigateway,
    bedrock,
    dynamodb,
    events,
    iam,
    kms,
    lambda_,
    logs,
    orchestration,
    s3,
    sns,
    sqs,
    stack,
    tags,
    trust,
)

PACK_NAME = "agentry-guardrails"
#: Used for every policy whose level neither the pack config nor the policy itself sets.
PACK_ENFORCEMENT_LEVEL = EnforcementLevel.MANDATORY

ALL_POLICIES: tuple[Policy, ...] = (
    *bedrock.POLICIES,
    *iam.POLICIES,
    *lambda_.POLICIES,
    *dynamodb.POLICIES,
    *sqs.POLICIES,
    *sns.POLICIES,
    *kms.POLICIES,
    *events.POLICIES,
    *trust.POLICIES,
    *apigateway.POLICIES,
    *logs.POLICIES,
    *s3.POLICIES,
    *orchestration.POLICIES,
    *tags.POLICIES,
    *stack.POLICIES,
)

__all__ = ["ALL_POLICIES", "PACK_ENFORCEMENT_LEVEL", "PACK_NAME"]
