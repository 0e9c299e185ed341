"""An in-memory fake of the boto3 DynamoDB client: the real ``AgentStore`` runs on it unchanged.

:class:`MemoryDynamoDB` answers the calls ``agentry_runtime.store.AgentStore`` makes (and the
flight tools, and the recovery state machine's header updates), in process, with no moto and
no sockets. It is proved faithful by the store's own tests, which run on moto and on it
(``tests/runtime/test_store.py``).

What a caller sees is what boto3 gives: every request is checked against the DynamoDB service
model first (``ParamValidationError``), errors are botocore's modeled ``ClientError`` classes
with the codes and ``response`` fields moto and AWS use (``ConditionalCheckFailedException``,
with ``Item`` when ``ReturnValuesOnConditionCheckFailure=ALL_OLD``;
``TransactionCanceledException`` with ``CancellationReasons``; ``ValidationException`` for
what DynamoDB refuses: undefined or unused expression names and values, reserved words, key
mismatches, empty or mistyped table and index keys, items over 400 KB, duplicate keys in a
batch, two operations on one item in a transaction; ``ResourceNotFoundException``), and
``get_paginator("query")`` is botocore's own paginator over :meth:`MemoryDynamoDB.query`.

Operations: ``create_table`` (from ``contract.table_schema``: string keys, ``KEYS_ONLY``
global secondary indexes), ``get_item``, ``put_item``, ``update_item``, ``delete_item``,
``query`` (the table or an index, ``Limit``, ``ExclusiveStartKey``, ``ScanIndexForward``,
``Select=COUNT``, ``ProjectionExpression``), ``batch_get_item``, ``batch_write_item``,
``transact_write_items`` (``Put``, ``Update``, ``Delete``, ``ConditionCheck``).

Expression grammar (only what the store and the state machine write; anything else raises
:class:`UnsupportedExpression`, a ``NotImplementedError`` no caller mistakes for DynamoDB's)::

    path        := #name | identifier                  (top-level attributes only)
    operand     := path | :value
    condition   := disjunct (OR disjunct)*
    disjunct    := term (AND term)*
    term        := ( condition ) | attribute_exists(path) | attribute_not_exists(path)
                 | operand = operand | operand < operand
    key         := hash = :value [AND (range BETWEEN :value AND :value
                                       | begins_with(range, :value))]
    update      := (SET set (, set)* | ADD path :value (, path :value)* | REMOVE path (, path)*)+
    set         := path = term2 [+ term2]
    term2       := path | :value | if_not_exists(path, :value)
    projection  := path (, path)*

A page that stops at ``Limit`` carries a ``LastEvaluatedKey`` even when nothing follows
(DynamoDB does not look ahead; moto does), so callers meet the empty last page they must handle.
Every write is kept in :attr:`MemoryDynamoDB.changes` with its old and new image, as a
``NEW_AND_OLD_IMAGES`` stream would carry it (in order, once, never trimmed).

Not modelled: eventual consistency (every read is strong; ``ConsistentRead`` is checked, then
ignored), the 1 MB page limit, capacity and throttling, TTL expiry, transaction idempotency
tokens (accepted and ignored), and filters, scans and PartiQL (not implemented).
"""

from __future__ import annotations

import importlib.util
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any

from botocore.paginate import Paginator

from support import wire

__all__ = [
    "Change",
    "MemoryDynamoDB",
    "UnsupportedExpression",
    "UnsupportedOperation",
    "memory_table",
]

_SERVICE = "dynamodb"
_MAX_ITEM_BYTES = 400 * 1024
_Item = dict[str, dict[str, Any]]


class UnsupportedExpression(NotImplementedError):  # noqa: N818 - reads as what it is
    """The request uses DynamoDB features this fake does not model (the message says which)."""


class UnsupportedOperation(UnsupportedExpression, AttributeError):  # noqa: N818
    """A client method this fake does not have (``hasattr`` answers ``False`` for it)."""


def memory_table(table_name: str) -> MemoryDynamoDB:
    """A fake client holding the agents table (created from ``contract.table_schema``)."""
    from agentry_runtime.contract import table_schema

    client = MemoryDynamoDB()
    client.create_table(**table_schema(table_name))
    return client


@dataclass(frozen=True)
class Change:
    """One write, as a ``NEW_AND_OLD_IMAGES`` stream record carries it (``None``: no item)."""

    table: str
    keys: dict[str, Any]
    old: dict[str, Any] | None
    new: dict[str, Any] | None


# --- the client ---------------------------------------------------------------------------------


