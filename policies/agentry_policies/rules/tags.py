"""Required tags on every taggable AWS resource."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import PolicyConfigSchema, ResourceValidationArgs

from agentry_policies import _props
from agentry_policies._base import Found, Undecided, resource_policy

__all__ = ["POLICIES", "REQUIRED_TAGS"]

#: Taggable types the platform declares, for when a resource omits ``tags`` altogether (a
#: resource that has a ``tags`` input is taggable whatever its type).
TAGGABLE_TYPES = frozenset(
    {
        "aws:apigatewayv2/api:Api",
        "aws:apigatewayv2/stage:Stage",
        "aws:cloudwatch/eventBus:EventBus",
        "aws:cloudwatch/eventRule:EventRule",
        "aws:cloudwatch/logGroup:LogGroup",
        "aws:cloudwatch/metricAlarm:MetricAlarm",
        "aws:dynamodb/table:Table",
        "aws:iam/policy:Policy",
        "aws:iam/role:Role",
        "aws:kms/key:Key",
        "aws:lambda/function:Function",
        "aws:s3/bucket:Bucket",
        "aws:s3/bucketV2:BucketV2",
        "aws:sfn/stateMachine:StateMachine",
        "aws:sns/topic:Topic",
        "aws:sqs/queue:Queue",
    }
)
_SCHEMA = PolicyConfigSchema(
    properties={
        "requiredTags": {
            "type": "array",
            "items": {"type": "string"},
            "default": ["Project", "Environment", "ManagedBy"],
            "description": "Tag keys every taggable resource must carry, with a non-empty value.",
        }
    }
)


def _check_tags(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Found:
    if not args.resource_type.startswith("aws:"):
        return
    tags = _props.peek(args.props, "tags")
    if tags is _props.UNKNOWN:
        yield Undecided("tags")
        return
    if tags is None and args.resource_type not in TAGGABLE_TYPES:
        return
    # A tag whose value is set but not known yet (a first preview) is set.
    missing = [key for key in config.get("requiredTags", []) if not _props.peek(tags, key)]
    if missing:
        yield f"missing tags {missing}; add them to the resource's tags input."


REQUIRED_TAGS = resource_policy(
    name="required-tags",
    description=(
        "Tag every taggable resource with the required tags (Project, Environment, "
        "ManagedBy) with non-empty values (no checkov or cfn-nag equivalent)."
    ),
    types=None,
    check=_check_tags,
    schema=_SCHEMA,
)

POLICIES = (REQUIRED_TAGS,)
