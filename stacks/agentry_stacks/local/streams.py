"""The DynamoDB stream event source mapping, emulated: a table's changes to a function, in order.

moto records every write of a table created with a stream (``dynamodbstreams``), but runs no
consumer (its ``pipes`` are stored, never run). A :class:`StreamPoller` plays Lambda's part for
one mapping: it reads each shard from where it stopped, keeps the records the mapping's filter
patterns match (the others are passed over, as Lambda does), invokes the function with a batch,
and on a reported failure (``batchItemFailures``) or a function error retries from the first
failed record. After the mapping's retries it sends the batch's metadata to the on-failure
queue and moves past it, as Lambda does (records are not in the message, only where they are).
"""

from __future__ import annotations

import json
import traceback
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agentry_stacks.local.functions import LocalFunction
from agentry_stacks.local.resources import StreamMapping

__all__ = ["StreamPoller", "matches"]

# moto answers get_records only with an endpoint given explicitly (FIELD-NOTES).
_ENDPOINT = "https://streams.dynamodb.{region}.amazonaws.com"


@dataclass
class _Shard:
    shard_id: str
    after: str | None = None  # the last sequence number processed
    attempts: Counter[str] = field(default_factory=Counter)  # failures per first record


class StreamPoller:
    """Delivers one stream mapping's records to its function, batch by batch."""

    def __init__(
        self,
        mapping: StreamMapping,
        function: LocalFunction,
        session: Any,
        sqs: Any,
        *,
        region: str,
        duplicate: bool = False,
    ) -> None:
        self.mapping = mapping
        self.function = function
        self._streams = session.client(
            "dynamodbstreams", endpoint_url=_ENDPOINT.format(region=region)
        )
        self._sqs = sqs
        self._region = region
        self._duplicate = duplicate
        self._shards: dict[str, _Shard] = {}
        #: Every batch handed to the function: (first, last) sequence numbers.
        self.batches: list[tuple[str, str]] = []
        #: Batches given up on (sent to the on-failure queue).
        self.given_up = 0

    def poll(self) -> int | None:
        """Deliver one batch from the first shard that has records; ``None`` if none had."""
        self._refresh_shards()
        for shard in self._shards.values():
            delivered = self._poll_shard(shard)
            if delivered is not None:
                return delivered
        return None

    def _refresh_shards(self) -> None:
        description = self._streams.describe_stream(StreamArn=self.mapping.stream_arn)
        for item in description["StreamDescription"].get("Shards", []):
            self._shards.setdefault(item["ShardId"], _Shard(item["ShardId"]))

    def _poll_shard(self, shard: _Shard) -> int | None:
        previous = shard.after
        kwargs: dict[str, Any] = {"StreamArn": self.mapping.stream_arn, "ShardId": shard.shard_id}
        if previous is None:
            kwargs["ShardIteratorType"] = "TRIM_HORIZON"
        else:
            kwargs["ShardIteratorType"] = "AFTER_SEQUENCE_NUMBER"
            kwargs["SequenceNumber"] = previous
        iterator = self._streams.get_shard_iterator(**kwargs)["ShardIterator"]
        records = self._streams.get_records(ShardIterator=iterator, Limit=1000)["Records"]
        if not records:
            return None
        kept = [r for r in records if not self.mapping.filters or _kept(r, self.mapping.filters)]
        if not kept:
            shard.after = _seq(records[-1])  # nothing for this function: passed over
            return None
        batch = kept[: self.mapping.batch_size]
        self.batches.append((_seq(batch[0]), _seq(batch[-1])))
        retry_from = self._invoke(batch)
        if self._duplicate and retry_from is None:
            self._invoke(batch)  # at-least-once: the same records again
        if retry_from is None:
            shard.after = _seq(batch[-1])
            return len(batch)
        shard.attempts[retry_from] += 1
        retries = self.mapping.max_retries
        if retries >= 0 and shard.attempts[retry_from] > retries:
            self._give_up(shard, batch)
            shard.after = _seq(batch[-1])
            return len(batch)
        # Retry from the failed record: the checkpoint stays just before it.
        index = next(i for i, r in enumerate(records) if _seq(r) == retry_from)
        shard.after = _seq(records[index - 1]) if index else previous
        return len(batch)

    def _invoke(self, batch: list[dict[str, Any]]) -> str | None:
        """Run the function on a batch; the sequence number to retry from, or ``None``."""
        event = {"Records": [self._lambda_record(record) for record in batch]}
        try:
            result = self.function.invoke(event)
        except Exception:
            traceback.print_exc(file=self.function.logs)
            return _seq(batch[0])  # a function error fails the whole batch
        if not self.mapping.report_batch_item_failures:
            return None
        failures = (result or {}).get("batchItemFailures", []) if isinstance(result, dict) else []
        ids = [str(f.get("itemIdentifier")) for f in failures]
        sequence = [_seq(record) for record in batch]
        failed = [seq for seq in sequence if seq in ids]
        if set(ids) - set(sequence):
            return sequence[0]  # Lambda fails the batch when an id is not one of its records
        return failed[0] if failed else None

    def _give_up(self, shard: _Shard, batch: list[dict[str, Any]]) -> None:
        self.given_up += 1
        if self.mapping.failure_queue_url is None:
            return
        # What Lambda sends to an on-failure destination for a stream: where the batch is.
        message = {
            "requestContext": {
                "condition": "RetryAttemptsExhausted",
                "functionArn": self.mapping.function_arn,
            },
            "DDBStreamBatchInfo": {
                "shardId": shard.shard_id,
                "startSequenceNumber": _seq(batch[0]),
                "endSequenceNumber": _seq(batch[-1]),
                "batchSize": len(batch),
                "streamArn": self.mapping.graph_stream_arn,
            },
        }
        self._sqs.send_message(
            QueueUrl=self.mapping.failure_queue_url, MessageBody=json.dumps(message)
        )

    def _lambda_record(self, record: dict[str, Any]) -> dict[str, Any]:
        return {
            "eventID": record.get("eventID", ""),
            "eventName": record["eventName"],
            "eventVersion": record.get("eventVersion", "1.1"),
            "eventSource": "aws:dynamodb",
            "awsRegion": self._region,
            "dynamodb": record["dynamodb"],
            "eventSourceARN": self.mapping.graph_stream_arn,
        }


def matches(pattern: Mapping[str, Any], value: Any) -> bool:
    """Whether ``value`` matches an event filter pattern (lists of allowed values, nested keys).

    The subset of Lambda's filter syntax the stack's mappings use: exact values, and
    ``{"exists": bool}`` on a leaf (a key absent from the record, or under an absent parent,
    does not exist).
    """
    present = isinstance(value, Mapping)
    for key, expected in pattern.items():
        found = present and key in value
        if isinstance(expected, Mapping):
            if not matches(expected, value[key] if found else None):
                return False
        elif isinstance(expected, list):
            if not any(_leaf(option, found, value[key] if found else None) for option in expected):
                return False
        else:
            raise ValueError(f"filter pattern: {key}: expected a list or an object")
    return True


def _leaf(option: Any, found: bool, value: Any) -> bool:
    if isinstance(option, Mapping):
        if set(option) != {"exists"}:
            raise ValueError(f"filter pattern: unsupported operator {sorted(option)}")
        return found is bool(option["exists"])
    return found and value == option


def _kept(record: dict[str, Any], filters: tuple[dict[str, Any], ...]) -> bool:
    return any(matches(pattern, record) for pattern in filters)


def _seq(record: dict[str, Any]) -> str:
    return str(record["dynamodb"]["SequenceNumber"])