class MemoryDynamoDB:
    """The DynamoDB client subset the store uses, in memory (see the module doc)."""

    def __init__(self) -> None:
        self._tables: dict[str, _Table] = {}
        # One call at a time: each DynamoDB call is atomic, whatever thread makes it.
        self._lock = threading.RLock()
        self.exceptions = wire.exceptions(_SERVICE)
        #: Operation names of every call, in order (``"PutItem"``, ``"Query"``...).
        self.calls: list[str] = []
        #: Every write that changed or wrote an item, in order (the table's stream).
        self.changes: list[Change] = []

    # --- tables -----------------------------------------------------------------------------

    def create_table(self, **params: Any) -> dict[str, Any]:
        """Create a table with string keys and ``KEYS_ONLY`` global secondary indexes."""
        self._validate("CreateTable", params)
        _only(
            "CreateTable",
            params,
            {
                "TableName",
                "KeySchema",
                "AttributeDefinitions",
                "GlobalSecondaryIndexes",
                "BillingMode",
                "StreamSpecification",
            },
        )
        name = params["TableName"]
        with self._lock:
            if name in self._tables:
                raise _error(
                    "CreateTable", "ResourceInUseException", f"Table already exists: {name}"
                )
            types = {a["AttributeName"]: a["AttributeType"] for a in params["AttributeDefinitions"]}
            if set(types.values()) != {"S"}:
                raise UnsupportedExpression("CreateTable: only string (S) key attributes")
            indexes = {}
            for index in params.get("GlobalSecondaryIndexes", []):
                if index["Projection"]["ProjectionType"] != "KEYS_ONLY":
                    raise UnsupportedExpression("CreateTable: only KEYS_ONLY indexes")
                indexes[index["IndexName"]] = _keys(index["KeySchema"])
            self._tables[name] = _Table(
                name, _keys(params["KeySchema"]), indexes, changes=self.changes
            )
        return {"TableDescription": {"TableName": name, "TableStatus": "ACTIVE"}, **_meta()}

    # --- single items -----------------------------------------------------------------------

    def get_item(self, **params: Any) -> dict[str, Any]:
        """One item by its key (every read is strongly consistent)."""
        op = "GetItem"
        self._validate(op, params)
        _only(op, params, {"TableName", "Key", "ConsistentRead", "ProjectionExpression"} | _NAMES)
        with self._lock:
            self.calls.append(op)
            table = self._table(op, params["TableName"])
            refs = _Refs(op, params)
            projection = refs.projection(params.get("ProjectionExpression"))
            refs.check_all_used()
            item = table.items.get(table.key_of(op, params["Key"]))
            if item is None:
                return _meta()
            return {"Item": _project(item, projection), **_meta()}

    def put_item(self, **params: Any) -> dict[str, Any]:
        """Write a whole item, if its condition holds."""
        op = "PutItem"
        self._validate(op, params)
        _only(op, params, {"TableName", "Item", "ConditionExpression"} | _NAMES | _RETURN_OLD)
        _return_values(op, params, allowed=("NONE",))
        with self._lock:
            self.calls.append(op)
            table = self._table(op, params["TableName"])
            item = _stored(params["Item"])
            key = table.check_item(op, item)
            refs = _Refs(op, params)
            condition = refs.condition(params.get("ConditionExpression"))
            refs.check_all_used()
            old = table.items.get(key)
            _check_condition(op, condition, old, params)
            table.write(key, item)
            return _meta()

    def update_item(self, **params: Any) -> dict[str, Any]:
        """Apply an update expression to an item (created if absent), if its condition holds."""
        op = "UpdateItem"
        self._validate(op, params)
        _only(
            op,
            params,
            {"TableName", "Key", "UpdateExpression", "ConditionExpression", "ReturnValues"}
            | _NAMES
            | _RETURN_OLD,
        )
        _return_values(op, params, allowed=("NONE", "ALL_NEW"))
        with self._lock:
            self.calls.append(op)
            table = self._table(op, params["TableName"])
            key = table.key_of(op, params["Key"])
            refs = _Refs(op, params)
            if "UpdateExpression" not in params:
                raise UnsupportedExpression(f"{op}: only with an UpdateExpression")
            actions = refs.update(params["UpdateExpression"], table.key_names)
            condition = refs.condition(params.get("ConditionExpression"))
            refs.check_all_used()
            old = table.items.get(key)
            _check_condition(op, condition, old, params)
            new = _apply_update(op, actions, old, params["Key"])
            table.check_item(op, new)
            table.write(key, new)
            if params.get("ReturnValues") == "ALL_NEW":
                return {"Attributes": _copy(new), **_meta()}
            return _meta()

    def delete_item(self, **params: Any) -> dict[str, Any]:
        """Delete an item by its key, if its condition holds."""
        op = "DeleteItem"
        self._validate(op, params)
        _only(op, params, {"TableName", "Key", "ConditionExpression"} | _NAMES | _RETURN_OLD)
        _return_values(op, params, allowed=("NONE",))
        with self._lock:
            self.calls.append(op)
            table = self._table(op, params["TableName"])
            key = table.key_of(op, params["Key"])
            refs = _Refs(op, params)
            condition = refs.condition(params.get("ConditionExpression"))
            refs.check_all_used()
            _check_condition(op, condition, table.items.get(key), params)
            table.write(key, None)
            return _meta()

    # --- queries ----------------------------------------------------------------------------

    def query(self, **params: Any) -> dict[str, Any]:
        """One page of a key condition query on the table or one of its indexes."""
        op = "Query"
        self._validate(op, params)
        _only(
            op,
            params,
            {
                "TableName",
                "IndexName",
                "KeyConditionExpression",
                "ConsistentRead",
                "Limit",
                "ExclusiveStartKey",
                "ScanIndexForward",
                "Select",
                "ProjectionExpression",
            }
            | _NAMES,
        )
        if params.get("Select", "COUNT") != "COUNT":
            raise UnsupportedExpression(f"{op}: Select={params['Select']} (only COUNT)")
        with self._lock:
            self.calls.append(op)
            table = self._table(op, params["TableName"])
            index = params.get("IndexName")
            if index is not None and index not in table.indexes:
                raise _error(op, "ValidationException", _no_index(index))
            if index is not None and params.get("ConsistentRead"):
                raise _error(
                    op,
                    "ValidationException",
                    "Consistent reads are not supported on global secondary indexes",
                )
            if "KeyConditionExpression" not in params:
                raise UnsupportedExpression(f"{op}: only with a KeyConditionExpression")
            if "Select" in params and "ProjectionExpression" in params:
                raise _error(
                    op,
                    "ValidationException",
                    "Can not use both expression and non-expression parameters in the same "
                    "request: Non-expression parameters: {Select} Expression parameters: "
                    "{ProjectionExpression}",
                )
            hash_name, range_name = table.indexes[index] if index else table.key_names
            refs = _Refs(op, params)
            key = refs.key_condition(params["KeyConditionExpression"], hash_name, range_name)
            projection = refs.projection(params.get("ProjectionExpression"))
            refs.check_all_used()
            forward = params.get("ScanIndexForward", True)
            rows = table.rows(index, key)
            if not forward:
                rows.reverse()
            start = params.get("ExclusiveStartKey")
            if start is not None:
                rows = _after(op, rows, table, index, start, forward=forward)
            limit = params.get("Limit")
            page = rows if limit is None else rows[:limit]
            response: dict[str, Any] = {"Count": len(page), "ScannedCount": len(page)}
            if params.get("Select") != "COUNT":
                response["Items"] = [_project(item, projection) for item in page]
            if limit is not None and page and len(page) == limit:
                # DynamoDB stops when Limit items were evaluated and says where it stopped,
                # whether or not more items follow.
                response["LastEvaluatedKey"] = table.position(index, page[-1])
            return {**response, **_meta()}

    def get_paginator(self, operation_name: str) -> Paginator:
        """botocore's paginator for ``query`` (the only paginated call the store makes)."""
        if operation_name != "query":
            raise UnsupportedExpression(f"get_paginator({operation_name!r}): only 'query'")
        config = _paginator_config("Query")
        return Paginator(self.query, config, wire.operation_model(_SERVICE, "Query"))

    def can_paginate(self, operation_name: str) -> bool:
        """Whether :meth:`get_paginator` serves ``operation_name``."""
        return operation_name == "query"

    # --- batches and transactions -------------------------------------------------------------

    def batch_get_item(self, **params: Any) -> dict[str, Any]:
        """Items by key, from one or more tables (at most 100 keys, no duplicates)."""
        op = "BatchGetItem"
        self._validate(op, params)
        _only(op, params, {"RequestItems"})
        with self._lock:
            self.calls.append(op)
            requested = params["RequestItems"]
            count = sum(len(r["Keys"]) for r in requested.values())
            if count > 100:
                raise _error(
                    op,
                    "ValidationException",
                    "Too many items requested for the BatchGetItem call",
                )
            responses: dict[str, list[_Item]] = {}
            for table_name, request in requested.items():
                _only(op, request, {"Keys", "ConsistentRead"})
                table = self._table(op, table_name)
                keys = [table.key_of(op, key) for key in request["Keys"]]
                if len(set(keys)) != len(keys):
                    raise _error(
                        op, "ValidationException", "Provided list of item keys contains duplicates"
                    )
                responses[table_name] = [
                    _copy(table.items[key]) for key in keys if key in table.items
                ]
            return {"Responses": responses, "UnprocessedKeys": {}, **_meta()}

    def batch_write_item(self, **params: Any) -> dict[str, Any]:
        """Puts and deletes, each applied on its own (at most 25, no duplicate keys)."""
        op = "BatchWriteItem"
        self._validate(op, params)
        _only(op, params, {"RequestItems"})
        with self._lock:
            self.calls.append(op)
            requested = params["RequestItems"]
            if sum(len(r) for r in requested.values()) > 25:
                raise _error(
                    op,
                    "ValidationException",
                    "Too many items requested for the BatchWriteItem call",
                )
            writes: list[tuple[_Table, tuple[str, str], _Item | None]] = []
            for table_name, requests in requested.items():
                table = self._table(op, table_name)
                for request in requests:
                    if "PutRequest" in request:
                        item = _stored(request["PutRequest"]["Item"])
                        writes.append((table, table.check_item(op, item), item))
                    else:
                        writes.append(
                            (table, table.key_of(op, request["DeleteRequest"]["Key"]), None)
                        )
            targets = [(table.name, key) for table, key, _ in writes]
            if len(set(targets)) != len(targets):
                raise _error(
                    op, "ValidationException", "Provided list of item keys contains duplicates"
                )
            for table, key, written in writes:
                table.write(key, written)
            return {"UnprocessedItems": {}, **_meta()}

    def transact_write_items(self, **params: Any) -> dict[str, Any]:
        """All of the writes or none: conditions are checked on the state before any applies."""
        op = "TransactWriteItems"
        self._validate(op, params)
        _only(op, params, {"TransactItems", "ClientRequestToken"})
        with self._lock:
            self.calls.append(op)
            planned: list[
                tuple[_Table, tuple[str, str], Callable[[_Item | None], _Item | None]]
            ] = []
            reasons: list[dict[str, Any]] = []
            for action in params["TransactItems"]:
                ((kind, request),) = action.items()
                table = self._table(op, request["TableName"])
                refs = _Refs(op, request)
                if kind == "Put":
                    _only(
                        op,
                        request,
                        {"TableName", "Item", "ConditionExpression"} | _NAMES | _RETURN_OLD,
                    )
                    item = _stored(request["Item"])
                    key = table.check_item(op, item)
                    apply = _replace_with(item)
                elif kind == "Update":
                    _only(
                        op,
                        request,
                        {"TableName", "Key", "UpdateExpression", "ConditionExpression"}
                        | _NAMES
                        | _RETURN_OLD,
                    )
                    key = table.key_of(op, request["Key"])
                    actions = refs.update(request["UpdateExpression"], table.key_names)
                    apply = _updater(op, table, actions, request["Key"])
                elif kind == "Delete":
                    _only(
                        op,
                        request,
                        {"TableName", "Key", "ConditionExpression"} | _NAMES | _RETURN_OLD,
                    )
                    key = table.key_of(op, request["Key"])
                    apply = _replace_with(None)
                else:  # ConditionCheck
                    _only(
                        op,
                        request,
                        {"TableName", "Key", "ConditionExpression"} | _NAMES | _RETURN_OLD,
                    )
                    key = table.key_of(op, request["Key"])
                    apply = _unchanged
                condition = refs.condition(request.get("ConditionExpression"))
                refs.check_all_used()
                if any(t is table and k == key for t, k, _ in planned):
                    raise _error(
                        op,
                        "ValidationException",
                        "Transaction request cannot include multiple operations on one item",
                    )
                old = table.items.get(key)
                if condition is None or _holds(condition, old):
                    reasons.append({"Code": "None"})
                else:
                    reason: dict[str, Any] = {
                        "Code": "ConditionalCheckFailed",
                        "Message": _CONDITION_FAILED,
                    }
                    if old is not None and _wants_old(request):
                        reason["Item"] = _copy(old)
                    reasons.append(reason)
                planned.append((table, key, apply))
            if len(planned) > 100:
                raise _error(
                    op,
                    "ValidationException",
                    "Member must have length less than or equal to 100",
                )
            if any(r["Code"] != "None" for r in reasons):
                codes = ", ".join(r["Code"] for r in reasons)
                raise _error(
                    op,
                    "TransactionCanceledException",
                    f"Transaction cancelled, please refer cancellation reasons for specific "
                    f"reasons [{codes}]",
                    CancellationReasons=reasons,
                )
            results = [
                (table, key, apply(table.items.get(key)))
                for table, key, apply in planned
                if apply is not _unchanged  # a condition check writes nothing
            ]
            for table, _, new in results:
                if new is not None:
                    table.check_item(op, new)
            for table, key, new in results:
                if new is not None or key in table.items:
                    table.write(key, new)
            return _meta()

    # --- for tests ----------------------------------------------------------------------------

    def stored_items(self, table_name: str) -> list[dict[str, Any]]:
        """Every item of a table, in key order (what a full scan would find)."""
        with self._lock:
            table = self._table("Scan", table_name)
            return [_copy(table.items[key]) for key in sorted(table.items)]

    # --- anything else ------------------------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        raise UnsupportedOperation(
            f"MemoryDynamoDB.{name}: not implemented (only what AgentStore calls; see its doc)"
        )

    # --- private ------------------------------------------------------------------------------

    def _validate(self, operation: str, params: dict[str, Any]) -> None:
        wire.validate_params(_SERVICE, operation, params)

    def _table(self, operation: str, name: str) -> _Table:
        table = self._tables.get(name)
        if table is None:
            raise _error(operation, "ResourceNotFoundException", "Requested resource not found")
        return table


