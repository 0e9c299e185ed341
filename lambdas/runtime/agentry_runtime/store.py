"""Single-table DynamoDB store of agents: one partition per agent, an append-only history.

Items of agent ``A`` (keys from ``contract``)::

    AGENT#A  META             the header: flat, camelCase, constant size, versioned
    AGENT#A  MSG#<seq>        one item per message, written once
    AGENT#A  TOOL#<toolUseId> one idempotency record per tool call
    AGENT#A  SUMMARY#<seq>    compaction summaries

A step commits in one ``TransactWriteItems`` conditional on the header version it read, and
writes only the header and the new items: bytes written per step never grow with the history.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import ClientError
from pydantic.alias_generators import to_camel, to_snake

from agentry_runtime import state
from agentry_runtime.contract import (
    MESSAGE_PREFIX,
    META_SK,
    PARTITION_KEY,
    SORT_KEY,
    SUMMARY_PREFIX,
    TOOL_PREFIX,
    TTL_ATTRIBUTE,
    HeaderAttr,
    agent_pk,
    message_sk,
    summary_sk,
    tool_sk,
)
from agentry_runtime.errors import (
    AgentExistsError,
    AgentNotFoundError,
    ItemTooLargeError,
    StaleStepError,
    StoreError,
)
from agentry_runtime.state import AgentHeader, Message, Summary, ToolCallStatus, ToolInvocation

__all__ = ["AgentStore", "item_size"]

# DynamoDB's hard limit on the size of one item (400 KB).
_DYNAMODB_ITEM_LIMIT = 400 * 1024
# TransactWriteItems accepts at most this many actions.
_MAX_TRANSACT_ACTIONS = 100
_MAX_PAGE_LIMIT = 1000
# A tool error is a diagnostic, not data: a few KB are enough.
_MAX_ERROR_BYTES = 4096
# Room for the truncation marker and the JSON quotes around a truncated result.
_MARKER_ROOM = 64
# What finishing a tool call adds besides the result and the error (names, status, finishedAt).
_FINISH_OVERHEAD = 256
# Upper bound of every message sort key: "~" sorts after every digit.
_MESSAGE_SK_END = f"{MESSAGE_PREFIX}~"
_CONDITION_FAILED = "ConditionalCheckFailed"
_ABSENT = f"attribute_not_exists({SORT_KEY})"

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

# Header field -> META attribute. camelCase gives exactly the HeaderAttr names the recovery state
# machine writes (status, step, version, nextStep, recoveryAttempts, updatedAt, publishedStep).
_HEADER_ATTRS: dict[str, str] = {name: to_camel(name) for name in AgentHeader.model_fields}
_HEADER_FIELDS: dict[str, str] = {attr: name for name, attr in _HEADER_ATTRS.items()}


class AgentStore:
    """Single-table DynamoDB store of agents: header, messages, tool calls, summaries."""

    def __init__(
        self,
        table_name: str,
        *,
        client: Any | None = None,
        max_item_bytes: int = 350_000,
        max_tool_result_chars: int = 200_000,
    ) -> None:
        if not 0 < max_item_bytes <= _DYNAMODB_ITEM_LIMIT:
            raise ValueError(
                f"max_item_bytes: must be between 1 and {_DYNAMODB_ITEM_LIMIT}, "
                f"got {max_item_bytes}"
            )
        if not 0 < max_tool_result_chars < max_item_bytes - _result_reserve(0):
            raise ValueError(
                "max_tool_result_chars: must be positive and leave room in an item of "
                f"max_item_bytes={max_item_bytes}, got {max_tool_result_chars}"
            )
        self.table_name = table_name
        self.max_item_bytes = max_item_bytes
        self.max_tool_result_chars = max_tool_result_chars
        self._client = client

    @property
    def client(self) -> Any:
        """The boto3 DynamoDB client (created on first use, with standard retries)."""
        if self._client is None:
            self._client = boto3.client(
                "dynamodb", config=Config(retries={"mode": "standard", "max_attempts": 5})
            )
        return self._client

    # --- header ---------------------------------------------------------------------------

    def create(self, header: AgentHeader, first_message: Message) -> None:
        """Write a new agent's header and first message in one transaction."""
        if first_message.seq != 0:
            raise ValueError(f"first_message.seq: must be 0, got {first_message.seq}")
        items = [
            (_header_to_item(header), f"attribute_not_exists({PARTITION_KEY})"),
            (_message_to_item(header.agent_id, first_message, header.ttl), _ABSENT),
        ]
        self._check_sizes(header.agent_id, [item for item, _ in items])
        self._transact(
            [self._put(item, ConditionExpression=condition) for item, condition in items],
            on_condition=lambda: AgentExistsError(header.agent_id),
        )

    def get_header(self, agent_id: str) -> AgentHeader:
        """The agent's header (consistent read); ``AgentNotFoundError`` if there is none."""
        header = self.find_header(agent_id)
        if header is None:
            raise AgentNotFoundError(agent_id)
        return header

    def find_header(self, agent_id: str) -> AgentHeader | None:
        """The agent's header (consistent read), or ``None``."""
        item = self._get(agent_id, META_SK)
        return None if item is None else _item_to_header(item)

    def update_header(self, expected_version: int, header: AgentHeader) -> AgentHeader:
        """Write only the header, if its version is still ``expected_version``; return it."""
        written = _next_version(expected_version, header)
        item = _header_to_item(written)
        self._check_sizes(header.agent_id, [item])
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=_serialize(item),
                **_version_condition(expected_version),
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                raise _stale(header.agent_id, expected_version) from exc
            raise
        return written

    def mark_published(self, agent_id: str, step: int) -> bool:
        """Record that step ``step``'s follow-up was published; ``False`` if the agent moved on."""
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=_key(agent_id, META_SK),
                UpdateExpression="SET #published = :step",
                ConditionExpression="#step = :step",
                ExpressionAttributeNames={
                    "#published": HeaderAttr.PUBLISHED_STEP.value,
                    "#step": HeaderAttr.STEP.value,
                },
                ExpressionAttributeValues={":step": {"N": str(step)}},
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    # --- step commit ----------------------------------------------------------------------

    def commit(
        self,
        expected_version: int,
        header: AgentHeader,
        *,
        messages: Sequence[Message] = (),
        tool_calls: Sequence[ToolInvocation] = (),
        summary: Summary | None = None,
    ) -> AgentHeader:
        """Commit one step atomically: the header (if still at ``expected_version``) and new items.

        Returns the header as written (version bumped, ``updated_at`` now).
        """
        agent_id = header.agent_id
        for index, call in enumerate(tool_calls):
            if call.agent_id != agent_id:
                raise ValueError(
                    f"tool_calls[{index}].agent_id: {call.agent_id!r} is not the header's "
                    f"{agent_id!r}"
                )
        written = _next_version(expected_version, header)
        meta = _header_to_item(written)
        new_items = [_message_to_item(agent_id, m, header.ttl) for m in messages]
        records = [_tool_to_item(call, header.ttl) for call in tool_calls]
        if summary is not None:
            new_items.append(_summary_to_item(agent_id, summary, header.ttl))
        if 1 + len(new_items) + len(records) > _MAX_TRANSACT_ACTIONS:
            raise StoreError(
                f"commit: {1 + len(new_items) + len(records)} items are more than one "
                f"transaction takes ({_MAX_TRANSACT_ACTIONS})"
            )
        self._check_sizes(agent_id, [meta, *new_items])
        # A tool record grows when its result lands: keep room for the largest result now, so
        # finishing the call can never push the item over the limit.
        self._check_sizes(agent_id, records, reserve=_result_reserve(self.max_tool_result_chars))

        actions = [self._put(meta, **_version_condition(expected_version))]
        # A summary has no condition of its own: the header's version already guards the step.
        actions += [
            self._put(item) if _is_summary(item) else self._put(item, ConditionExpression=_ABSENT)
            for item in new_items
        ]
        actions += [self._put(item, ConditionExpression=_ABSENT) for item in records]
        self._transact(actions, on_condition=lambda: _stale(agent_id, expected_version))
        return written

    # --- history --------------------------------------------------------------------------

    def messages(self, agent_id: str, *, after_seq: int = -1) -> list[Message]:
        """Every message with ``seq > after_seq``, in order (consistent read, all pages)."""
        if after_seq < -1:
            raise ValueError(f"after_seq: must be -1 or more, got {after_seq}")
        items = self._query(
            KeyConditionExpression="#pk = :pk AND #sk BETWEEN :from AND :to",
            ExpressionAttributeValues=_values(
                pk=agent_pk(agent_id), **{"from": message_sk(after_seq + 1), "to": _MESSAGE_SK_END}
            ),
        )
        return [_item_to_message(item) for item in items]

    def page_messages(
        self, agent_id: str, *, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[Message], str | None]:
        """One page of messages for the API, and the opaque cursor of the next (or ``None``)."""
        if not 1 <= limit <= _MAX_PAGE_LIMIT:
            raise ValueError(f"limit: must be between 1 and {_MAX_PAGE_LIMIT}, got {limit}")
        after_seq = -1 if cursor is None else _decode_cursor(cursor)
        # Ask for one more than the page: the extra item says whether another page exists.
        response = self.client.query(
            TableName=self.table_name,
            ConsistentRead=True,
            Limit=limit + 1,
            KeyConditionExpression="#pk = :pk AND #sk BETWEEN :from AND :to",
            ExpressionAttributeNames={"#pk": PARTITION_KEY, "#sk": SORT_KEY},
            ExpressionAttributeValues=_values(
                pk=agent_pk(agent_id), **{"from": message_sk(after_seq + 1), "to": _MESSAGE_SK_END}
            ),
        )
        page = [_item_to_message(_deserialize(item)) for item in response["Items"]]
        more = len(page) > limit or ("LastEvaluatedKey" in response and bool(page))
        page = page[:limit]
        return page, (_encode_cursor(page[-1].seq) if more else None)

    def latest_summary(self, agent_id: str) -> Summary | None:
        """The most recent compaction summary, or ``None``."""
        response = self.client.query(
            TableName=self.table_name,
            ConsistentRead=True,
            Limit=1,
            ScanIndexForward=False,
            KeyConditionExpression="#pk = :pk AND begins_with(#sk, :prefix)",
            ExpressionAttributeNames={"#pk": PARTITION_KEY, "#sk": SORT_KEY},
            ExpressionAttributeValues=_values(pk=agent_pk(agent_id), prefix=SUMMARY_PREFIX),
        )
        items = response["Items"]
        return _item_to_summary(_deserialize(items[0])) if items else None

    # --- tool calls -----------------------------------------------------------------------

    def get_tool_call(self, agent_id: str, tool_use_id: str) -> ToolInvocation | None:
        """The record of one tool call (consistent read), or ``None``."""
        item = self._get(agent_id, tool_sk(tool_use_id))
        return None if item is None else _item_to_tool(item)

    def tool_calls(self, agent_id: str) -> list[ToolInvocation]:
        """Every tool call record of the agent."""
        items = self._query(
            KeyConditionExpression="#pk = :pk AND begins_with(#sk, :prefix)",
            ExpressionAttributeValues=_values(pk=agent_pk(agent_id), prefix=TOOL_PREFIX),
        )
        return [_item_to_tool(item) for item in items]

    def claim_tool_call(
        self, agent_id: str, tool_use_id: str, *, lease_seconds: int
    ) -> ToolInvocation | None:
        """Lease a pending (or abandoned) tool call to this worker; ``None`` if it cannot be had.

        ``None`` means another worker holds a live lease, the call already finished, or there is
        no such record: read ``get_tool_call`` to reuse a finished result.
        """
        if lease_seconds < 1:
            raise ValueError(f"lease_seconds: must be 1 or more, got {lease_seconds}")
        now = state.utcnow()
        try:
            response = self.client.update_item(
                TableName=self.table_name,
                Key=_key(agent_id, tool_sk(tool_use_id)),
                UpdateExpression="SET #status = :claimed, #lease = :until ADD #attempts :one",
                ConditionExpression=(
                    "#status = :pending OR (#status = :claimed AND #lease < :now)"
                ),
                ExpressionAttributeNames={
                    "#status": "status",
                    "#lease": "leaseUntil",
                    "#attempts": "attempts",
                },
                ExpressionAttributeValues=_values(
                    claimed=ToolCallStatus.IN_PROGRESS.value,
                    pending=ToolCallStatus.PENDING.value,
                    until=_epoch(now + timedelta(seconds=lease_seconds)),
                    now=_epoch(now),
                    one=1,
                ),
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return None
            raise
        return _item_to_tool(_deserialize(response["Attributes"]))

    def finish_tool_call(
        self,
        agent_id: str,
        tool_use_id: str,
        *,
        succeeded: bool,
        result: dict[str, Any] | str | None,
        error: str | None,
    ) -> ToolInvocation:
        """Record the outcome of a claimed tool call; a too-long result is truncated.

        Raises ``StaleStepError`` if the call is no longer ``IN_PROGRESS`` (the lease was lost).
        """
        status = ToolCallStatus.SUCCEEDED if succeeded else ToolCallStatus.FAILED
        sets = ["#status = :status", "#finishedAt = :now"]
        removes = []
        values: dict[str, Any] = {
            "status": status.value,
            "now": _iso(state.utcnow()),
            "claimed": ToolCallStatus.IN_PROGRESS.value,
        }
        if result is None:
            removes.append("#result")
        else:
            sets.append("#result = :result")
            values["result"] = _bounded_json(result, self.max_tool_result_chars)
        if error is None:
            removes.append("#error")
        else:
            sets.append("#error = :error")
            values["error"] = _bounded_text(error, _MAX_ERROR_BYTES)
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        try:
            response = self.client.update_item(
                TableName=self.table_name,
                Key=_key(agent_id, tool_sk(tool_use_id)),
                UpdateExpression=expression,
                ConditionExpression="#status = :claimed",
                ExpressionAttributeNames={
                    "#status": "status",
                    "#finishedAt": "finishedAt",
                    "#result": "result",
                    "#error": "error",
                },
                ExpressionAttributeValues=_values(**values),
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                raise StaleStepError(
                    f"tool call {tool_use_id!r} of agent {agent_id!r}: status is not "
                    "IN_PROGRESS (its lease went to another worker, or it already finished)"
                ) from exc
            raise
        return _item_to_tool(_deserialize(response["Attributes"]))

    def renew_expiry(self, agent_id: str, ttl: int) -> int:
        """Push the TTL of every item of the agent out to ``ttl``; how many items were renewed.

        Costs a write per item, which is why only a human's follow-up does it. An item deleted
        meanwhile is not brought back (the update is conditional on the item existing).
        """
        renewed = 0
        for item in self._query(
            KeyConditionExpression="#pk = :pk",
            ExpressionAttributeValues=_values(pk=agent_pk(agent_id)),
            ProjectionExpression="#pk, #sk",
        ):
            try:
                self.client.update_item(
                    TableName=self.table_name,
                    Key=_key(agent_id, item[SORT_KEY]),
                    UpdateExpression="SET #ttl = :ttl",
                    ConditionExpression="attribute_exists(#pk)",
                    ExpressionAttributeNames={"#ttl": TTL_ATTRIBUTE, "#pk": PARTITION_KEY},
                    ExpressionAttributeValues={":ttl": {"N": str(ttl)}},
                )
            except ClientError as exc:
                if _code(exc) != "ConditionalCheckFailedException":
                    raise
                continue
            renewed += 1
        return renewed

    # --- invariants -----------------------------------------------------------------------

    def item_count(self, agent_id: str) -> dict[str, int]:
        """How many items of each kind the agent has: META, MSG, TOOL, SUMMARY, and any other
        prefix a toolset writes under the agent's partition."""
        prefixes = (MESSAGE_PREFIX, TOOL_PREFIX, SUMMARY_PREFIX)
        counts = dict.fromkeys([META_SK, *(p.rstrip("#") for p in prefixes)], 0)
        for item in self._query(
            KeyConditionExpression="#pk = :pk",
            ExpressionAttributeValues=_values(pk=agent_pk(agent_id)),
            ProjectionExpression="#sk",
        ):
            kind = item[SORT_KEY].split("#", 1)[0]
            counts[kind] = counts.get(kind, 0) + 1
        return counts

    # --- private --------------------------------------------------------------------------

    def _get(self, agent_id: str, sk: str) -> dict[str, Any] | None:
        response = self.client.get_item(
            TableName=self.table_name, Key=_key(agent_id, sk), ConsistentRead=True
        )
        item = response.get("Item")
        return None if item is None else _deserialize(item)

    def _query(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Every item of one partition query, following ``LastEvaluatedKey`` page by page."""
        names = {"#pk": PARTITION_KEY, "#sk": SORT_KEY}
        paginator = self.client.get_paginator("query")
        for page in paginator.paginate(
            TableName=self.table_name,
            ConsistentRead=True,
            ExpressionAttributeNames=names,
            **kwargs,
        ):
            for item in page["Items"]:
                yield _deserialize(item)

    def _put(self, item: dict[str, Any], **condition: Any) -> dict[str, Any]:
        """A ``Put`` action of a transaction; ``condition`` holds its expression parameters."""
        return {"Put": {"TableName": self.table_name, "Item": _serialize(item), **condition}}

    def _transact(
        self, actions: list[dict[str, Any]], *, on_condition: Callable[[], StoreError]
    ) -> None:
        """Run one transaction; a failed condition becomes ``on_condition()``'s error."""
        try:
            self.client.transact_write_items(TransactItems=actions)
        except ClientError as exc:
            if _code(exc) != "TransactionCanceledException":
                raise
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if _CONDITION_FAILED in reasons:
                raise on_condition() from exc
            raise StoreError(f"transaction cancelled: {reasons}") from exc

    def _check_sizes(
        self, agent_id: str, items: Sequence[dict[str, Any]], *, reserve: int = 0
    ) -> None:
        for item in items:
            size = item_size(_serialize(item)) + reserve
            if size > self.max_item_bytes:
                room = f" (with {reserve} bytes kept for its result)" if reserve else ""
                raise ItemTooLargeError(
                    f"item {item[SORT_KEY]} of agent {agent_id!r}: {size} bytes{room} is over "
                    f"the limit of {self.max_item_bytes} bytes"
                )


# --- item sizes ---------------------------------------------------------------------------------


def item_size(item: Mapping[str, Any]) -> int:
    """Size in bytes of a serialized (low-level) item, as DynamoDB counts it; never under."""
    # Hand-written: boto3 has no size calculator. Rules from DynamoDB's "Item sizes and formats".
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: Mapping[str, Any]) -> int:
    ((kind, data),) = value.items()
    if kind == "S":
        return len(data.encode())
    if kind == "N":
        return _number_size(data)
    if kind == "B":
        return len(bytes(data))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in data)
    if kind == "NS":
        return sum(_number_size(n) for n in data)
    if kind == "BS":
        return sum(len(bytes(b)) for b in data)
    # A list or map costs 3 bytes, plus 1 byte per element and the elements (and map keys).
    if kind == "L":
        return 3 + sum(1 + _value_size(v) for v in data)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + _value_size(v) for k, v in data.items())
    raise ValueError(f"item: unknown attribute type {kind!r}")


