"""Counting what AWS calls cost: requests per service, DynamoDB request units and bytes.

One :class:`AwsMeter` sees every call every botocore client of the process makes while it is
*armed* (``with meter.armed():``): it wraps ``BaseClient._make_api_call``, so clients built
anywhere (the runtime's own, Powertools', a toolset's) are seen without being handed over.
Each call is counted once, after botocore's retries.

DynamoDB request units follow the developer guide's rules
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html),
sizes follow ``store.item_size``:

- a write costs 1 unit per started KB of the larger of the item before and after it
  (``PutItem``, ``UpdateItem``, ``DeleteItem``); twice that in ``TransactWriteItems``; a write
  whose condition fails still costs the units of the item it was checked against;
- a read costs 1 unit per started 4 KB, half when eventually consistent: per item for
  ``GetItem`` and ``BatchGetItem``, over the sum of every item for ``Query`` (a query that
  finds nothing still costs the minimum); twice for ``TransactGetItems``. A projection does
  not lower the cost, so projected items are sized whole.

The meter sizes items by reading them through its own unmetered client, disarmed.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from botocore.client import BaseClient
from botocore.exceptions import ClientError

from agentry_runtime.store import item_size

__all__ = ["AwsMeter", "Usage", "read_units", "write_units"]

_KB = 1024
_READ_BLOCK = 4 * _KB

#: A window's counters: ``calls``, ``calls.<service>``, ``op.<service>.<Operation>``,
#: ``write_units``, ``read_units``, ``bytes_written``, ``bytes_read``.
Usage = Counter[str]


def write_units(size: int) -> int:
    """Write request units of one item write of ``size`` bytes (at least one)."""
    return max(1, math.ceil(size / _KB))


def read_units(size: int, *, consistent: bool) -> float:
    """Read request units of reading ``size`` bytes in one unit of billing (at least one)."""
    units = max(1, math.ceil(size / _READ_BLOCK))
    return float(units) if consistent else units / 2


class AwsMeter:
    """Counts the calls of every botocore client while armed (see the module doc)."""

    def __init__(self, reader: Any | None = None) -> None:
        #: A DynamoDB client to size items before and after writes (its calls, made disarmed,
        #: are not counted); set it once the endpoint it must reach (moto) is up.
        self.reader: Any = reader
        self.totals: Usage = Counter()
        self._armed = threading.local()
        self._original: Any = None
        self._keys: dict[str, tuple[str, ...]] = {}

    # --- lifecycle --------------------------------------------------------------------------

    def install(self) -> None:
        """Wrap ``BaseClient._make_api_call`` (once); calls are counted only while armed."""
        if self._original is not None:
            return
        original = BaseClient._make_api_call
        meter = self

        def metered(client: Any, operation: str, params: dict[str, Any]) -> Any:
            if not meter.is_armed:
                return original(client, operation, params)
            return meter._call(original, client, operation, params)

        self._original = original
        BaseClient._make_api_call = metered

    def uninstall(self) -> None:
        """Put botocore back as it was."""
        if self._original is not None:
            BaseClient._make_api_call = self._original
            self._original = None

    def __enter__(self) -> AwsMeter:
        self.install()
        return self

    def __exit__(self, *exc: object) -> None:
        self.uninstall()

    @property
    def is_armed(self) -> bool:
        """Whether calls of this thread are being counted now."""
        return bool(getattr(self._armed, "depth", 0))

    @contextmanager
    def armed(self) -> Iterator[None]:
        """Count the calls this thread makes inside the ``with`` block."""
        self._armed.depth = getattr(self._armed, "depth", 0) + 1
        try:
            yield
        finally:
            self._armed.depth -= 1

    @contextmanager
    def disarmed(self) -> Iterator[None]:
        """Count nothing inside the ``with`` block (the harness's own reads)."""
        depth = getattr(self._armed, "depth", 0)
        self._armed.depth = 0
        try:
            yield
        finally:
            self._armed.depth = depth

    @contextmanager
    def window(self) -> Iterator[Usage]:
        """Yield a counter that receives what is counted inside the ``with`` block (armed)."""
        before = Counter(self.totals)
        window: Usage = Counter()
        try:
            with self.armed():
                yield window
        finally:
            window.update(self.totals)
            window.subtract(before)

    def add(self, key: str, amount: float = 1) -> None:
        """Count something the meter cannot see as a call (a delivery, an invocation)."""
        self.totals[key] += amount  # type: ignore[assignment]

    # --- counting ---------------------------------------------------------------------------

    def _call(self, original: Any, client: Any, operation: str, params: dict[str, Any]) -> Any:
        service = client.meta.service_model.service_name
        before = self._sizes_before(service, operation, params)
        try:
            response = original(client, operation, params)
        except ClientError as exc:
            self._count(service, operation)
            if service == "dynamodb":
                self._failed_write(operation, exc, before)
            raise
        self._count(service, operation)
        if service == "dynamodb":
            self._dynamodb(operation, params, response, before)
        return response

    def _count(self, service: str, operation: str) -> None:
        self.totals["calls"] += 1
        self.totals[f"calls.{service}"] += 1
        self.totals[f"op.{service}.{operation}"] += 1

    def _sizes_before(self, service: str, operation: str, params: Mapping[str, Any]) -> list[int]:
        """Sizes of the items a write will replace, read before it runs."""
        if service != "dynamodb":
            return []
        if operation in ("PutItem", "UpdateItem", "DeleteItem"):
            return [self._size_of(params["TableName"], self._key(params, operation))]
        if operation == "TransactWriteItems":
            sizes = []
            for action in params["TransactItems"]:
                ((kind, body),) = action.items()
                sizes.append(self._size_of(body["TableName"], self._key(body, kind)))
            return sizes
        return []

    def _dynamodb(
        self,
        operation: str,
        params: Mapping[str, Any],
        response: Mapping[str, Any],
        before: list[int],
    ) -> None:
        if operation == "PutItem":
            self._write(before[0], item_size(params["Item"]))
        elif operation == "UpdateItem":
            self._write(before[0], self._size_of(params["TableName"], params["Key"]))
        elif operation == "DeleteItem":
            self._write(before[0], 0)
        elif operation == "TransactWriteItems":
            for size, action in zip(before, params["TransactItems"], strict=True):
                ((kind, body),) = action.items()
                if kind == "Put":
                    self._write(size, item_size(body["Item"]), factor=2)
                elif kind == "Update":
                    self._write(size, self._size_of(body["TableName"], body["Key"]), factor=2)
                elif kind == "Delete":
                    self._write(size, 0, factor=2)
                else:  # ConditionCheck: a read of the item, billed as a write
                    self._write(size, size, factor=2, written=False)
        elif operation == "BatchWriteItem":
            for requests in params["RequestItems"].values():
                for request in requests:
                    if "PutRequest" in request:
                        self._write(0, item_size(request["PutRequest"]["Item"]))
                    else:
                        self._write(0, 0)
        elif operation == "GetItem":
            item = response.get("Item")
            if item is not None and "ProjectionExpression" in params:
                size = self._size_of(params["TableName"], params["Key"])
            else:
                size = item_size(item) if item else 0
            self._read([size], consistent=bool(params.get("ConsistentRead")))
        elif operation in ("Query", "Scan"):
            items = response.get("Items", [])
            if "ProjectionExpression" in params:
                items = self._whole_items(operation, params)
            size = sum(item_size(item) for item in items)
            self._read([size], consistent=bool(params.get("ConsistentRead")))
        elif operation == "BatchGetItem":
            for table, items in response.get("Responses", {}).items():
                consistent = bool(params["RequestItems"][table].get("ConsistentRead"))
                self._read([item_size(item) for item in items], consistent=consistent)
        elif operation == "TransactGetItems":
            for entry in response.get("Responses", []):
                units = read_units(item_size(entry.get("Item") or {}), consistent=True)
                self.totals["read_units"] += 2 * units  # type: ignore[assignment]

    def _failed_write(self, operation: str, exc: ClientError, before: list[int]) -> None:
        code = exc.response.get("Error", {}).get("Code")
        if code == "ConditionalCheckFailedException" and before:
            self.totals["write_units"] += write_units(before[0])
        elif code == "TransactionCanceledException":
            self.totals["write_units"] += sum(2 * write_units(size) for size in before)

    def _write(self, old: int, new: int, *, factor: int = 1, written: bool = True) -> None:
        self.totals["write_units"] += factor * write_units(max(old, new))
        if written:
            self.totals["bytes_written"] += new

    def _read(self, sizes: list[int], *, consistent: bool) -> None:
        for size in sizes:
            self.totals["read_units"] += read_units(size, consistent=consistent)  # type: ignore[assignment]
            self.totals["bytes_read"] += size

    def _size_of(self, table: str, key: Mapping[str, Any]) -> int:
        with self.disarmed():
            item = self.reader.get_item(TableName=table, Key=dict(key), ConsistentRead=True)
        return item_size(item["Item"]) if "Item" in item else 0

    def _whole_items(self, operation: str, params: Mapping[str, Any]) -> list[Any]:
        """The items a projected query or scan read, whole (a projection bills them whole)."""
        unprojected = {
            k: v for k, v in params.items() if k not in ("ProjectionExpression", "Select")
        }
        names = dict(unprojected.get("ExpressionAttributeNames") or {})
        used = " ".join(
            str(unprojected.get(k, ""))
            for k in ("KeyConditionExpression", "FilterExpression", "ConditionExpression")
        )
        if names:
            # The projection's own names would make DynamoDB refuse the unused ones.
            unprojected["ExpressionAttributeNames"] = {k: v for k, v in names.items() if k in used}
            if not unprojected["ExpressionAttributeNames"]:
                del unprojected["ExpressionAttributeNames"]
        with self.disarmed():
            page = getattr(self.reader, "query" if operation == "Query" else "scan")(**unprojected)
        return list(page.get("Items", []))

    def _key(self, body: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
        if kind not in ("Put", "PutItem"):
            return dict(body["Key"])
        item = body["Item"]
        return {name: item[name] for name in self._key_names(body["TableName"])}

    def _key_names(self, table: str) -> tuple[str, ...]:
        if table not in self._keys:
            with self.disarmed():
                schema = self.reader.describe_table(TableName=table)["Table"]["KeySchema"]
            self._keys[table] = tuple(part["AttributeName"] for part in schema)
        return self._keys[table]