# --- tables and items ---------------------------------------------------------------------------


@dataclass
class _Table:
    name: str
    key_names: tuple[str, str]
    #: index name -> (hash key, range key)
    indexes: dict[str, tuple[str, str]]
    changes: list[Change]
    items: dict[tuple[str, str], _Item] = field(default_factory=dict)

    def write(self, key: tuple[str, str], item: _Item | None) -> None:
        """Store (or, with ``None``, delete) an item, and record the change."""
        old = self.items.get(key)
        if item is None:
            if old is None:
                return  # deleting nothing writes no stream record
            del self.items[key]
        else:
            self.items[key] = item
        keys = {name: {"S": value} for name, value in zip(self.key_names, key, strict=True)}
        self.changes.append(
            Change(
                self.name,
                keys,
                None if old is None else _copy(old),
                None if item is None else _copy(item),
            )
        )

    def key_of(self, operation: str, key: Mapping[str, Any]) -> tuple[str, str]:
        """The item key of a ``Key`` parameter; ``ValidationException`` if it is not one."""
        if set(key) != set(self.key_names) or not all(
            set(key[name]) == {"S"} for name in self.key_names
        ):
            raise _error(
                operation,
                "ValidationException",
                "The provided key element does not match the schema",
            )
        values = tuple(key[name]["S"] for name in self.key_names)
        for name, value in zip(self.key_names, values, strict=True):
            if value == "":
                raise _error(
                    operation,
                    "ValidationException",
                    "One or more parameter values are not valid. The AttributeValue for a key "
                    f"attribute cannot contain an empty string value. Key: {name}",
                )
        return values[0], values[1]

    def check_item(self, operation: str, item: _Item) -> tuple[str, str]:
        """The key of an item about to be stored, after DynamoDB's checks on it."""
        for name in self.key_names:
            if name not in item:
                raise _error(
                    operation,
                    "ValidationException",
                    "One or more parameter values were invalid: "
                    f"Missing the key {name} in the item",
                )
            ((kind, _),) = item[name].items()
            if kind != "S":
                raise _error(
                    operation,
                    "ValidationException",
                    "One or more parameter values were invalid: Type mismatch for key "
                    f"{name} expected: S actual: {kind}",
                )
        key = self.key_of(operation, {name: item[name] for name in self.key_names})
        for index, names in self.indexes.items():
            for name in names:
                if name not in item or name in self.key_names:
                    continue
                ((kind, value),) = item[name].items()
                if kind != "S":
                    raise _error(
                        operation,
                        "ValidationException",
                        "One or more parameter values were invalid: Type mismatch for Index Key "
                        f"{name} Expected: S Actual: {kind} IndexName: {index}",
                    )
                if value == "":
                    raise _error(
                        operation,
                        "ValidationException",
                        "One or more parameter values are not valid. A value specified for a "
                        "secondary index key is not supported. The AttributeValue for a key "
                        "attribute cannot contain an empty string value. "
                        f"IndexName: {index}, IndexKey: {name}",
                    )
        for name, value in item.items():
            _check_value(operation, name, value)
        if _item_size(item) > _MAX_ITEM_BYTES:
            raise _error(
                operation, "ValidationException", "Item size has exceeded the maximum allowed size"
            )
        return key

    def rows(self, index: str | None, key: _KeyCondition) -> list[_Item]:
        """Items (index entries: keys only) matching a key condition, in key order."""
        if index is None:
            hash_name, range_name = self.key_names
            found = [item for (pk, _), item in self.items.items() if pk == key.hash_value["S"]]
        else:
            hash_name, range_name = self.indexes[index]
            found = [
                {
                    name: item[name]
                    for name in dict.fromkeys([*self.key_names, hash_name, range_name])
                }
                for item in self.items.values()
                if hash_name in item and range_name in item and item[hash_name] == key.hash_value
            ]
        found = [item for item in found if key.matches(item[range_name])]
        found.sort(key=lambda item: self._order(index, item))
        return [_copy(item) for item in found]

    def position(self, index: str | None, item: _Item) -> _Item:
        """``LastEvaluatedKey`` of an item: the table's keys (and the index's, on an index)."""
        return {name: dict(item[name]) for name in self.position_names(index)}

    def position_names(self, index: str | None) -> list[str]:
        """The attributes of a ``LastEvaluatedKey`` on the table or an index."""
        if index is None:
            return list(self.key_names)
        return list(dict.fromkeys([*self.indexes[index], *self.key_names]))

    def _order(self, index: str | None, item: _Item) -> tuple[str, ...]:
        if index is None:
            return (item[self.key_names[1]]["S"],)
        # Entries with equal index keys come in an order DynamoDB does not define; the
        # table's keys make this fake's order stable.
        return (item[self.indexes[index][1]]["S"], *(item[name]["S"] for name in self.key_names))

    def order_of(self, index: str | None, key: Mapping[str, Any]) -> tuple[str, ...]:
        return self._order(index, dict(key))


