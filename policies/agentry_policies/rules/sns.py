"""SNS topics: KMS encryption and no anonymous publishing."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pulumi_policy import PolicyConfigSchema, ResourceValidationArgs

from agentry_policies import _props, iam_db
from agentry_policies._base import resource_policy, valid_documents

_TOPIC = "aws:sns/topic:Topic"
_TOPIC_POLICY_TYPES = frozenset({_TOPIC, "aws:sns/topicPolicy:TopicPolicy"})
_PUBLISH = "sns:publish"
_PUBLIC_SCHEMA = PolicyConfigSchema(
    properties={
        "restrictingConditionKeys": {
            "type": "array",
            "items": {"type": "string"},
            "default": [
                "aws:SourceArn",
                "aws:SourceAccount",
                "aws:SourceOwner",
                "aws:PrincipalOrgID",
                "aws:PrincipalAccount",
                "aws:PrincipalArn",
                "aws:SourceVpc",
                "aws:SourceVpce",
            ],
            "description": "Condition keys that make a Principal '*' grant non-public.",
        }
    }
)


def _check_encryption(args: ResourceValidationArgs, _config: Mapping[str, Any]) -> Iterable[str]:
    if not _props.text(args.props.get("kmsMasterKeyId")):
        yield "the topic is not encrypted; set kmsMasterKeyId to a KMS key."


def _check_public_publish(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterable[str]:
    restricting = {k.lower() for k in config.get("restrictingConditionKeys", [])}
    for document in valid_documents(args, _TOPIC_POLICY_TYPES):
        for statement in document.statements:
            publishes = any(_PUBLISH in iam_db.expand(a) for a in statement.actions)
            if not (statement.allows and publishes and "*" in statement.principals):
                continue
            keys = {key.lower() for ops in statement.conditions.values() for key in ops}
            if not keys & restricting:
                yield (
                    f"{statement.label} lets any principal ('*') publish; name the publishing "
                    "principals, or add an aws:SourceArn/aws:SourceAccount condition."
                )


SNS_ENCRYPTION = resource_policy(
    name="sns-encryption",
    description="Encrypt every SNS topic with a KMS key (kmsMasterKeyId).",
    types=frozenset({_TOPIC}),
    check=_check_encryption,
)
SNS_NO_PUBLIC_PUBLISH = resource_policy(
    name="sns-no-public-publish",
    description="Never let Principal '*' publish to a topic without a restricting condition.",
    types=_TOPIC_POLICY_TYPES,
    check=_check_public_publish,
    schema=_PUBLIC_SCHEMA,
)

POLICIES = (SNS_ENCRYPTION, SNS_NO_PUBLIC_PUBLISH)