def _number_size(text: str) -> int:
    # One byte per two significant digits plus one; one more for a sign, to stay on the safe side.
    mantissa = text.lower().split("e", 1)[0]
    digits = mantissa.replace("-", "").replace("+", "").replace(".", "").strip("0") or "0"
    return min(21, (len(digits) + 1) // 2 + 1 + (1 if text.startswith("-") else 0))


def _result_reserve(max_result_chars: int) -> int:
    return max_result_chars + _MARKER_ROOM + _MAX_ERROR_BYTES + _FINISH_OVERHEAD


# --- items <-> models ---------------------------------------------------------------------------


def _header_to_item(header: AgentHeader) -> dict[str, Any]:
    item: dict[str, Any] = {PARTITION_KEY: agent_pk(header.agent_id), SORT_KEY: META_SK}
    for name, value in header.model_dump(exclude_none=True).items():
        item[_HEADER_ATTRS[name]] = _attr(value)
    if header.last_error is not None:
        # Denormalised to the top level: the recovery state machine writes it there, too.
        item[HeaderAttr.LAST_ERROR_TYPE.value] = header.last_error.error_type.value
    return item


def _item_to_header(item: Mapping[str, Any]) -> AgentHeader:
    data: dict[str, Any] = {}
    for attr, value in item.items():
        name = _HEADER_FIELDS.get(attr)
        if name is None or value is None:
            continue
        data[name] = _snake_keys(value) if isinstance(value, dict) else value
    # An absent or NULL nextStep means "no step awaited", not the model's default (plan).
    data.setdefault("next_step", None)
    return AgentHeader.model_validate(data)


def _message_to_item(agent_id: str, message: Message, ttl: int | None) -> dict[str, Any]:
    item = {
        PARTITION_KEY: agent_pk(agent_id),
        SORT_KEY: message_sk(message.seq),
        "seq": message.seq,
        "role": message.role,
        "step": message.step,
        "createdAt": _iso(message.created_at),
        # A JSON string, not a map: tool inputs hold floats, which DynamoDB numbers would turn
        # into Decimals; JSON round-trips them exactly.
        "content": _json(message.to_converse()["content"]),
    }
    if message.usage is not None:
        item["usage"] = _attr(message.usage.model_dump())
    return _with_ttl(item, ttl)


def _item_to_message(item: Mapping[str, Any]) -> Message:
    return Message.model_validate(
        {
            "seq": item["seq"],
            "role": item["role"],
            "step": item["step"],
            "created_at": item["createdAt"],
            "content": json.loads(item["content"]),
            "usage": _snake_keys(item["usage"]) if "usage" in item else None,
        }
    )


def _tool_to_item(call: ToolInvocation, ttl: int | None) -> dict[str, Any]:
    item: dict[str, Any] = {
        PARTITION_KEY: agent_pk(call.agent_id),
        SORT_KEY: tool_sk(call.tool_use_id),
        "agentId": call.agent_id,
        "toolUseId": call.tool_use_id,
        "name": call.name,
        "input": _json(call.input),
        "step": call.step,
        "status": call.status.value,
        "attempts": call.attempts,
        "createdAt": _iso(call.created_at),
    }
    optional = {
        "result": None if call.result is None else _json(call.result),
        "error": call.error,
        "leaseUntil": None if call.lease_until is None else _epoch(call.lease_until),
        "finishedAt": None if call.finished_at is None else _iso(call.finished_at),
    }
    item.update({k: v for k, v in optional.items() if v is not None})
    return _with_ttl(item, ttl)


def _item_to_tool(item: Mapping[str, Any]) -> ToolInvocation:
    lease = item.get("leaseUntil")
    return ToolInvocation.model_validate(
        {
            "agent_id": item["agentId"],
            "tool_use_id": item["toolUseId"],
            "name": item["name"],
            "input": json.loads(item["input"]),
            "step": item["step"],
            "status": item["status"],
            "result": json.loads(item["result"]) if item.get("result") is not None else None,
            "error": item.get("error"),
            "lease_until": None if lease is None else datetime.fromtimestamp(lease, UTC),
            "attempts": item.get("attempts", 0),
            "created_at": item["createdAt"],
            "finished_at": item.get("finishedAt"),
        }
    )


def _summary_to_item(agent_id: str, summary: Summary, ttl: int | None) -> dict[str, Any]:
    item = {
        PARTITION_KEY: agent_pk(agent_id),
        SORT_KEY: summary_sk(summary.upto_seq),
        "uptoSeq": summary.upto_seq,
        "text": summary.text,
        "createdAt": _iso(summary.created_at),
    }
    return _with_ttl(item, ttl)


def _item_to_summary(item: Mapping[str, Any]) -> Summary:
    return Summary(upto_seq=item["uptoSeq"], text=item["text"], created_at=item["createdAt"])


def _is_summary(item: Mapping[str, Any]) -> bool:
    return str(item[SORT_KEY]).startswith(SUMMARY_PREFIX)


# --- small helpers ------------------------------------------------------------------------------


def _next_version(expected_version: int, header: AgentHeader) -> AgentHeader:
    return header.model_copy(update={"version": expected_version + 1, "updated_at": state.utcnow()})


def _version_condition(expected_version: int) -> dict[str, Any]:
    return {
        "ConditionExpression": "#version = :expected",
        "ExpressionAttributeNames": {"#version": HeaderAttr.VERSION.value},
        "ExpressionAttributeValues": {":expected": {"N": str(expected_version)}},
    }


def _stale(agent_id: str, expected_version: int) -> StaleStepError:
    return StaleStepError(
        f"agent {agent_id!r}: header version is no longer {expected_version} "
        "(another writer committed first, or the agent does not exist)"
    )


def _key(agent_id: str, sk: str) -> dict[str, Any]:
    return {PARTITION_KEY: {"S": agent_pk(agent_id)}, SORT_KEY: {"S": sk}}


def _values(**values: Any) -> dict[str, Any]:
    return {f":{name}": _serializer.serialize(value) for name, value in values.items()}


def _serialize(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _serializer.serialize(value) for name, value in item.items()}


def _deserialize(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _plain(_deserializer.deserialize(value)) for name, value in item.items()}


def _plain(value: Any) -> Any:
    """Python value of a deserialized attribute: Decimals become int (or float) again."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _attr(value: Any) -> Any:
    """A model value as a header attribute: ISO-8601 times, enum values, camelCase map keys."""
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {to_camel(k): _attr(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_attr(v) for v in value]
    return value


def _snake_keys(value: dict[str, Any]) -> dict[str, Any]:
    return {to_snake(k): v for k, v in value.items()}


def _with_ttl(item: dict[str, Any], ttl: int | None) -> dict[str, Any]:
    if ttl is not None:
        item[TTL_ATTRIBUTE] = ttl
    return item


def _iso(moment: datetime) -> str:
    # Fixed width (always microseconds, always +00:00) so equal histories give equal sizes.
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _epoch(moment: datetime) -> Decimal:
    # DynamoDB numbers must be Decimals (the serializer rejects floats); microsecond precision.
    return Decimal(int(moment.timestamp() * 1_000_000)) / Decimal(1_000_000)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _bounded_json(value: dict[str, Any] | str, limit: int) -> str:
    """JSON text of ``value``, at most ``limit`` plus a small marker room in bytes.

    A longer value becomes a string: the head of its JSON text and ``...[truncated N chars]``.
    """
    # ensure_ascii: one character is one byte, so a limit in characters also bounds bytes.
    text = json.dumps(value, separators=(",", ":"))
    if len(text) <= limit:
        return text
    keep = limit
    while True:
        stored = json.dumps(f"{text[:keep]}...[truncated {len(text) - keep} chars]")
        # Encoding the cut text escapes its quotes and backslashes: cut more until it fits.
        over = len(stored) - (limit + _MARKER_ROOM)
        if over <= 0 or keep == 0:
            return stored
        keep = max(0, keep - over)


def _bounded_text(text: str, max_bytes: int) -> str:
    encoded = text.encode()
    if len(encoded) <= max_bytes:
        return text
    head = encoded[: max_bytes - _MARKER_ROOM].decode(errors="ignore")
    return f"{head}...[truncated {len(text) - len(head)} chars]"


def _encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(str(seq).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        seq = int(base64.b64decode(padded, altchars=b"-_", validate=True).decode("ascii"))
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise ValueError(f"cursor: not a cursor this API returned ({exc})") from exc
    if seq < 0 or _encode_cursor(seq) != cursor:
        raise ValueError("cursor: not a cursor this API returned")
    return seq


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