def _keys(schema: list[dict[str, str]]) -> tuple[str, str]:
    kinds = {k["KeyType"]: k["AttributeName"] for k in schema}
    if set(kinds) != {"HASH", "RANGE"}:
        raise UnsupportedExpression("CreateTable: only keys with a hash and a range attribute")
    return kinds["HASH"], kinds["RANGE"]


def _after(
    operation: str,
    rows: list[_Item],
    table: _Table,
    index: str | None,
    start: Mapping[str, Any],
    *,
    forward: bool,
) -> list[_Item]:
    """The rows past ``ExclusiveStartKey`` in the query's direction."""
    if set(start) != set(table.position_names(index)) or not all(
        set(value) == {"S"} for value in start.values()
    ):
        raise _error(operation, "ValidationException", "The provided starting key is invalid")
    mark = table.order_of(index, start)
    return [
        row
        for row in rows
        if (table.order_of(index, row) > mark if forward else table.order_of(index, row) < mark)
    ]


# --- values -------------------------------------------------------------------------------------


def _stored(item: Mapping[str, Any]) -> _Item:
    """A private copy of an item as DynamoDB keeps it (binary values as bytes)."""
    return {name: _copy_value(value) for name, value in item.items()}


def _copy(item: Mapping[str, Any]) -> _Item:
    return {name: _copy_value(value) for name, value in item.items()}


