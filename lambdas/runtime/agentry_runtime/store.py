"""Single-table DynamoDB store of agents: one partition per agent, items written once.

Items of agent ``A`` (keys from ``contract``)::

    AGENT#A  META                       the header: small, fixed size, versioned (commit point)
    AGENT#A  INFO                       goal, definition, model, owner: written once
    AGENT#A  MSG#<seq>                  one item per message (a tool's outcome is one, too)
    AGENT#A  TOOL#<turn>#<toolUseId>    the claim (lease) of one tool call
    AGENT#A  SUMMARY#<seq>              compaction summaries

A step writes its new items first, each conditionally, and its header last, conditional on the
version it read: the header is the commit point, and an item past the header's counts is not
part of the conversation until a header counts it. No step needs a transaction, so no step pays
a transaction's double write units; the first item of a step doubles as its lock (a second
worker on the same step finds it and reuses its decision instead of making another).

Every DynamoDB error is translated once, in :func:`_dynamodb_errors`, into the runtime's own.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError
from pydantic.alias_generators import to_camel

from agentry_runtime import state
from agentry_runtime.contract import (
    INFO_SK,
    MESSAGE_PREFIX,
    META_SK,
    PARTITION_KEY,
    SCHEMA_VERSION,
    SORT_KEY,
    SUMMARY_PREFIX,
    TERMINAL,
    TOOL_PREFIX,
    TTL_ATTRIBUTE,
    HeaderAttr,
    Index,
    agent_pk,
    announce_sk,
    message_sk,
    summary_sk,
    tool_sk,
)
from agentry_runtime.errors import (
    AgentExistsError,
    AgentNotFoundError,
    ConditionFailedError,
    CorruptItemError,
    ItemTooLargeError,
    StaleStepError,
    StoreError,
    StoreThrottledError,
    StoreUnavailableError,
)
from agentry_runtime.state import (
    AgentHeader,
    AgentInfo,
    ClaimStatus,
    Message,
    Status,
    Summary,
    ToolClaim,
)

__all__ = ["AgentStore", "History", "header_from_image", "item_size"]

# DynamoDB's hard limit on the size of one item (400 KB).
_DYNAMODB_ITEM_LIMIT = 400 * 1024
_MAX_PAGE_LIMIT = 1000
# Upper bound of every message sort key: "~" sorts after every digit.
_MESSAGE_SK_END = f"{MESSAGE_PREFIX}~"
_THROTTLED = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
}

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

# Header field -> META attribute: camelCase gives exactly the HeaderAttr names.
_HEADER_ATTRS: dict[str, str] = {name: to_camel(name) for name in AgentHeader.model_fields}
_HEADER_FIELDS: dict[str, str] = {attr: name for name, attr in _HEADER_ATTRS.items()}


class History:
    """What a plan step reads: the latest summary, the messages after it, and what it cost."""

    def __init__(
        self,
        summary: Summary | None,
        messages: list[Message],
        strong: bool,
        ahead: list[Message] | None = None,
    ) -> None:
        self.summary = summary
        self.messages = messages
        #: Whether a strongly consistent read was needed (the eventual one was incomplete).
        self.strong = strong
        #: Messages already past the header's count: written by steps whose header was never
        #: written (a chain whose worker died, a concurrent delivery), in order.
        self.ahead = ahead or []


class AgentStore:
    """Single-table DynamoDB store of agents (see the module doc)."""

    def __init__(
        self,
        table_name: str,
        *,
        client: Any | None = None,
        max_item_bytes: int = 350_000,
    ) -> None:
        if not 0 < max_item_bytes <= _DYNAMODB_ITEM_LIMIT:
            raise ValueError(
                f"max_item_bytes: must be between 1 and {_DYNAMODB_ITEM_LIMIT}, "
                f"got {max_item_bytes}"
            )
        self.table_name = table_name
        self.max_item_bytes = max_item_bytes
        self._client = client

    @property
    def client(self) -> Any:
        """The boto3 DynamoDB client (created on first use, with standard retries)."""
        if self._client is None:
            self._client = boto3.client(
                "dynamodb", config=Config(retries={"mode": "standard", "max_attempts": 5})
            )
        return self._client

    # --- agents ---------------------------------------------------------------------------

    def create(self, header: AgentHeader, info: AgentInfo, first: Message) -> None:
        """Write a new agent's header, info and first message in one transaction."""
        if first.seq != 0:
            raise ValueError(f"first.seq: must be 0, got {first.seq}")
        items = [
            _header_to_item(header),
            _info_to_item(info, header.ttl),
            _message_to_item(header.agent_id, first, header.ttl),
        ]
        self._check_sizes(header.agent_id, items)
        try:
            self._call(
                "transact_write_items",
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.table_name,
                            "Item": _serialize(item),
                            "ConditionExpression": f"attribute_not_exists({SORT_KEY})",
                        }
                    }
                    for item in items
                ],
            )
        except ConditionFailedError as exc:
            raise AgentExistsError(header.agent_id) from exc
        except (StoreThrottledError, StoreUnavailableError):
            # An attempt whose answer was lost may have landed before the client's retries gave
            # up. The id is this call's own, so a header with this creation time proves the
            # transaction landed: report success, or an idempotent client's retry would create
            # a second agent.
            landed = self.find_header(header.agent_id)
            if landed is None or landed.created_at != header.created_at:
                raise

    def find_header(self, agent_id: str, *, consistent: bool = True) -> AgentHeader | None:
        """The agent's header, or ``None``."""
        item = self._get(agent_id, META_SK, consistent=consistent)
        return None if item is None else _item_to_header(item)

    def get_header(self, agent_id: str) -> AgentHeader:
        """The agent's header (consistent read); ``AgentNotFoundError`` if there is none."""
        header = self.find_header(agent_id)
        if header is None:
            raise AgentNotFoundError(agent_id)
        return header

    def get_info(self, agent_id: str) -> AgentInfo:
        """The agent's info item (written once, so an eventually consistent read will do)."""
        item = self._get(agent_id, INFO_SK, consistent=False) or self._get(agent_id, INFO_SK)
        if item is None:
            raise AgentNotFoundError(agent_id)
        return _item_to_info(item)

    def commit(self, expected_version: int, header: AgentHeader) -> AgentHeader:
        """Write the header if its version is still ``expected_version``: a step's commit point.

        Returns the header as written (version bumped, ``updated_at`` now); raises
        ``StaleStepError`` if another writer committed first.
        """
        written = _next_version(expected_version, header)
        item = _header_to_item(written)
        self._check_sizes(header.agent_id, [item])
        try:
            self._call(
                "put_item",
                TableName=self.table_name,
                Item=_serialize(item),
                **_version_condition(expected_version),
            )
        except ConditionFailedError as exc:
            raise _stale(header.agent_id, expected_version) from exc
        return written

    def commit_with_messages(
        self,
        expected_version: int,
        header: AgentHeader,
        messages: Sequence[Message],
        *,
        info: Mapping[str, str] | None = None,
    ) -> AgentHeader:
        """The header and a person's messages, atomically (resume, follow-up, approvals,
        cancel); ``info`` sets string attributes of the info item in the same transaction
        (who cancelled, and when).

        These writes come from the API, where a half-written request must leave nothing
        behind, so they use a transaction; steps do not need one (see the module doc).
        """
        written = _next_version(expected_version, header)
        meta = _header_to_item(written)
        items = [_message_to_item(header.agent_id, m, header.ttl) for m in messages]
        self._check_sizes(header.agent_id, [meta, *items])
        info_actions = []
        if info:
            names = {f"#i{index}": name for index, name in enumerate(info)}
            info_actions.append(
                {
                    "Update": {
                        "TableName": self.table_name,
                        "Key": _key(header.agent_id, INFO_SK),
                        "UpdateExpression": "SET "
                        + ", ".join(f"{name} = :i{name[2:]}" for name in names),
                        "ConditionExpression": f"attribute_exists({SORT_KEY})",
                        "ExpressionAttributeNames": names,
                        "ExpressionAttributeValues": {
                            f":i{index}": {"S": value} for index, value in enumerate(info.values())
                        },
                    }
                }
            )
        actions = [
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": _serialize(meta),
                    **_version_condition(expected_version),
                }
            },
            *(
                {
                    "Put": {
                        "TableName": self.table_name,
                        "Item": _serialize(item),
                        **_newer_step_condition(int(item["step"])),
                    }
                }
                for item in items
            ),
            *info_actions,
        ]
        try:
            self._call("transact_write_items", TransactItems=actions)
        except ConditionFailedError as exc:
            raise _stale(header.agent_id, expected_version) from exc
        return written

    def bump_nonce(self, agent_id: str, expected_version: int) -> AgentHeader | None:
        """Ask for the current step to be announced again; ``None`` if the agent moved on.

        Neither the version nor the step changes, so a worker running the step meanwhile
        commits undisturbed; only the announcer notices the new nonce.
        """
        try:
            response = self._call(
                "update_item",
                TableName=self.table_name,
                Key=_key(agent_id, META_SK),
                UpdateExpression="SET #nonce = if_not_exists(#nonce, :zero) + :one, "
                "#updatedAt = :now",
                ConditionExpression="#version = :version",
                ExpressionAttributeNames={
                    "#nonce": HeaderAttr.NONCE.value,
                    "#updatedAt": HeaderAttr.UPDATED_AT.value,
                    "#version": HeaderAttr.VERSION.value,
                },
                ExpressionAttributeValues={
                    ":zero": {"N": "0"},
                    ":one": {"N": "1"},
                    ":now": {"S": _iso(state.utcnow())},
                    ":version": {"N": str(expected_version)},
                },
                ReturnValues="ALL_NEW",
            )
        except ConditionFailedError:
            return None
        return _item_to_header(_deserialize(response["Attributes"]))

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
                self._call(
                    "update_item",
                    TableName=self.table_name,
                    Key=_key(agent_id, item[SORT_KEY]),
                    UpdateExpression="SET #ttl = :ttl",
                    ConditionExpression="attribute_exists(#pk)",
                    ExpressionAttributeNames={"#ttl": TTL_ATTRIBUTE, "#pk": PARTITION_KEY},
                    ExpressionAttributeValues={":ttl": {"N": str(ttl)}},
                )
            except ConditionFailedError:
                continue
            renewed += 1
        return renewed

    def delete_agent(self, agent_id: str) -> int:
        """Delete every item of the agent, header last; how many items were deleted."""
        keys = [
            item[SORT_KEY]
            for item in self._query(
                KeyConditionExpression="#pk = :pk",
                ExpressionAttributeValues=_values(pk=agent_pk(agent_id)),
                ProjectionExpression="#pk, #sk",
            )
        ]
        # The header goes last: until then the agent is still visible, and a retry finds it.
        ordered = sorted(keys, key=lambda sk: sk == META_SK)
        for start in range(0, len(ordered), 25):
            requests = [
                {"DeleteRequest": {"Key": _key(agent_id, sk)}} for sk in ordered[start : start + 25]
            ]
            pending: dict[str, Any] = {self.table_name: requests}
            for attempt in range(8):
                response = self._call("batch_write_item", RequestItems=pending)
                pending = response.get("UnprocessedItems") or {}
                if not pending:
                    break
                time.sleep(min(1.0, 0.05 * 2**attempt))  # unprocessed items: throttled
            else:
                raise StoreThrottledError(f"agent {agent_id!r}: deletes stayed throttled")
        return len(ordered)

    # --- messages -------------------------------------------------------------------------

    def put_step_message(self, agent_id: str, message: Message, ttl: int | None) -> Message | None:
        """Write a message of a step; ``None`` if written, else the message already there.

        The write succeeds over nothing, or over an orphan of an earlier step (written past a
        header that was never committed); a message of the same or a later step wins, and is
        returned so the caller can reuse it (or find that its step is stale).
        """
        item = _message_to_item(agent_id, message, ttl)
        self._check_sizes(agent_id, [item])
        try:
            self._call(
                "put_item",
                TableName=self.table_name,
                Item=_serialize(item),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **_newer_step_condition(message.step),
            )
        except ConditionFailedError as exc:
            existing = exc.item or self._get(agent_id, message_sk(message.seq))
            if existing is None:  # deleted meanwhile (the agent was deleted): nothing to reuse
                raise StoreError(f"message {message.seq} of agent {agent_id!r} vanished") from exc
            return _item_to_message(existing)
        return None

    def message_size(self, agent_id: str, message: Message, ttl: int | None) -> int:
        """The size DynamoDB would count for ``message``'s item."""
        return item_size(_serialize(_message_to_item(agent_id, message, ttl)))

    def get_message(self, agent_id: str, seq: int, *, consistent: bool = False) -> Message | None:
        """One message (eventually consistent unless asked), or ``None``."""
        item = self._get(agent_id, message_sk(seq), consistent=consistent)
        return None if item is None else _item_to_message(item)

    def messages(
        self, agent_id: str, *, first: int = 0, last: int | None = None, consistent: bool = True
    ) -> list[Message]:
        """Messages ``first..last`` (inclusive; to the end if ``last`` is None), in order."""
        if first < 0:
            raise ValueError(f"first: must be 0 or more, got {first}")
        end = _MESSAGE_SK_END if last is None else message_sk(last)
        items = self._query(
            KeyConditionExpression="#pk = :pk AND #sk BETWEEN :from AND :to",
            ExpressionAttributeValues=_values(
                pk=agent_pk(agent_id), **{"from": message_sk(first), "to": end}
            ),
            ConsistentRead=consistent,
        )
        return [_item_to_message(item) for item in items]

    def history(self, header: AgentHeader) -> History:
        """What a plan step reads: the latest summary and the messages the header counts after it.

        Both are read eventually consistently (half the read units); the messages must then be
        exactly ``summary+1 .. message_count-1``, contiguous, each turn's calls answered by the
        results that follow it and by no others. If they are not (a write not yet visible, or
        an older version of a message a later step overwrote), both are read again strongly.
        The same query also returns the messages past ``message_count`` if any are there
        already (``History.ahead``): it costs nothing when there are none.
        """
        agent_id = header.agent_id
        first = header.summary_upto_seq + 1
        last = header.message_count - 1
        for consistent in (False, True):
            summary = None
            if header.summary_upto_seq >= 0:
                item = self._get(
                    agent_id, summary_sk(header.summary_upto_seq), consistent=consistent
                )
                if item is None:
                    continue
                summary = _item_to_summary(item)
            read = self.messages(agent_id, first=first, consistent=consistent)
            messages = [m for m in read if m.seq <= last]
            ahead = [m for m in read if m.seq > last]
            if [m.seq for m in messages] == list(range(first, last + 1)) and (
                consistent or _paired(messages)
            ):
                return History(summary, messages, strong=consistent, ahead=ahead)
        raise CorruptItemError(
            f"agent {agent_id!r}: the header counts messages {first}..{last} "
            "that a strongly consistent read does not find"
        )

    def page_messages(
        self, agent_id: str, *, limit: int = 50, cursor: str | None = None, upto: int | None = None
    ) -> tuple[list[Message], str | None]:
        """One page of messages for the API (at most ``upto``), and the next cursor or ``None``."""
        if not 1 <= limit <= _MAX_PAGE_LIMIT:
            raise ValueError(f"limit: must be between 1 and {_MAX_PAGE_LIMIT}, got {limit}")
        after_seq = -1 if cursor is None else _decode_cursor(cursor)
        end = _MESSAGE_SK_END if upto is None else message_sk(upto)
        # Ask for one more than the page: the extra item says whether another page exists.
        response = self._call(
            "query",
            TableName=self.table_name,
            ConsistentRead=True,
            Limit=limit + 1,
            KeyConditionExpression="#pk = :pk AND #sk BETWEEN :from AND :to",
            ExpressionAttributeNames={"#pk": PARTITION_KEY, "#sk": SORT_KEY},
            ExpressionAttributeValues=_values(
                pk=agent_pk(agent_id), **{"from": message_sk(after_seq + 1), "to": end}
            ),
        )
        page = [_item_to_message(_deserialize(item)) for item in response["Items"]]
        more = len(page) > limit or ("LastEvaluatedKey" in response and bool(page))
        page = page[:limit]
        return page, (_encode_cursor(page[-1].seq) if more else None)

    # --- summaries ------------------------------------------------------------------------

    def put_summary(self, agent_id: str, summary: Summary, ttl: int | None) -> None:
        """Write a compaction summary (before the header that counts it)."""
        item = _summary_to_item(agent_id, summary, ttl)
        self._check_sizes(agent_id, [item])
        self._call("put_item", TableName=self.table_name, Item=_serialize(item))

    # --- tool calls -----------------------------------------------------------------------

    def claim_tool(self, claim: ToolClaim, *, ttl: int | None) -> ToolClaim | None:
        """Take a tool call: create its claim, or take an approved one; ``None`` if taken.

        Returns the claim as written; ``None`` means another record is there (a live or dead
        claim, or a rejection): read it with :meth:`get_claim`.
        """
        item = _claim_to_item(claim, ttl)
        names = {"#sk": SORT_KEY, "#status": "status"}
        assignments = []
        values: dict[str, Any] = {":approved": {"S": ClaimStatus.APPROVED.value}}
        for index, (name, value) in enumerate(sorted(item.items())):
            if name in (PARTITION_KEY, SORT_KEY):
                continue
            names[f"#a{index}"] = name
            values[f":v{index}"] = _serializer.serialize(value)
            assignments.append(f"#a{index} = :v{index}")
        try:
            self._call(
                "update_item",
                TableName=self.table_name,
                Key=_key(claim.agent_id, item[SORT_KEY]),
                UpdateExpression="SET " + ", ".join(assignments),
                ConditionExpression="attribute_not_exists(#sk) OR #status = :approved",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ConditionFailedError:
            return None
        return claim

    def get_claim(self, agent_id: str, turn_seq: int, tool_use_id: str) -> ToolClaim | None:
        """The claim record of one tool call (consistent read), or ``None``."""
        item = self._get(agent_id, tool_sk(turn_seq, tool_use_id))
        return None if item is None else _item_to_claim(item)

    def claims(self, agent_id: str, turn_seq: int) -> list[ToolClaim]:
        """Every claim record of one assistant turn's tool calls."""
        items = self._query(
            KeyConditionExpression="#pk = :pk AND begins_with(#sk, :prefix)",
            ExpressionAttributeValues=_values(pk=agent_pk(agent_id), prefix=tool_sk(turn_seq, "")),
        )
        return [_item_to_claim(item) for item in items]

    def record_decision(self, claim: ToolClaim, *, ttl: int | None) -> bool:
        """Record a person's approval or rejection of a call not yet claimed; ``False`` if it
        was already decided or taken."""
        item = _claim_to_item(claim, ttl)
        self._check_sizes(claim.agent_id, [item])
        try:
            self._call(
                "put_item",
                TableName=self.table_name,
                Item=_serialize(item),
                ConditionExpression=f"attribute_not_exists({SORT_KEY})",
            )
        except ConditionFailedError:
            return False
        return True

    def withhold(self, claim: ToolClaim, *, ttl: int | None) -> bool:
        """Record ``claim`` (a rejection) over nothing or over an approval no worker took, so
        the call can never be claimed; ``False`` if a worker took it, or it was rejected."""
        item = _claim_to_item(claim, ttl)
        self._check_sizes(claim.agent_id, [item])
        try:
            self._call(
                "put_item",
                TableName=self.table_name,
                Item=_serialize(item),
                # What claim_tool can take, exactly: nothing, or an approval.
                ConditionExpression="attribute_not_exists(#sk) OR #status = :approved",
                ExpressionAttributeNames={"#sk": SORT_KEY, "#status": "status"},
                ExpressionAttributeValues={":approved": {"S": ClaimStatus.APPROVED.value}},
            )
        except ConditionFailedError:
            return False
        return True

    # --- announcements --------------------------------------------------------------------

    def claim_announcement(
        self,
        agent_id: str,
        version: int,
        nonce: int,
        *,
        lease_seconds: float,
        ttl: int,
        owner: str = "",
    ) -> bool | None:
        """Take the right to announce header ``version``'s lifecycle event (at ``nonce``).

        ``True``: this caller announces it (then calls :meth:`finish_announcement`); ``False``:
        it was announced already; ``None``: another announcer holds it right now (retry later).
        A claim whose announcer died (its lease passed) can be taken over, and so can a claim
        of the same ``owner`` at once: the announcer passes the stream record's sequence number,
        and a record is never handled twice at the same time, so a claim it meets under its own
        record is one a failed or dead delivery of that record left (or its own, whose answer
        was lost), not a live one.
        """
        now = state.utcnow().timestamp()
        mine = {"#owner": "owner"} if owner else {}
        try:
            self._call(
                "update_item",
                TableName=self.table_name,
                Key=_key(agent_id, announce_sk(version, nonce)),
                UpdateExpression="SET #status = :claimed, #lease = :until, #ttl = :ttl"
                + (", #owner = :owner" if owner else ""),
                ConditionExpression="attribute_not_exists(#sk) OR (#status = :claimed AND "
                + ("(#lease < :now OR #owner = :owner))" if owner else "#lease < :now)"),
                ExpressionAttributeNames={
                    "#sk": SORT_KEY,
                    "#status": "status",
                    "#lease": "leaseUntil",
                    "#ttl": TTL_ATTRIBUTE,
                    **mine,
                },
                ExpressionAttributeValues={
                    ":claimed": {"S": "CLAIMED"},
                    ":until": {"N": str(round(now + lease_seconds, 3))},
                    ":now": {"N": str(round(now, 3))},
                    ":ttl": {"N": str(ttl)},
                    **({":owner": {"S": owner}} if owner else {}),
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ConditionFailedError as exc:
            existing = exc.item or self._get(agent_id, announce_sk(version, nonce)) or {}
            return False if existing.get("status") == "DONE" else None
        return True

    def finish_announcement(self, agent_id: str, version: int, nonce: int) -> None:
        """Record that header ``version``'s lifecycle event (at ``nonce``) went out."""
        self._call(
            "update_item",
            TableName=self.table_name,
            Key=_key(agent_id, announce_sk(version, nonce)),
            UpdateExpression="SET #status = :done",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":done": {"S": "DONE"}},
        )

    def release_announcement(self, agent_id: str, version: int, nonce: int) -> None:
        """Give up a claim whose publish failed, so the retry need not wait out its lease."""
        # A claim finished meanwhile (or never taken) fails the condition: nothing to give back.
        with contextlib.suppress(ConditionFailedError):
            self._call(
                "update_item",
                TableName=self.table_name,
                Key=_key(agent_id, announce_sk(version, nonce)),
                UpdateExpression="SET #lease = :zero",
                ConditionExpression="#status = :claimed",
                ExpressionAttributeNames={"#status": "status", "#lease": "leaseUntil"},
                ExpressionAttributeValues={":claimed": {"S": "CLAIMED"}, ":zero": {"N": "0"}},
            )

    # --- reconciler -----------------------------------------------------------------------

    def stale_agents(self, shard: str, *, updated_before: datetime) -> Iterator[AgentHeader]:
        """Agents of one shard of the ``active`` index whose header is older than a moment.

        The index holds keys only (see ``contract.INDEX_KEYS``): the headers are fetched and
        their ``updatedAt`` compared here.
        """
        paginator = self.client.get_paginator("query")
        with _dynamodb_errors():
            for page in paginator.paginate(
                TableName=self.table_name,
                IndexName=Index.ACTIVE.value,
                KeyConditionExpression="#shard = :shard",
                ExpressionAttributeNames={"#shard": HeaderAttr.ACTIVE_SHARD.value},
                ExpressionAttributeValues={":shard": {"S": shard}},
            ):
                keys = [item[PARTITION_KEY]["S"] for item in page["Items"]]
                for header in self._headers(keys):
                    if header.updated_at < updated_before:
                        yield header

    def owned_agents(
        self, owner: str, *, limit: int, cursor: str | None, status: Status | None = None
    ) -> tuple[list[AgentHeader], str | None]:
        """One page of an owner's agents, newest first, and the next cursor (or ``None``).

        With ``status``, only agents in it are returned: a page may then hold fewer than
        ``limit`` (even none) while a next cursor remains.
        """
        kwargs: dict[str, Any] = {}
        if cursor is not None:
            kwargs["ExclusiveStartKey"] = _decode_key(cursor)
        response = self._call(
            "query",
            TableName=self.table_name,
            IndexName=Index.OWNER.value,
            KeyConditionExpression="#owner = :owner",
            ExpressionAttributeNames={"#owner": HeaderAttr.OWNER.value},
            ExpressionAttributeValues={":owner": {"S": owner}},
            ScanIndexForward=False,
            Limit=limit,
            **kwargs,
        )
        order = [item[PARTITION_KEY]["S"] for item in response["Items"]]
        found = {agent_pk(h.agent_id): h for h in self._headers(order)}
        headers = [
            found[pk]
            for pk in order
            if pk in found and (status is None or found[pk].status == status)
        ]
        last = response.get("LastEvaluatedKey")
        return headers, (_encode_key(last) if last else None)

    def count_active(self, owner: str, *, up_to: int) -> int:
        """How many of an owner's agents have not ended, counting no further than ``up_to``."""
        counted = 0
        kwargs: dict[str, Any] = {}
        while counted < up_to:
            response = self._call(
                "query",
                TableName=self.table_name,
                IndexName=Index.OWNER_ACTIVE.value,
                KeyConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": HeaderAttr.ACTIVE_OWNER.value},
                ExpressionAttributeValues={":owner": {"S": owner}},
                Select="COUNT",
                Limit=up_to - counted,
                **kwargs,
            )
            counted += int(response["Count"])
            if "LastEvaluatedKey" not in response:
                break
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return counted

    def _headers(self, partition_keys: Sequence[str]) -> list[AgentHeader]:
        """The headers of these agents (``AGENT#<id>`` keys), in no particular order; an agent
        deleted meanwhile is left out."""
        headers: list[AgentHeader] = []
        for start in range(0, len(partition_keys), 100):  # BatchGetItem's limit
            pending: dict[str, Any] = {
                self.table_name: {
                    "Keys": [
                        {PARTITION_KEY: {"S": pk}, SORT_KEY: {"S": META_SK}}
                        for pk in dict.fromkeys(partition_keys[start : start + 100])
                    ]
                }
            }
            for attempt in range(8):
                response = self._call("batch_get_item", RequestItems=pending)
                for item in response["Responses"].get(self.table_name, []):
                    headers.append(_item_to_header(_deserialize(item)))
                pending = response.get("UnprocessedKeys") or {}
                if not pending:
                    break
                time.sleep(min(1.0, 0.05 * 2**attempt))  # unprocessed keys: throttled, back off
            else:
                raise StoreThrottledError(f"table {self.table_name}: batch reads stayed throttled")
        return headers

    # --- invariants -----------------------------------------------------------------------

    def item_count(self, agent_id: str) -> dict[str, int]:
        """How many items of each kind the agent has: META, INFO, MSG, TOOL, SUMMARY, and any
        other prefix a toolset writes under the agent's partition."""
        prefixes = (MESSAGE_PREFIX, TOOL_PREFIX, SUMMARY_PREFIX)
        counts = dict.fromkeys([META_SK, INFO_SK, *(p.rstrip("#") for p in prefixes)], 0)
        for item in self._query(
            KeyConditionExpression="#pk = :pk",
            ExpressionAttributeValues=_values(pk=agent_pk(agent_id)),
            ProjectionExpression="#sk",
        ):
            kind = item[SORT_KEY].split("#", 1)[0]
            counts[kind] = counts.get(kind, 0) + 1
        return counts

    # --- private --------------------------------------------------------------------------

    def _call(self, operation: str, **kwargs: Any) -> Any:
        with _dynamodb_errors():
            return getattr(self.client, operation)(**kwargs)

    def _get(self, agent_id: str, sk: str, *, consistent: bool = True) -> dict[str, Any] | None:
        response = self._call(
            "get_item",
            TableName=self.table_name,
            Key=_key(agent_id, sk),
            ConsistentRead=consistent,
        )
        item = response.get("Item")
        return None if item is None else _deserialize(item)

    def _query(self, *, ConsistentRead: bool = True, **kwargs: Any) -> Iterator[dict[str, Any]]:  # noqa: N803
        """Every item of one partition query, following ``LastEvaluatedKey`` page by page."""
        names = {"#pk": PARTITION_KEY, "#sk": SORT_KEY}
        paginator = self.client.get_paginator("query")
        with _dynamodb_errors():
            for page in paginator.paginate(
                TableName=self.table_name,
                ConsistentRead=ConsistentRead,
                ExpressionAttributeNames=names,
                **kwargs,
            ):
                for item in page["Items"]:
                    yield _deserialize(item)

    def _check_sizes(self, agent_id: str, items: Sequence[dict[str, Any]]) -> None:
        for item in items:
            size = item_size(_serialize(item))
            if size > self.max_item_bytes:
                raise ItemTooLargeError(
                    f"item {item[SORT_KEY]} of agent {agent_id!r}: {size} bytes is over "
                    f"the limit of {self.max_item_bytes} bytes",
                    size=size,
                    limit=self.max_item_bytes,
                )


@contextmanager
def _dynamodb_errors() -> Iterator[None]:
    """Translate boto3's DynamoDB errors (after its own retries) into the runtime's."""
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code == "ConditionalCheckFailedException":
            old = exc.response.get("Item")
            raise ConditionFailedError(
                str(error.get("Message", code)), item=_deserialize(old) if old else None
            ) from exc
        if code == "TransactionCanceledException":
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if "ConditionalCheckFailed" in reasons:
                raise ConditionFailedError(f"transaction cancelled: {reasons}") from exc
            if "ThrottlingError" in reasons or "TransactionConflict" in reasons:
                raise StoreThrottledError(f"transaction cancelled: {reasons}") from exc
            raise StoreError(f"transaction cancelled: {reasons}") from exc
        if code in _THROTTLED or status == 429:
            raise StoreThrottledError(f"{code}: {error.get('Message', '')}") from exc
        if status >= 500:
            raise StoreUnavailableError(f"{code}: {error.get('Message', '')}") from exc
        raise StoreError(f"{code}: {error.get('Message', '')}") from exc
    except BotoCoreError as exc:  # connection reset, read timeout: the write may have landed
        raise StoreUnavailableError(f"{type(exc).__name__}: {exc}") from exc


# --- item sizes ---------------------------------------------------------------------------------


def _paired(messages: Sequence[Message]) -> bool:
    """Whether every tool result answers a call of the turn before it that nothing answered
    yet, and no turn follows one with calls still unanswered (the last may await its act)."""
    pending: set[str] | None = None  # None: results before the first turn answer older ones
    for message in messages:
        if message.role == "assistant":
            if pending:
                return False
            pending = {call.tool_use_id for call in message.tool_uses()}
            continue
        for result in message.tool_results():
            if pending is None:
                continue
            if result.tool_use_id not in pending:
                return False
            pending.discard(result.tool_use_id)
    return True


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


# --- items <-> models ---------------------------------------------------------------------------


def _header_to_item(header: AgentHeader) -> dict[str, Any]:
    item: dict[str, Any] = {PARTITION_KEY: agent_pk(header.agent_id), SORT_KEY: META_SK}
    for name, value in header.model_dump(exclude_none=True).items():
        if name == "owner" and not value:
            continue  # an index key cannot be an empty string: no owner, no entry in the index
        if name in ("tool_uses", "awaiting_tools", "awaiting_calls") and not value:
            continue
        # Tool names are keys a toolset chose: stored as they are, never camelCased.
        item[_HEADER_ATTRS[name]] = dict(value) if name == "tool_uses" else _attr(value)
    # While the agent waits for the platform, it is in the reconciler's (sparse) index.
    if header.status not in TERMINAL and header.status != state.Status.NEEDS_HUMAN:
        item[HeaderAttr.ACTIVE_SHARD.value] = header.shard
    # Until it ends, it counts against its owner's cap.
    if header.owner and header.status not in TERMINAL:
        item[HeaderAttr.ACTIVE_OWNER.value] = header.owner
    return item


def header_from_image(image: Mapping[str, Any]) -> AgentHeader:
    """The header in a stream record's image (DynamoDB JSON); ``CorruptItemError`` if it is not."""
    return _item_to_header(_deserialize(image))


def _item_to_header(item: Mapping[str, Any]) -> AgentHeader:
    data: dict[str, Any] = {}
    for attr, value in item.items():
        name = _HEADER_FIELDS.get(attr)
        if name is None or value is None:
            continue  # a field of a newer runtime, or a key
        data[name] = _snake_keys(value) if name == "usage" and isinstance(value, dict) else value
    data.setdefault("schema_version", 1)
    # An absent or NULL nextStep means "no step awaited", not the model's default (plan).
    data.setdefault("next_step", None)
    return _parse(AgentHeader, data, item)


# The info item must stay out of the owner index, whose keys are the header's owner/createdAt.
_INFO_RENAMED = {"owner": "ownedBy", "created_at": "since"}


def _info_to_item(info: AgentInfo, ttl: int | None) -> dict[str, Any]:
    item: dict[str, Any] = {PARTITION_KEY: agent_pk(info.agent_id), SORT_KEY: INFO_SK}
    for name, value in info.model_dump(exclude_none=True).items():
        if value != "":
            item[_INFO_RENAMED.get(name, to_camel(name))] = _attr(value)
    item["schemaVersion"] = SCHEMA_VERSION
    return _with_ttl(item, ttl)


def _item_to_info(item: Mapping[str, Any]) -> AgentInfo:
    renamed = {attr: name for name, attr in _INFO_RENAMED.items()}
    data = {
        renamed.get(attr, _to_snake(attr)): value
        for attr, value in item.items()
        if attr not in (PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE, "schemaVersion")
    }
    return _parse(AgentInfo, data, item)


def _message_to_item(agent_id: str, message: Message, ttl: int | None) -> dict[str, Any]:
    item: dict[str, Any] = {
        PARTITION_KEY: agent_pk(agent_id),
        SORT_KEY: message_sk(message.seq),
        "seq": message.seq,
        "role": message.role,
        "step": message.step,
        "origin": message.origin.value,
        "createdAt": _iso(message.created_at),
        # A JSON string, not a map: tool inputs hold floats, which DynamoDB numbers would turn
        # into Decimals; JSON round-trips them exactly.
        "content": _json(message.to_converse()["content"]),
    }
    if message.author:
        item["author"] = message.author
    if message.outcome is not None:
        item["outcome"] = message.outcome.value
    if message.tool_name:
        item["toolName"] = message.tool_name
    if message.stop_reason:
        item["stopReason"] = message.stop_reason
    if message.usage is not None:
        item["usage"] = _attr(message.usage.model_dump())
    return _with_ttl(item, ttl)


def _item_to_message(item: Mapping[str, Any]) -> Message:
    try:
        content = json.loads(item["content"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CorruptItemError(f"message {item.get(SORT_KEY)}: content is not JSON") from exc
    return _parse(
        Message,
        {
            "seq": item.get("seq"),
            "role": item.get("role"),
            "step": item.get("step", 0),
            "origin": item.get("origin", "caller" if item.get("role") == "user" else "model"),
            "author": item.get("author"),
            "outcome": item.get("outcome"),
            "tool_name": item.get("toolName"),
            "stop_reason": item.get("stopReason"),
            "created_at": item.get("createdAt"),
            "content": content,
            "usage": _snake_keys(item["usage"]) if isinstance(item.get("usage"), dict) else None,
        },
        item,
    )


def _claim_to_item(claim: ToolClaim, ttl: int | None) -> dict[str, Any]:
    item: dict[str, Any] = {
        PARTITION_KEY: agent_pk(claim.agent_id),
        SORT_KEY: tool_sk(claim.turn_seq, claim.tool_use_id),
        "agentId": claim.agent_id,
        "turnSeq": claim.turn_seq,
        "toolUseId": claim.tool_use_id,
        "name": claim.name,
        "resultSeq": claim.result_seq,
        "status": claim.status.value,
        "createdAt": _iso(claim.created_at),
    }
    if claim.lease_until is not None:
        item["leaseUntil"] = _epoch(claim.lease_until)
    if claim.decided_by:
        item["decidedBy"] = claim.decided_by
    if claim.reason:
        item["reason"] = claim.reason
    return _with_ttl(item, ttl)


def _item_to_claim(item: Mapping[str, Any]) -> ToolClaim:
    lease = item.get("leaseUntil")
    return _parse(
        ToolClaim,
        {
            "agent_id": item.get("agentId"),
            "turn_seq": item.get("turnSeq"),
            "tool_use_id": item.get("toolUseId"),
            "name": item.get("name"),
            "result_seq": item.get("resultSeq"),
            "status": item.get("status"),
            "lease_until": None if lease is None else datetime.fromtimestamp(lease, UTC),
            "decided_by": item.get("decidedBy"),
            "reason": item.get("reason"),
            "created_at": item.get("createdAt"),
        },
        item,
    )


def _summary_to_item(agent_id: str, summary: Summary, ttl: int | None) -> dict[str, Any]:
    item = {
        PARTITION_KEY: agent_pk(agent_id),
        SORT_KEY: summary_sk(summary.upto_seq),
        "uptoSeq": summary.upto_seq,
        "text": summary.text,
        "goal": summary.goal,
        "createdAt": _iso(summary.created_at),
    }
    return _with_ttl(item, ttl)


def _item_to_summary(item: Mapping[str, Any]) -> Summary:
    return _parse(
        Summary,
        {
            "upto_seq": item.get("uptoSeq"),
            "text": item.get("text"),
            "goal": item.get("goal", ""),
            "created_at": item.get("createdAt"),
        },
        item,
    )


def _parse(model: type[Any], data: Mapping[str, Any], item: Mapping[str, Any]) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise CorruptItemError(f"item {item.get(SORT_KEY)}: {exc.errors()[0]['msg']}") from exc


# --- small helpers ------------------------------------------------------------------------------


def _next_version(expected_version: int, header: AgentHeader) -> AgentHeader:
    return header.model_copy(update={"version": expected_version + 1, "updated_at": state.utcnow()})


def _version_condition(expected_version: int) -> dict[str, Any]:
    return {
        "ConditionExpression": "#version = :expected",
        "ExpressionAttributeNames": {"#version": HeaderAttr.VERSION.value},
        "ExpressionAttributeValues": {":expected": {"N": str(expected_version)}},
    }


def _newer_step_condition(step: int) -> dict[str, Any]:
    return {
        "ConditionExpression": "attribute_not_exists(#sk) OR #step < :step",
        "ExpressionAttributeNames": {"#sk": SORT_KEY, "#step": "step"},
        "ExpressionAttributeValues": {":step": {"N": str(step)}},
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
    """A model value as an attribute: ISO-8601 times, enum values, camelCase map keys."""
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {to_camel(k) if "_" in k else k: _attr(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_attr(v) for v in value]
    return value


def _to_snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def _snake_keys(value: dict[str, Any]) -> dict[str, Any]:
    return {_to_snake(k): v for k, v in value.items()}


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


def _encode_key(key: Mapping[str, Any]) -> str:
    raw = json.dumps(key, sort_keys=True, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_key(cursor: str) -> dict[str, Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.b64decode(padded, altchars=b"-_", validate=True))
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise ValueError(f"cursor: not a cursor this API returned ({exc})") from exc
    if not isinstance(key, dict) or not all(
        isinstance(v, dict) and set(v) == {"S"} and isinstance(v["S"], str) for v in key.values()
    ):
        raise ValueError("cursor: not a cursor this API returned")
    return key
