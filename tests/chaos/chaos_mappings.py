"""The event source mappings, played with chaos: the table's stream to the announcer, the step
queue to the worker.

:class:`StreamMapping` plays Lambda's DynamoDB stream mapping as the platform configures it
(``StreamSource`` with the ``dev`` stack's batch size and retries): records in order, filtered
by the platform's pattern (header writes only), one batch in flight; a batch the function fails
is retried from the first record it reports (or, after a function error, split in two:
``bisect``), promptly; after the mapping's retries, or once a record is too old, the batch is
given up to the on-failure destination (here: recorded) and the mapping moves on. Chaos: a batch
delivered again after it succeeded, the whole stream replayed from its trim horizon, and
outages in which Lambda cannot invoke the function at all. A batch given up after an attempt
that was killed (crash, timeout) or not made (outage) is *forced*: the chaos made the announcer
unable to work; any other give-up means faults the announcer should absorb defeated it.

:class:`QueueMapping` plays the SQS mapping: batches received from moto's queue (visibility
timeouts and the redrive to the dead-letter queue are moto's, on the virtual clock), handed to
the worker handler, the records it did not report failed deleted. Chaos: reordered batches, a
message twice in one batch, the same message handed to a second worker at the same time.
"""

from __future__ import annotations

import contextlib
import copy
import json
import random
from typing import Any

from botocore.exceptions import ClientError
from chaos_conductor import Actor
from chaos_world import ChaosWorld

from agentry_offline.events import sqs_event
from agentry_platform.lib.patterns import header_changes_pattern
from agentry_runtime.handlers import announcer
from agentry_stacks.local.streams import matches

#: Virtual seconds before the stream mapping retries a failed batch (it does so promptly).
_RETRY_DELAY = (0.2, 2.0)