def _copy_value(value: Mapping[str, Any]) -> dict[str, Any]:
    ((kind, data),) = value.items()
    if kind == "M":
        return {"M": {k: _copy_value(v) for k, v in data.items()}}
    if kind == "L":
        return {"L": [_copy_value(v) for v in data]}
    if kind == "B":
        return {"B": data.encode() if isinstance(data, str) else bytes(data)}
    if kind == "BS":
        return {"BS": [d.encode() if isinstance(d, str) else bytes(d) for d in data]}
    if kind in ("SS", "NS"):
        return {kind: list(data)}
    return {kind: data}


def _check_value(operation: str, name: str, value: Mapping[str, Any]) -> None:
    if len(value) != 1:
        raise _error(
            operation,
            "ValidationException",
            "Supplied AttributeValue has more than one datatypes set, must contain exactly one "
            "of the supported datatypes",
        )
    ((kind, data),) = value.items()
    if kind in ("S", "SS") or (kind == "M" and data):
        texts = [data] if kind == "S" else list(data)
        try:
            for text in texts:
                text.encode("utf-8")
        except UnicodeEncodeError:
            # DynamoDB keeps strings as UTF-8: text that has no UTF-8 form cannot be stored.
            raise _error(
                operation,
                "ValidationException",
                f"One or more parameter values were invalid: {name} is not valid UTF-8",
            ) from None
    if kind == "N":
        _number(operation, data)
    elif kind in ("SS", "NS", "BS"):
        if not data:
            raise _error(
                operation,
                "ValidationException",
                f"One or more parameter values were invalid: An {kind} may not be empty",
            )
        if len(set(map(str, data))) != len(data):
            raise _error(
                operation,
                "ValidationException",
                f"One or more parameter values were invalid: Input collection {data} contains "
                "duplicates.",
            )
    elif kind == "M":
        for key, inner in data.items():
            _check_value(operation, key, inner)
    elif kind == "L":
        for inner in data:
            _check_value(operation, name, inner)


def _number(operation: str, text: str) -> Decimal:
    try:
        number = Decimal(text)
    except InvalidOperation:
        number = Decimal("NaN")
    if not number.is_finite():
        raise _error(
            operation,
            "ValidationException",
            f"A value provided cannot be converted into a number: {text!r}",
        )
    return number


def _number_text(number: Decimal) -> str:
    return format(number.normalize(), "f") if number else "0"


