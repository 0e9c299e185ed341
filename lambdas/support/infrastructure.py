"""The support toolset's own infrastructure: its orders table, a few demo orders, its grants.

The stack program calls :func:`declare` at plan time (``[tool.agentry.toolset]`` names it);
this file sits beside the package, so it is never part of a Lambda bundle.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi_aws as aws

from agentry_platform.components.toolset import ToolsetContext, ToolsetGrants
from agentry_platform.lib.iam import statement
from agentry_support.tools import ORDERS_TABLE_VARIABLE

#: Demo orders, so a fresh dev stack (and the local environment) has something to support.
DEMO_ORDERS: tuple[dict[str, Any], ...] = (
    {"orderId": "A-1001", "customer": "Ada", "item": "Trail backpack", "totalCents": 12900},
    {"orderId": "A-1002", "customer": "Grace", "item": "Rain jacket", "totalCents": 8900},
    {"orderId": "A-1003", "customer": "Linus", "item": "Camp stove", "totalCents": 5400},
)


def declare(context: ToolsetContext) -> ToolsetGrants:
    """Declare the orders table and its demo orders; grant the worker read and refund."""
    table = aws.dynamodb.Table(
        context.logical_name("orders"),
        name=context.physical_name("orders"),
        billing_mode="PAY_PER_REQUEST",
        hash_key="orderId",
        attributes=[aws.dynamodb.TableAttributeArgs(name="orderId", type="S")],
        server_side_encryption=aws.dynamodb.TableServerSideEncryptionArgs(
            enabled=True, kms_key_arn=context.kms_key_arn
        ),
        point_in_time_recovery=aws.dynamodb.TablePointInTimeRecoveryArgs(enabled=True),
        tags=dict(context.tags),
        # It holds the orders: protected, so no update can replace or delete it.
        opts=context.protected_opts,
    )
    for order in DEMO_ORDERS:
        aws.dynamodb.TableItem(
            context.logical_name(f"order-{str(order['orderId']).lower()}"),
            table_name=table.name,
            hash_key="orderId",
            item=json.dumps(
                {
                    "orderId": {"S": order["orderId"]},
                    "customer": {"S": order["customer"]},
                    "item": {"S": order["item"]},
                    "status": {"S": "DELIVERED"},
                    "totalCents": {"N": str(order["totalCents"])},
                },
                sort_keys=True,
            ),
            # A replacement puts the same key: created first, the old item's delete would erase it.
            opts=context.named_opts,
        )
    statements = table.arn.apply(
        lambda arn: [
            statement("SupportReadOrders", ["dynamodb:GetItem"], [arn]),
            # A refund is one transaction: a Put of the refund item, an Update of the order.
            statement("SupportRefundOrders", ["dynamodb:PutItem", "dynamodb:UpdateItem"], [arn]),
        ]
    )
    return ToolsetGrants(
        statements=statements,
        environment={ORDERS_TABLE_VARIABLE: table.name},
    )


__all__ = ["DEMO_ORDERS", "declare"]
