"""A KMS-encrypted SNS topic with email subscriptions from config."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from agentry_platform.components._json import json_output
from agentry_platform.components._options import named
from agentry_platform.lib.iam import topic_publish_policy
from agentry_platform.lib.naming import physical_name

__all__ = ["AWS_MANAGED_SNS_KEY", "NotificationTopic", "NotificationTopicArgs"]

AWS_MANAGED_SNS_KEY = "alias/aws/sns"


@dataclass
class NotificationTopicArgs:
    """Inputs of :class:`NotificationTopic`.

    ``publisher_service`` (e.g. ``cloudwatch.amazonaws.com``) gets a topic policy of its own;
    a topic whose publisher is a role gets its policy from that role's owner (the recovery
    workflow), since the role must exist before a policy can name it.
    """

    stack: str
    suffix: str
    display_name: str
    emails: Sequence[str]
    account_id: pulumi.Input[str]
    tags: Mapping[str, str]
    kms_key_arn: pulumi.Input[str] | None = None
    publisher_service: str | None = None
    extra_tags: Mapping[str, str] = field(default_factory=dict)


class NotificationTopic(pulumi.ComponentResource):
    """SNS topic encrypted with the CMK (or the AWS managed ``alias/aws/sns``) plus emails."""

    arn: pulumi.Output[str]
    name: pulumi.Output[str]

    def __init__(
        self, name: str, args: NotificationTopicArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agentry:topic:NotificationTopic", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.topic = aws.sns.Topic(
            f"{name}-topic",
            name=physical_name(args.stack, args.suffix),
            display_name=args.display_name,
            kms_master_key_id=args.kms_key_arn or AWS_MANAGED_SNS_KEY,
            tags={**args.tags, **args.extra_tags},
            opts=named(self),
        )
        self.subscriptions = [
            aws.sns.TopicSubscription(
                f"{name}-email-{index}",
                topic=self.topic.arn,
                protocol="email",
                endpoint=email,
                opts=child,
            )
            for index, email in enumerate(args.emails)
        ]
        self.policy: aws.sns.TopicPolicy | None = None
        if args.publisher_service:
            service = args.publisher_service
            self.policy = aws.sns.TopicPolicy(
                f"{name}-policy",
                arn=self.topic.arn,
                policy=json_output(
                    pulumi.Output.all(self.topic.arn, args.account_id).apply(
                        lambda a: topic_publish_policy(
                            topic_arn=a[0], account_id=a[1], service=service
                        )
                    )
                ),
                opts=named(self),
            )
        self.arn = self.topic.arn
        self.name = self.topic.name
        self.register_outputs(
            {"arn": self.arn, "name": self.name, "subscriptions": len(self.subscriptions)}
        )