def _item_size(item: Mapping[str, Any]) -> int:
    """An item's size by DynamoDB's published rules (names and values, in bytes)."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: Mapping[str, Any]) -> int:
    ((kind, data),) = value.items()
    if kind == "S":
        return len(data.encode())
    if kind == "N":
        return len(data.lstrip("-").replace(".", "").strip("0")) // 2 + 2
    if kind == "B":
        return len(data)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(len(v.encode()) if isinstance(v, str) else len(v) for v in data)
    if kind == "L":
        return 3 + sum(1 + _value_size(v) for v in data)
    return 3 + sum(1 + len(k.encode()) + _value_size(v) for k, v in data.items())


def _equal(left: Mapping[str, Any] | None, right: Mapping[str, Any] | None) -> bool:
    if left is None or right is None:
        return False
    ((lkind, ldata),) = left.items()
    ((rkind, rdata),) = right.items()
    if lkind != rkind:
        return False
    if lkind == "N":
        return bool(Decimal(ldata) == Decimal(rdata))
    return bool(ldata == rdata)


def _less(left: Mapping[str, Any] | None, right: Mapping[str, Any] | None) -> bool:
    if left is None or right is None:
        return False
    ((lkind, ldata),) = left.items()
    ((rkind, rdata),) = right.items()
    if lkind != rkind or lkind not in ("N", "S", "B"):
        return False
    if lkind == "N":
        return bool(Decimal(ldata) < Decimal(rdata))
    if lkind == "S":
        return bool(ldata.encode() < rdata.encode())
    return bool(bytes(ldata) < bytes(rdata))


# --- expressions --------------------------------------------------------------------------------

_NAMES = {"ExpressionAttributeNames", "ExpressionAttributeValues"}
_RETURN_OLD = {"ReturnValuesOnConditionCheckFailure", "ReturnValues"}
_CONDITION_FAILED = "The conditional request failed"
_TOKEN = re.compile(
    r"\s*(?:(?P<name>#[A-Za-z0-9_]+)|(?P<value>:[A-Za-z0-9_]+)|(?P<word>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<symbol>[=<(),+]))"
)
_KEYWORDS = {"AND", "OR", "BETWEEN", "SET", "ADD", "REMOVE"}
_FUNCTIONS = {"attribute_exists", "attribute_not_exists", "begins_with", "if_not_exists"}


@dataclass(frozen=True)
class _Path:
    name: str


@dataclass(frozen=True)
class _Value:
    value: dict[str, Any]


@dataclass(frozen=True)
class _IfNotExists:
    path: _Path
    default: _Value


@dataclass(frozen=True)
class _Sum:
    left: Any
    right: Any


@dataclass(frozen=True)
class _Exists:
    path: _Path
    wanted: bool


@dataclass(frozen=True)
class _Compare:
    op: str
    left: Any
    right: Any


@dataclass(frozen=True)
class _Both:
    left: Any
    right: Any


@dataclass(frozen=True)
class _Either:
    left: Any
    right: Any


@dataclass(frozen=True)
class _KeyCondition:
    hash_value: dict[str, Any]
    between: tuple[dict[str, Any], dict[str, Any]] | None = None
    prefix: dict[str, Any] | None = None

    def matches(self, value: Mapping[str, Any]) -> bool:
        if self.between is not None:
            low, high = self.between
            return not _less(value, low) and not _less(high, value)
        if self.prefix is not None:
            return bool(value["S"].startswith(self.prefix["S"]))
        return True


@dataclass(frozen=True)
class _Action:
    clause: str
    path: _Path
    value: Any = None


class _Refs:
    """The ``#name``/``:value`` placeholders of one request, and which expressions used them."""

    def __init__(self, operation: str, params: Mapping[str, Any]) -> None:
        self.operation = operation
        self.names: dict[str, str] = dict(params.get("ExpressionAttributeNames") or {})
        self.values: dict[str, Any] = dict(params.get("ExpressionAttributeValues") or {})
        self.used_names: set[str] = set()
        self.used_values: set[str] = set()
        self.expressions = 0
        for name, value in self.values.items():
            _check_value(operation, name, value)

    # --- the expressions of a request -----------------------------------------------------

    def condition(self, text: str | None) -> Any:
        if text is None:
            return None
        parser = self._parser("ConditionExpression", text)
        node = parser.condition()
        parser.end()
        return node

    def projection(self, text: str | None) -> list[str] | None:
        if text is None:
            return None
        parser = self._parser("ProjectionExpression", text)
        paths = [parser.path().name]
        while parser.take(","):
            paths.append(parser.path().name)
        parser.end()
        return paths

    def key_condition(self, text: str, hash_name: str, range_name: str) -> _KeyCondition:
        parser = self._parser("KeyConditionExpression", text)
        if parser.path().name != hash_name or not parser.take("="):
            raise _error(
                self.operation,
                "ValidationException",
                f"Query condition missed key schema element: {hash_name}",
            )
        hash_value = parser.value()
        if not parser.take("AND"):
            parser.end()
            return _KeyCondition(hash_value.value)
        if parser.take("begins_with"):
            parser.expect("(")
            path = parser.path()
            parser.expect(",")
            prefix = parser.value()
            parser.expect(")")
            parser.end()
            self._range_is(path, range_name)
            return _KeyCondition(hash_value.value, prefix=prefix.value)
        path = parser.path()
        self._range_is(path, range_name)
        parser.expect("BETWEEN")
        low = parser.value()
        parser.expect("AND")
        high = parser.value()
        parser.end()
        if _less(high.value, low.value):
            raise _error(
                self.operation,
                "ValidationException",
                "Invalid KeyConditionExpression: The BETWEEN operator requires upper bound to be "
                "greater than or equal to lower bound",
            )
        return _KeyCondition(hash_value.value, between=(low.value, high.value))

    def update(self, text: str, key_names: tuple[str, str]) -> list[_Action]:
        parser = self._parser("UpdateExpression", text)
        actions: list[_Action] = []
        seen: set[str] = set()
        while not parser.done():
            clause = parser.word()
            if clause not in ("SET", "ADD", "REMOVE") or clause in seen:
                raise UnsupportedExpression(f"{self.operation}: update clause {clause!r}")
            seen.add(clause)
            while True:
                path = parser.path()
                if clause == "SET":
                    parser.expect("=")
                    actions.append(_Action(clause, path, parser.set_value()))
                elif clause == "ADD":
                    actions.append(_Action(clause, path, parser.value()))
                else:
                    actions.append(_Action(clause, path))
                if not parser.take(","):
                    break
        if not actions:
            raise _error(self.operation, "ValidationException", "Invalid UpdateExpression: empty")
        paths = [a.path.name for a in actions]
        if len(set(paths)) != len(paths):
            raise _error(
                self.operation,
                "ValidationException",
                "Invalid UpdateExpression: Two document paths overlap with each other",
            )
        for name in paths:
            if name in key_names:
                raise _error(
                    self.operation,
                    "ValidationException",
                    "One or more parameter values were invalid: Cannot update attribute "
                    f"{name}. This attribute is part of the key",
                )
        return actions

    def check_all_used(self) -> None:
        if (self.names or self.values) and not self.expressions:
            which = "ExpressionAttributeNames" if self.names else "ExpressionAttributeValues"
            raise _error(
                self.operation,
                "ValidationException",
                f"{which} can only be specified when using expressions",
            )
        if unused := sorted(set(self.names) - self.used_names):
            raise _error(
                self.operation,
                "ValidationException",
                "Value provided in ExpressionAttributeNames unused in expressions: "
                f"keys: {{{', '.join(unused)}}}",
            )
        if unused := sorted(set(self.values) - self.used_values):
            raise _error(
                self.operation,
                "ValidationException",
                "Value provided in ExpressionAttributeValues unused in expressions: "
                f"keys: {{{', '.join(unused)}}}",
            )

    # --- private ---------------------------------------------------------------------------

    def _parser(self, kind: str, text: str) -> _Parser:
        self.expressions += 1
        return _Parser(self, kind, text)

    def _range_is(self, path: _Path, range_name: str) -> None:
        if path.name != range_name:
            raise _error(
                self.operation,
                "ValidationException",
                f"Query condition missed key schema element: {range_name}",
            )


