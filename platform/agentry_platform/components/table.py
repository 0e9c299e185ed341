"""The agent state table: one partition per agent, keys and TTL from the runtime's contract."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from agentry_platform.components._options import protected
from agentry_platform.lib.naming import physical_name
from agentry_runtime.contract import (
    INDEX_KEYS,
    INDEX_PROJECTION,
    PARTITION_KEY,
    SORT_KEY,
    TTL_ATTRIBUTE,
)

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
    """On-demand DynamoDB table with TTL, encryption, the runtime's indexes, and a stream of every
    change (old and new images: the announcer's input); PITR and protection per config."""

    name: pulumi.Output[str]
    arn: pulumi.Output[str]
    stream_arn: pulumi.Output[str]

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
                aws.dynamodb.TableAttributeArgs(name=name, type="S")
                for name in dict.fromkeys(
                    [PARTITION_KEY, SORT_KEY, *(key for _, h, r in INDEX_KEYS for key in (h, r))]
                )
            ],
            # Sparse and small: only headers carry these keys, so only headers are indexed.
            global_secondary_indexes=[
                aws.dynamodb.TableGlobalSecondaryIndexArgs(
                    name=index.value,
                    key_schemas=[
                        aws.dynamodb.TableGlobalSecondaryIndexKeySchemaArgs(
                            attribute_name=hash_key, key_type="HASH"
                        ),
                        aws.dynamodb.TableGlobalSecondaryIndexKeySchemaArgs(
                            attribute_name=range_key, key_type="RANGE"
                        ),
                    ],
                    projection_type=INDEX_PROJECTION,
                )
                for index, hash_key, range_key in INDEX_KEYS
            ],
            stream_enabled=True,
            stream_view_type="NEW_AND_OLD_IMAGES",
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
        self.stream_arn = self.table.stream_arn
        self.register_outputs({"name": self.name, "arn": self.arn, "streamArn": self.stream_arn})
