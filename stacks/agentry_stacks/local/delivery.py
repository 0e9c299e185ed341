"""The SQS event source mapping, emulated: batches from a queue to a function, as Lambda does.

Each poll receives up to the mapping's batch size, invokes the function with an SQS event and
deletes only the records it did not report in ``batchItemFailures`` (all of them if it raised,
or if the mapping does not report batch item failures). A failed record becomes visible again
after the queue's visibility timeout, and moto moves it to the dead-letter queue once it was
received more than the redrive policy's ``maxReceiveCount`` times.
"""

from __future__ import annotations

import traceback
from collections import Counter
from dataclasses import dataclass
from typing import Any

from agentry_offline.events import sqs_event
from agentry_stacks.local.functions import LocalFunction
from agentry_stacks.local.resources import QueueMapping

__all__ = ["BatchResult", "QueuePoller"]

# SQS's own limit on one receive.
_MAX_RECEIVE = 10


@dataclass(frozen=True)
class BatchResult:
    """What one poll did: records delivered, and those that failed (to come back)."""

    delivered: int
    failed: int


class QueuePoller:
    """Delivers one mapping's queue to its function, batch by batch."""

    def __init__(
        self,
        mapping: QueueMapping,
        function: LocalFunction,
        sqs: Any,
        *,
        duplicate: bool = False,
    ) -> None:
        self.mapping = mapping
        self.function = function
        self._sqs = sqs
        self._duplicate = duplicate
        #: How many times each message id was received and handed to the function.
        self.received: Counter[str] = Counter()

    def poll(self) -> BatchResult | None:
        """Deliver one batch; ``None`` when the queue had nothing visible."""
        messages = self._sqs.receive_message(
            QueueUrl=self.mapping.queue_url,
            MaxNumberOfMessages=min(self.mapping.batch_size, _MAX_RECEIVE),
            AttributeNames=["All"],
            WaitTimeSeconds=0,
        ).get("Messages", [])
        if not messages:
            return None
        self.received.update(m["MessageId"] for m in messages)
        failed = self._invoke(messages)
        if self._duplicate:
            # At-least-once delivery: the same records again, as a second batch.
            failed |= self._invoke(messages)
        for message in messages:
            if message["MessageId"] not in failed:
                self._sqs.delete_message(
                    QueueUrl=self.mapping.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )
        return BatchResult(delivered=len(messages), failed=len(failed))

    def _invoke(self, messages: list[dict[str, Any]]) -> set[str]:
        """Run the function on a batch; the ids of the records that must come back."""
        everything = {m["MessageId"] for m in messages}
        try:
            result = self.function.invoke(sqs_event(messages, queue_arn=self.mapping.queue_arn))
        except Exception:
            # A function error fails the whole batch; Lambda would log it, so do we.
            traceback.print_exc(file=self.function.logs)
            return everything
        if not self.mapping.report_batch_item_failures:
            return set()
        failures = (result or {}).get("batchItemFailures", []) if isinstance(result, dict) else []
        ids = {str(f.get("itemIdentifier")) for f in failures}
        # Lambda fails the whole batch when a reported id is not one of its records.
        return everything if ids - everything else ids