class _Parser:
    """Recursive descent over the tokens of one expression (the grammar in the module doc)."""

    def __init__(self, refs: _Refs, kind: str, text: str) -> None:
        self.refs = refs
        self.kind = kind
        self.text = text
        self.tokens: list[tuple[str, str]] = []
        position = 0
        while position < len(text):
            if not text[position:].strip():
                break
            match = _TOKEN.match(text, position)
            if match is None or match.end() == position:
                raise UnsupportedExpression(
                    f"{refs.operation}: cannot read {text[position:]!r} in {text!r}"
                )
            kind = match.lastgroup or ""
            self.tokens.append((kind, match.group(kind)))
            position = match.end()
        self.position = 0

    # --- grammar ----------------------------------------------------------------------------

    def condition(self) -> Any:
        node = self._disjunct()
        while self.take("OR"):
            node = _Either(node, self._disjunct())
        return node

    def _disjunct(self) -> Any:
        node = self._term()
        while self.take("AND"):
            node = _Both(node, self._term())
        return node

    def _term(self) -> Any:
        if self.take("("):
            node = self.condition()
            self.expect(")")
            return node
        for function, wanted in (("attribute_exists", True), ("attribute_not_exists", False)):
            if self.take(function):
                self.expect("(")
                path = self.path()
                self.expect(")")
                return _Exists(path, wanted)
        left = self._operand()
        for op in ("=", "<"):
            if self.take(op):
                return _Compare(op, left, self._operand())
        raise self._unsupported("a comparison (=, <) or a function")

    def _operand(self) -> Any:
        kind, _ = self._peek()
        return self.value() if kind == "value" else self.path()

    def set_value(self) -> Any:
        left = self._set_term()
        if self.take("+"):
            return _Sum(left, self._set_term())
        return left

    def _set_term(self) -> Any:
        if self.take("if_not_exists"):
            self.expect("(")
            path = self.path()
            self.expect(",")
            default = self.value()
            self.expect(")")
            return _IfNotExists(path, default)
        return self._operand()

    def path(self) -> _Path:
        kind, text = self._next("an attribute name")
        if kind == "name":
            if text not in self.refs.names:
                raise _error(
                    self.refs.operation,
                    "ValidationException",
                    "An expression attribute name used in the document path is not defined; "
                    f"attribute name: {text}",
                )
            self.refs.used_names.add(text)
            return _Path(self.refs.names[text])
        if kind == "word" and text not in _FUNCTIONS and text.upper() not in _KEYWORDS:
            if text.upper() in _reserved_words():
                raise _error(
                    self.refs.operation,
                    "ValidationException",
                    f"Invalid {self.kind}: Attribute name is a reserved keyword; "
                    f"reserved keyword: {text}",
                )
            return _Path(text)
        raise self._unsupported("an attribute name", at=self.position - 1)

    def value(self) -> _Value:
        kind, text = self._next("a :value")
        if kind != "value":
            raise self._unsupported("a :value", at=self.position - 1)
        if text not in self.refs.values:
            raise _error(
                self.refs.operation,
                "ValidationException",
                "An expression attribute value used in expression is not defined; "
                f"attribute value: {text}",
            )
        self.refs.used_values.add(text)
        return _Value(self.refs.values[text])

    def word(self) -> str:
        kind, text = self._next("a clause")
        if kind != "word":
            raise self._unsupported("a clause", at=self.position - 1)
        return text.upper()

    # --- tokens -----------------------------------------------------------------------------

    def take(self, token: str) -> bool:
        kind, text = self._peek()
        matched = (
            text == token
            if kind in ("symbol", "")
            else (text.upper() == token if token in _KEYWORDS else text == token)
        )
        if matched and kind:
            self.position += 1
        return matched and bool(kind)

    def expect(self, token: str) -> None:
        if not self.take(token):
            raise self._unsupported(repr(token))

    def done(self) -> bool:
        return self.position >= len(self.tokens)

    def end(self) -> None:
        if not self.done():
            raise self._unsupported("the end of the expression")

    def _peek(self) -> tuple[str, str]:
        return self.tokens[self.position] if not self.done() else ("", "")

    def _next(self, wanted: str) -> tuple[str, str]:
        if self.done():
            raise self._unsupported(wanted)
        token = self.tokens[self.position]
        self.position += 1
        return token

    def _unsupported(self, wanted: str, *, at: int | None = None) -> UnsupportedExpression:
        where = self.position if at is None else at
        found = self.tokens[where][1] if where < len(self.tokens) else "the end"
        return UnsupportedExpression(
            f"{self.refs.operation}: expected {wanted} at {found!r} in {self.text!r} "
            "(this fake reads only the grammar in its module doc)"
        )