class StreamMapping:
    """The announcer's stream mapping (see the module doc)."""

    def __init__(self, world: ChaosWorld, rng: random.Random, *, redeliver: float) -> None:
        self.world = world
        self.rng = rng
        settings = world.config.announcer
        self.batch_size = settings.batch_size
        self.max_retries = settings.max_retries
        self.max_age = settings.max_record_age_seconds
        self.timeout = settings.timeout_seconds
        self.redeliver = redeliver
        self.filters = header_changes_pattern()
        self.position = 0
        self.limit = self.batch_size
        self.not_before = 0.0
        #: Invocations Lambda will refuse (an injected outage of the announcer).
        self.outage = 0
        self.inflight: Actor | None = None
        self.batch: list[int] = []
        self._attempts: dict[int, int] = {}
        self._forced: set[int] = set()
        self._first_seen: dict[int, float] = {}
        self.invocations = 0
        self.redelivered = 0
        self.replays = 0

    def _kept(self, record: Any) -> bool:
        return any(matches(pattern, record.to_json()) for pattern in self.filters)

    def pending(self) -> list[int]:
        """Indexes of the records not yet handled, that the filter keeps."""
        records = self.world.stream_records()
        return [i for i in range(self.position, len(records)) if self._kept(records[i])]

    def consumed(self) -> bool:
        """Whether every record was handled (nothing in flight, nothing left)."""
        return self.inflight is None and not self.pending()

    def ready(self) -> bool:
        """Whether the mapping would invoke the function now."""
        return (
            self.inflight is None
            and self.world.clock.now() >= self.not_before
            and bool(self.pending())
        )

    def replay(self) -> None:
        """Start again from the trim horizon (every record is delivered again)."""
        self.replays += 1
        self.world.trace.note("stream: replay from the trim horizon")
        self.position = 0

    def invoke(self) -> None:
        """Hand the next batch to the announcer (or fail it, during an outage)."""
        records = self.world.stream_records()
        indexes = self.pending()[: self.limit]
        now = self.world.clock.now()
        for index in indexes:
            self._first_seen.setdefault(index, now)
        self.batch = indexes
        if self.outage > 0:
            self.outage -= 1
            self.world.trace.note(f"stream: announcer unavailable for {indexes[0]}..{indexes[-1]}")
            self._fail(indexes[0], forced=True, split=False)
            return
        self.invocations += 1
        event = {"Records": [self._lambda_record(records[i]) for i in indexes]}
        context = self.world.context("announcer", self.timeout)
        conductor = self.world.conductor
        self.inflight = conductor.spawn(
            "announcer",
            lambda: conductor.function(lambda: announcer.handler(event, context)),
            deadline=context.deadline,
            crashable=True,
            records=(indexes[0], indexes[-1]),
        )
        self.world.trace.note(f"{self.inflight.name}: records {indexes[0]}..{indexes[-1]}")

    def ended(self, actor: Actor) -> None:
        """The announcer's invocation ended: move on, retry, or give up."""
        self.inflight = None
        batch = self.batch
        if actor.crashed is not None or actor.error is not None:
            # A killed invocation (crash, timeout) is an injected failure; an error it raised
            # is the announcer's own answer to the faults on its calls.
            self._fail(batch[0], forced=actor.crashed is not None, split=True)
            return
        failures = (actor.result or {}).get("batchItemFailures", [])
        if not failures:
            self._succeeded(batch)
            return
        records = self.world.stream_records()
        sequence = {str(records[i].to_json()["dynamodb"]["SequenceNumber"]): i for i in batch}
        first = failures[0].get("itemIdentifier")
        self._fail(sequence.get(str(first), batch[0]), forced=False, split=False)

    def _succeeded(self, batch: list[int]) -> None:
        self._forget(batch)
        self.position = batch[-1] + 1
        self.limit = self.batch_size
        if self.rng.random() < self.redeliver:
            # At least once: the same records come again, after they were handled.
            self.redelivered += 1
            self.world.trace.note(f"stream: redeliver {batch[0]}..{batch[-1]}")
            self.position = batch[0]

    def _fail(self, first: int, *, forced: bool, split: bool) -> None:
        """Count a failed attempt against every record it held back; maybe give them up."""
        now = self.world.clock.now()
        failed = [i for i in self.batch if i >= first] or self.batch
        for index in failed:
            self._attempts[index] = self._attempts.get(index, 0) + 1
            if forced:
                self._forced.add(index)
        first = failed[0]
        too_old = now - self._first_seen.get(first, now) > self.max_age
        if self._attempts[first] > self.max_retries or too_old:
            self.world.seen.given_up.append((first, failed[-1], first in self._forced))
            self.world.trace.note(
                f"stream: gave up {first}..{failed[-1]} after {self._attempts[first]} attempts"
            )
            self._forget(failed)
            self.position = failed[-1] + 1
            self.limit = self.batch_size
            return
        self.position = first
        if split and len(failed) > 1:
            self.limit = max(1, len(failed) // 2)
        self.not_before = now + self.rng.uniform(*_RETRY_DELAY)

    def _forget(self, indexes: list[int]) -> None:
        for index in indexes:
            self._attempts.pop(index, None)
            self._forced.discard(index)

    def _lambda_record(self, record: Any) -> dict[str, Any]:
        data = record.to_json()
        dynamodb = copy.deepcopy(data["dynamodb"])
        created = dynamodb.get("ApproximateCreationDateTime")
        if hasattr(created, "timestamp"):
            dynamodb["ApproximateCreationDateTime"] = created.timestamp()
        return {
            "eventID": data["eventID"],
            "eventName": data["eventName"],
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "dynamodb": dynamodb,
            "eventSourceARN": f"arn:aws:dynamodb:us-east-1:123456789012:table/{self.world.names}",
        }


class QueueMapping:
    """The worker's queue mapping (see the module doc)."""

    def __init__(
        self, world: ChaosWorld, rng: random.Random, *, duplicate: float, concurrent: float
    ) -> None:
        self.world = world
        self.rng = rng
        self.duplicate = duplicate
        self.concurrent = concurrent
        self.batch_size = world.config.worker.batch_size
        #: Concurrent worker invocations at most (the dev stack allows 5; 3 interleave enough).
        self.concurrency = min(3, world.config.worker.max_concurrency)
        self.running: list[Actor] = []
        self.invocations = 0
        self.duplicates = 0

    def _queue(self) -> Any:
        return self.world.queue(self.world.steps_url)

    def visible(self) -> bool:
        """Whether a step message could be received now."""
        return any(m.visible and not m.delayed for m in self._queue()._messages)

    def empty(self) -> bool:
        """No step message left, visible or in flight."""
        return not self._queue()._messages

    def next_visible(self) -> float | None:
        """When the next in-flight message becomes visible again."""
        hidden = [m.visible_at / 1000 for m in self._queue()._messages if not m.visible]
        return min(hidden, default=None)

    def ready(self) -> bool:
        """Whether the mapping would invoke another worker now."""
        return len(self.running) < self.concurrency and self.visible()

    def invoke(self) -> None:
        """Receive a batch and hand it to a worker (maybe with chaos)."""
        sqs = self.world.harness_sqs
        messages = sqs.receive_message(
            QueueUrl=self.world.steps_url,
            MaxNumberOfMessages=self.rng.randint(1, self.batch_size),
            AttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return
        if self.rng.random() < self.duplicate:
            # At least once: one message twice in the batch.
            self.duplicates += 1
            messages.append(copy.deepcopy(self.rng.choice(messages)))
        self.rng.shuffle(messages)
        self._spawn(messages)
        if len(self.running) < self.concurrency and self.rng.random() < self.concurrent:
            # At least once, at the same time: another worker gets one of the messages too.
            self.duplicates += 1
            self._spawn([copy.deepcopy(self.rng.choice(messages))])

    def _spawn(self, messages: list[dict[str, Any]]) -> None:
        world = self.world
        self.invocations += 1
        container = world.workers.acquire()
        # The handler's deadline runs on the virtual clock.
        setattr(container, "time", world.fake_time)  # noqa: B010 - a module's global
        context = world.context("worker", world.worker_timeout)
        event = sqs_event(messages, queue_arn=world.steps_arn)
        conductor = world.conductor

        def invocation() -> list[Any]:
            try:
                result = conductor.function(lambda: container.handler(event, context))
                errors = list(container.processor.exceptions)
            finally:
                world.workers.release(container)
            failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
            handles = {m["ReceiptHandle"]: m["MessageId"] for m in messages}
            for handle, message_id in handles.items():
                if message_id in failed:
                    continue
                # Another worker's mapping may have deleted it meanwhile.
                with contextlib.suppress(ClientError):
                    world.harness_sqs.delete_message(QueueUrl=world.steps_url, ReceiptHandle=handle)
            return errors

        agents = sorted({json.loads(m["Body"])["detail"]["agentId"] for m in messages})
        actor = conductor.spawn(
            "worker", invocation, deadline=context.deadline, crashable=True, agents=agents
        )
        steps = [
            f"{json.loads(m['Body'])['detail']['agentId'][-4:]}:{json.loads(m['Body'])['detail']['step']}"
            for m in messages
        ]
        world.trace.note(f"{actor.name}: steps {' '.join(steps)}")
        self.running.append(actor)

    def ended(self, actor: Actor) -> None:
        """A worker invocation ended."""
        self.running.remove(actor)
