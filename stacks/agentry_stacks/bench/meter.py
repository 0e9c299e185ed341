"""Counting what AWS calls cost: API calls per service, DynamoDB bytes and write units.

Hooks on the botocore clients see each call once (retries are inside the call). Sizes follow
DynamoDB's own rules (``store.item_size``); an ``UpdateItem`` is billed on the whole item, so
the meter reads the item back (through an unmetered client) to size it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from agentry_runtime.store import item_size

_KB = 1024


class AwsMeter:
    """Accumulates calls, bytes and WCU of the clients it is attached to, per window."""

    def __init__(self, reader: Any) -> None:
        self._reader = reader  # unmetered DynamoDB client, to size updated items
        self.totals: Counter[str] = Counter()

    def attach(self, client: Any) -> Any:
        """Meter ``client``'s calls; returns it."""
        events = client.meta.events
        events.register("provide-client-params", self._remember_params)
        events.register("before-call", self._count_call)
        events.register("after-call.dynamodb", self._count_write)
        return client

    @contextmanager
    def window(self) -> Iterator[Counter[str]]:
        """Yield a counter that receives what happens inside the ``with`` block."""
        before = Counter(self.totals)
        window: Counter[str] = Counter()
        try:
            yield window
        finally:
            window.update(self.totals)
            window.subtract(before)

    def _remember_params(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["agentry_params"] = params

    def _count_call(self, model: Any, **_: Any) -> None:
        self.totals["calls"] += 1
        self.totals[f"calls.{model.service_model.service_name}"] += 1

    def _count_write(
        self, http_response: Any, model: Any, context: dict[str, Any], **_: Any
    ) -> None:
        if not 200 <= http_response.status_code < 300:
            return
        params = context.get("agentry_params", {})
        operation = model.name
        if operation == "PutItem":
            self._add(item_size(params["Item"]))
        elif operation == "UpdateItem":
            self._add(self._size_of(params["TableName"], params["Key"]))
        elif operation == "TransactWriteItems":
            for action in params["TransactItems"]:
                if "Put" in action:
                    self._add(item_size(action["Put"]["Item"]), factor=2)
                elif "Update" in action:
                    update = action["Update"]
                    self._add(self._size_of(update["TableName"], update["Key"]), factor=2)
        elif operation == "BatchWriteItem":
            for requests in params["RequestItems"].values():
                for request in requests:
                    if "PutRequest" in request:
                        self._add(item_size(request["PutRequest"]["Item"]))

    def _size_of(self, table: str, key: dict[str, Any]) -> int:
        item = self._reader.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
        return item_size(item) if item else 0

    def _add(self, size: int, *, factor: int = 1) -> None:
        self.totals["bytes"] += size
        self.totals["wcu"] += factor * max(1, math.ceil(size / _KB))


def cost(window: Counter[str]) -> tuple[int, int, int]:
    """``(bytes, wcu, calls)`` of a window."""
    return window["bytes"], window["wcu"], window["calls"]
