"""The agent state table: one partition per agent, keys and TTL from the runtime's contract."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from agentry_platform.components._options import protected
from agentry_platform.lib.naming import physical_name
from agentry_runtime.contract import PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE

__all__ = ["AgentTable", "AgentTableArgs"]


@dataclass
class AgentTableArgs:
    """Inputs of :class:`AgentTable`."""

    stack: str
    point_in_time_recovery: bool
    deletion_protection: bool
    tags: Mapping[str, str]
    kms_key_arn: pulumi.Input[str] | None = None


class AgentTable(pulumi.ComponentResource):
    """On-demand DynamoDB table with TTL, encryption and, per config, PITR and protection."""

    name: pulumi.Output[str]
    arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: AgentTableArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agentry:table:AgentTable", name, None, opts)
        self.table = aws.dynamodb.Table(
            f"{name}-table",
            name=physical_name(args.stack, "agents"),
            billing_mode="PAY_PER_REQUEST",
            hash_key=PARTITION_KEY,
            range_key=SORT_KEY,
            attributes=[
                aws.dynamodb.TableAttributeArgs(name=PARTITION_KEY, type="S"),
                aws.dynamodb.TableAttributeArgs(name=SORT_KEY, type="S"),
            ],
            ttl=aws.dynamodb.TableTtlArgs(attribute_name=TTL_ATTRIBUTE, enabled=True),
            # Always encrypted at rest and said so in the graph: with the CMK when configured,
            # else (no key ARN) with the AWS managed key aws/dynamodb.
            server_side_encryption=aws.dynamodb.TableServerSideEncryptionArgs(
                enabled=True, kms_key_arn=args.kms_key_arn
            ),
            point_in_time_recovery=aws.dynamodb.TablePointInTimeRecoveryArgs(
                enabled=args.point_in_time_recovery
            ),
            deletion_protection_enabled=args.deletion_protection,
            tags=dict(args.tags),
            # It holds every agent's state: never replaced or deleted by an update.
            opts=protected(self),
        )
        self.name = self.table.name
        self.arn = self.table.arn
        self.register_outputs({"name": self.name, "arn": self.arn})