@cache
def _reserved_words() -> frozenset[str]:
    """DynamoDB's reserved words: the list moto ships, read as data (moto is not imported)."""
    spec = importlib.util.find_spec("moto")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("moto is not installed: its list of DynamoDB reserved words is needed")
    path = (
        Path(next(iter(spec.submodule_search_locations))) / "dynamodb/parsing/reserved_keywords.txt"
    )
    return frozenset(line.strip().upper() for line in path.read_text().splitlines() if line.strip())


# --- evaluation ---------------------------------------------------------------------------------


def _holds(node: Any, item: _Item | None) -> bool:
    if isinstance(node, _Either):
        return _holds(node.left, item) or _holds(node.right, item)
    if isinstance(node, _Both):
        return _holds(node.left, item) and _holds(node.right, item)
    if isinstance(node, _Exists):
        return (item is not None and node.path.name in item) == node.wanted
    left, right = _operand_value(node.left, item), _operand_value(node.right, item)
    return _equal(left, right) if node.op == "=" else _less(left, right)


def _operand_value(node: Any, item: _Item | None) -> dict[str, Any] | None:
    if isinstance(node, _Value):
        return node.value
    return None if item is None else item.get(node.name)


def _check_condition(
    operation: str, condition: Any, old: _Item | None, params: Mapping[str, Any]
) -> None:
    if condition is None or _holds(condition, old):
        return
    fields: dict[str, Any] = {}
    if old is not None and _wants_old(params):
        fields["Item"] = _copy(old)
    raise _error(operation, "ConditionalCheckFailedException", _CONDITION_FAILED, **fields)


def _wants_old(params: Mapping[str, Any]) -> bool:
    return params.get("ReturnValuesOnConditionCheckFailure", "NONE") == "ALL_OLD"


def _apply_update(
    operation: str, actions: list[_Action], old: _Item | None, key: Mapping[str, Any]
) -> _Item:
    item = _copy(old) if old is not None else _copy(key)
    source = old or {}
    for action in actions:
        name = action.path.name
        if action.clause == "REMOVE":
            item.pop(name, None)
        elif action.clause == "ADD":
            ((kind, data),) = action.value.value.items()
            current = source.get(name)
            if kind != "N" or (current is not None and "N" not in current):
                raise UnsupportedExpression(f"{operation}: ADD of numbers only")
            total = _number(operation, data) + (
                _number(operation, current["N"]) if current else Decimal(0)
            )
            item[name] = {"N": _number_text(total)}
        else:
            item[name] = _evaluate(operation, action.value, source)
    return item


def _evaluate(operation: str, node: Any, item: Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(node, _Value):
        return _copy_value(node.value)
    if isinstance(node, _IfNotExists):
        present = item.get(node.path.name)
        return _copy_value(present if present is not None else node.default.value)
    if isinstance(node, _Sum):
        left, right = _evaluate(operation, node.left, item), _evaluate(operation, node.right, item)
        if "N" not in left or "N" not in right:
            raise _error(
                operation,
                "ValidationException",
                "An operand in the update expression has an incorrect data type",
            )
        total = _number(operation, left["N"]) + _number(operation, right["N"])
        return {"N": _number_text(total)}
    present = item.get(node.name)
    if present is None:
        raise _error(
            operation,
            "ValidationException",
            "The provided expression refers to an attribute that does not exist in the item",
        )
    return _copy_value(present)


def _updater(
    operation: str, table: _Table, actions: list[_Action], key: Mapping[str, Any]
) -> Callable[[_Item | None], _Item | None]:
    def apply(old: _Item | None) -> _Item | None:
        return _apply_update(operation, actions, old, key)

    return apply


def _replace_with(item: _Item | None) -> Callable[[_Item | None], _Item | None]:
    return lambda _old: item


def _unchanged(old: _Item | None) -> _Item | None:
    return old


def _project(item: _Item, projection: list[str] | None) -> _Item:
    if projection is None:
        return _copy(item)
    return {name: _copy_value(item[name]) for name in projection if name in item}


# --- requests and responses ---------------------------------------------------------------------


def _only(operation: str, params: Mapping[str, Any], supported: set[str]) -> None:
    if extra := sorted(set(params) - supported):
        raise UnsupportedExpression(
            f"{operation}: parameters {extra} are not modelled (the store does not use them)"
        )


def _return_values(operation: str, params: Mapping[str, Any], *, allowed: tuple[str, ...]) -> None:
    wanted = params.get("ReturnValues", "NONE")
    if wanted not in allowed:
        raise UnsupportedExpression(f"{operation}: ReturnValues={wanted} is not modelled")


def _no_index(index: str) -> str:
    return f"The table does not have the specified index: {index}"


@cache
def _paginator_config(operation: str) -> dict[str, Any]:
    import botocore.session

    model = botocore.session.get_session().get_paginator_model(_SERVICE)
    return dict(model.get_paginator(operation))


def _meta() -> dict[str, Any]:
    return {
        "ResponseMetadata": {
            "RequestId": wire.request_id(),
            "HTTPStatusCode": 200,
            "HTTPHeaders": {},
            "RetryAttempts": 0,
        }
    }


def _error(operation: str, code: str, message: str, **fields: Any) -> Exception:
    return wire.json_error(_SERVICE, operation, code, message, **fields)
