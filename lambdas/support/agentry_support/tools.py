"""Tools of the support agent: read an order (no side effect), refund it (once per call).

Orders live in the toolset's own table (``ORDERS_TABLE_VARIABLE`` names it): one item per
order, ``orderId`` as its key, with ``totalCents`` and ``refundedCents``. A refund is a
transaction: a ``REFUND#<toolUseId>`` item that must not exist yet, and the order's refunded
amount raised only if it stays within the total. A re-executed call finds its refund item and
reports it, so a refund happens once per committed tool call.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import boto3
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

from agentry_runtime.tools import ToolContext, ToolRegistry

__all__ = ["ORDERS_TABLE_VARIABLE", "OrderQuery", "RefundRequest", "registry"]

#: The environment variable the infrastructure hook sets to the orders table's name.
ORDERS_TABLE_VARIABLE = "AGENTRY_TOOLSET_SUPPORT_ORDERS_TABLE"
_ORDER_ID = r"^[A-Z]-\d{4}$"

registry = ToolRegistry()


class OrderQuery(BaseModel):
    """Input of get_order."""

    model_config = ConfigDict(extra="forbid")
    order_id: str = Field(pattern=_ORDER_ID, description="The order id, e.g. A-1001.")


class RefundRequest(BaseModel):
    """Input of issue_refund."""

    model_config = ConfigDict(extra="forbid")
    order_id: str = Field(pattern=_ORDER_ID, description="The order to refund, e.g. A-1001.")
    amount_cents: int = Field(gt=0, le=1_000_000, description="Amount to refund, in cents.")
    reason: str = Field(min_length=3, max_length=500, description="Why, in the customer's words.")


@cache
def _client() -> Any:
    # One client per container; created on the first call, not at import (the api function
    # imports no toolset, and the worker pays only when a support tool runs).
    return boto3.client("dynamodb")


def _table() -> str:
    table = os.environ.get(ORDERS_TABLE_VARIABLE)
    if not table:
        raise RuntimeError(f"{ORDERS_TABLE_VARIABLE} is not set: the toolset is not deployed")
    return table


def _order(order_id: str) -> dict[str, Any]:
    item = (
        _client()
        .get_item(TableName=_table(), Key={"orderId": {"S": order_id}}, ConsistentRead=True)
        .get("Item")
    )
    if item is None:
        raise ValueError(f"no order {order_id}")
    return {
        "order_id": order_id,
        "customer": item["customer"]["S"],
        "item": item["item"]["S"],
        "status": item["status"]["S"],
        "total_cents": int(item["totalCents"]["N"]),
        "refunded_cents": int(item.get("refundedCents", {"N": "0"})["N"]),
    }


@registry.tool()
def get_order(args: OrderQuery, ctx: ToolContext) -> dict[str, Any]:
    """Look up an order: customer, item, status, total and how much was already refunded."""
    return _order(args.order_id)


@registry.tool()
def issue_refund(args: RefundRequest, ctx: ToolContext) -> dict[str, Any]:
    """Refund part or all of an order (at most what is left); returns the refund's id."""
    refund_key = {"orderId": {"S": f"REFUND#{ctx.tool_use_id}"}}
    try:
        _client().transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": _table(),
                        "Item": {
                            **refund_key,
                            "refundOf": {"S": args.order_id},
                            "amountCents": {"N": str(args.amount_cents)},
                            "reason": {"S": args.reason},
                            "agentId": {"S": ctx.agent_id},
                        },
                        "ConditionExpression": "attribute_not_exists(orderId)",
                    }
                },
                {
                    "Update": {
                        "TableName": _table(),
                        "Key": {"orderId": {"S": args.order_id}},
                        "UpdateExpression": "SET refundedCents = if_not_exists(refundedCents, "
                        ":zero) + :amount",
                        "ConditionExpression": "attribute_exists(orderId) AND "
                        "(attribute_not_exists(refundedCents) OR refundedCents <= :room)",
                        "ExpressionAttributeValues": {
                            ":zero": {"N": "0"},
                            ":amount": {"N": str(args.amount_cents)},
                            ":room": {"N": str(_room(args))},
                        },
                    }
                },
            ]
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
            raise
        reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
        if reasons and reasons[0] == "ConditionalCheckFailed":
            # This very call already refunded (an earlier execution): report that refund.
            return {"refund_id": ctx.tool_use_id, "order_id": args.order_id, "status": "REFUNDED"}
        order = _order(args.order_id)
        left = order["total_cents"] - order["refunded_cents"]
        raise ValueError(
            f"cannot refund {args.amount_cents} cents of order {args.order_id}: "
            f"only {left} cents are left to refund"
        ) from exc
    return {"refund_id": ctx.tool_use_id, "order_id": args.order_id, "status": "REFUNDED"}


def _room(args: RefundRequest) -> int:
    # refundedCents + amount <= total  <=>  refundedCents <= total - amount
    return _order(args.order_id)["total_cents"] - args.amount_cents
