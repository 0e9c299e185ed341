"""The functional test world: moto table (with its stream), bus, queues, fake Bedrock, handlers.

Everything the runtime does runs for real; the world plays the managed services between the
functions: it reads the table's stream (moto records it) and hands the records to the real
announcer, moto's EventBridge routes the events to SQS queues, and :meth:`World.pump` delivers
step events to the real worker handler as SQS batches, deleting only the records the handler
did not report as failed (as the event source mapping does).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agentry_flights import bookings
from agentry_offline.events import (
    LOCAL_CALLER,
    LambdaContext,
    decode_body,
    http_api_event,
    sqs_event,
)
from agentry_offline.model import OfflineModel
from agentry_runtime.agents import Agent
from agentry_runtime.announcer import StreamRecord
from agentry_runtime.contract import EVENT_SOURCE, DetailType
from agentry_runtime.events import Publisher
from agentry_runtime.handlers import api, worker
from agentry_runtime.runtime import set_runtime
from agentry_runtime.settings import LoopSettings, ReconcilerSettings
from agentry_runtime.store import AgentStore
from agentry_runtime.tools import ToolRegistry
from support.agents import MODEL_ID, flights_agent, single_agent_runtime
from support.harness import (
    REGION,
    aws_session,
    bedrock_client,
    create_queue,
    route,
    start_fake_bedrock,
)
from support.serialized import SerializedClient

__all__ = ["MODEL_ID", "REGION", "World"]

_STREAMS_ENDPOINT = f"https://streams.dynamodb.{REGION}.amazonaws.com"


@dataclass
class World:
    """Table (made with ``contract.table_schema``), stream, bus, queues, fake Bedrock and the
    runtime wired over them."""

    table_name: str
    responder: Any = field(default_factory=OfflineModel)
    tools: ToolRegistry | None = None
    settings: LoopSettings = field(default_factory=LoopSettings)
    max_receive_count: int = 0
    max_redrives: int = 2
    worker_timeout_ms: int = 60_000

    def __post_init__(self) -> None:
        session = aws_session()
        self.events = session.client("events")
        self.sqs = session.client("sqs")
        self.dynamodb = SerializedClient(session.client("dynamodb"))
        self.streams = session.client("dynamodbstreams", endpoint_url=_STREAMS_ENDPOINT)
        self.stream_arn = self.dynamodb.describe_table(TableName=self.table_name)["Table"][
            "LatestStreamArn"
        ]
        self._positions: dict[str, str | None] = {}
        self.bus = "agentry-test"
        self.events.create_event_bus(Name=self.bus)
        steps = create_queue(self.sqs, "steps", max_receive_count=self.max_receive_count)
        self.steps_url, self.steps_arn = steps.url, steps.arn
        self.dlq_url = steps.dead_letter_url or create_queue(self.sqs, "unused-dlq").url
        others = create_queue(self.sqs, "others")
        self.others_url = others.url
        route(
            self.events,
            self.bus,
            "steps",
            {"source": [EVENT_SOURCE], "detail-type": [DetailType.STEP_REQUESTED]},
            self.steps_arn,
        )
        route(
            self.events,
            self.bus,
            "others",
            {
                "source": [EVENT_SOURCE],
                "detail-type": [t.value for t in DetailType if t != DetailType.STEP_REQUESTED],
            },
            others.arn,
        )
        self.server = start_fake_bedrock(self.responder)
        self.bedrock = bedrock_client(self.server)
        self.publisher = Publisher(self.bus, client=self.events)
        self.agent: Agent = flights_agent(
            tools=self.tools, bedrock=self.bedrock, settings=self.settings
        )
        self.store = AgentStore(self.table_name, client=self.dynamodb)
        self.runtime = single_agent_runtime(self.store, self.publisher, self.agent)
        self.runtime.sqs = self.sqs
        self.runtime.reconciler_settings = ReconcilerSettings(
            stale_after_seconds=0,
            max_redrives=self.max_redrives,
            dead_letter_queue_url=self.dlq_url,
        )
        self.pending = False
        set_runtime(self.runtime)
        self.observed: list[dict[str, Any]] = []

    def close(self) -> None:
        """Stop the fake endpoint and forget the injected runtime."""
        self.server.stop()
        set_runtime(None)

    # --- api --------------------------------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        query: dict[str, str] | None = None,
        caller: str | None = LOCAL_CALLER,
    ) -> tuple[int, Any]:
        """Invoke the api handler with an HTTP API v2 event (signed by ``caller``); return
        status and JSON body."""
        event = http_api_event(method, path, body=body, headers=headers, query=query, caller=caller)
        response = api.handler(event, LambdaContext(function_name="agentry-api"))
        return response["statusCode"], decode_body(response)

    def start(self, goal: str) -> str:
        """Create an agent through the API; return its id."""
        status, body = self.call("POST", "/agents", {"goal": goal})
        assert status == 202, body
        return str(body["agentId"])

    # --- delivery ---------------------------------------------------------------------------

    def announce(self, *, strict: bool = True) -> int:
        """Hand every new stream record to the announcer (in order); how many were handed.

        When the announcer asks for a retry, ``strict`` raises; otherwise the shard's position
        stays before the record to retry, as the event source mapping keeps it (``pending``).
        """
        handed = 0
        self.pending = False
        shards = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]
        for shard in shards.get("Shards", []):
            shard_id = shard["ShardId"]
            after = self._positions.get(shard_id)
            kwargs: dict[str, Any] = {"StreamArn": self.stream_arn, "ShardId": shard_id}
            if after is None:
                kwargs["ShardIteratorType"] = "TRIM_HORIZON"
            else:
                kwargs |= {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": after}
            iterator = self.streams.get_shard_iterator(**kwargs)["ShardIterator"]
            records = self.streams.get_records(ShardIterator=iterator, Limit=1000)["Records"]
            if not records:
                continue
            retry_from = self.runtime.announcer.announce(
                [StreamRecord.from_lambda(record) for record in records]
            )
            handed += len(records)
            if retry_from is not None:
                if strict:
                    raise AssertionError(f"the announcer could not publish from {retry_from}")
                self.pending = True
                numbers = [r["dynamodb"]["SequenceNumber"] for r in records]
                done = numbers[: numbers.index(retry_from)]
                if done:
                    self._positions[shard_id] = done[-1]
                continue
            self._positions[shard_id] = records[-1]["dynamodb"]["SequenceNumber"]
        return handed

    def give_up_on_stream(self) -> None:
        """Skip every record not yet announced, as a mapping past its record age does."""
        self._positions = {
            shard["ShardId"]: shard["SequenceNumberRange"].get("EndingSequenceNumber")
            or self._last_sequence(shard["ShardId"])
            for shard in self.streams.describe_stream(StreamArn=self.stream_arn)[
                "StreamDescription"
            ].get("Shards", [])
        }

    def replay_stream(self) -> None:
        """Hand the whole stream to the announcer again from its start (a replayed mapping)."""
        self._positions = {}

    def _last_sequence(self, shard_id: str) -> str | None:
        iterator = self.streams.get_shard_iterator(
            StreamArn=self.stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records = self.streams.get_records(ShardIterator=iterator, Limit=1000)["Records"]
        return records[-1]["dynamodb"]["SequenceNumber"] if records else None

    def pump(
        self,
        *,
        duplicate: bool = False,
        max_batches: int = 500,
        strict: bool = True,
        before_batch: Callable[[list[dict[str, Any]]], None] | None = None,
    ) -> int:
        """Announce and deliver step events to the worker until nothing moves; batches run."""
        for batch_number in range(max_batches):
            self.announce(strict=strict)
            messages = self.sqs.receive_message(
                QueueUrl=self.steps_url,
                MaxNumberOfMessages=10,
                AttributeNames=["All"],
            ).get("Messages", [])
            if not messages and self.pending:
                continue  # the mapping retries the records it could not announce
            if not messages:
                self._collect_others()
                return batch_number
            if before_batch:
                before_batch(messages)
            deliveries = messages + messages if duplicate else messages
            result = worker.handler(
                sqs_event(deliveries, queue_arn=self.steps_arn),
                LambdaContext(function_name="agentry-worker", timeout_ms=self.worker_timeout_ms),
            )
            failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
            for message in messages:
                if message["MessageId"] not in failed:
                    self.sqs.delete_message(
                        QueueUrl=self.steps_url, ReceiptHandle=message["ReceiptHandle"]
                    )
        raise AssertionError(f"the queue did not drain in {max_batches} batches")

    def observed_events(self, detail_type: DetailType) -> list[dict[str, Any]]:
        """Details of the non-step events published so far, of one type."""
        self.announce()
        self._collect_others()
        return [e["detail"] for e in self.observed if e["detail-type"] == detail_type]

    def _collect_others(self) -> None:
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=self.others_url, MaxNumberOfMessages=10
            ).get("Messages", [])
            if not messages:
                return
            for message in messages:
                self.observed.append(json.loads(message["Body"]))
                self.sqs.delete_message(
                    QueueUrl=self.others_url, ReceiptHandle=message["ReceiptHandle"]
                )

    def bookings(self, agent_id: str) -> list[dict[str, Any]]:
        """The bookings the demo tool stored for an agent."""
        return bookings(self.dynamodb, self.table_name, agent_id)
