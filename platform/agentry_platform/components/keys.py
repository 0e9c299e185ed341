"""A customer-managed KMS key, with rotation and an alias, for the paths that use it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from agentry_platform.components._json import json_output
from agentry_platform.components._options import named
from agentry_platform.lib.iam import key_policy
from agentry_platform.lib.kms import KeyPath
from agentry_platform.lib.naming import physical_name

__all__ = ["EncryptionKey", "EncryptionKeyArgs"]


@dataclass
class EncryptionKeyArgs:
    """Inputs of :class:`EncryptionKey`.

    ``paths`` are the services' uses the key policy admits, each exactly as AWS documents it;
    ``suffix`` names the alias (``alias/agentry-<stack>-<suffix>``).
    """

    stack: str
    region: str
    account_id: pulumi.Input[str]
    tags: Mapping[str, str]
    paths: Sequence[KeyPath] = field(default_factory=tuple)
    suffix: str = "key"
    description: str = "table, queues, topics and logs"


class EncryptionKey(pulumi.ComponentResource):
    """A symmetric KMS key with yearly rotation and the key policy of the paths that use it."""

    arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: EncryptionKeyArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agentry:keys:EncryptionKey", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        policy = pulumi.Output.from_input(args.account_id).apply(
            lambda account: key_policy(
                account_id=account, region=args.region, paths=tuple(args.paths)
            )
        )
        self.key = aws.kms.Key(
            f"{name}-key",
            description=f"Agentry {args.stack}: {args.description}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=json_output(policy),
            tags=dict(args.tags),
            opts=child,
        )
        self.alias = aws.kms.Alias(
            f"{name}-alias",
            name=f"alias/{physical_name(args.stack, args.suffix)}",
            target_key_id=self.key.key_id,
            opts=named(self),
        )
        self.arn = self.key.arn
        self.register_outputs({"arn": self.arn, "alias": self.alias.name})
