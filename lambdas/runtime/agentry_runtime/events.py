"""Putting Agentry events on the EventBridge bus: only the announcer does it.

PutEvents can answer 200 with ``FailedEntryCount > 0`` and no exception: each entry has its own
result. ``Publisher.publish`` retries exactly the entries that failed (with backoff), and reports
those that still fail, so the caller can hand just their stream records back for a retry.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from agentry_runtime.contract import EVENT_SOURCE, Detail, DetailType
from agentry_runtime.errors import PublishError

__all__ = ["MAX_ENTRIES", "Event", "Publisher"]

#: PutEvents takes at most this many entries per call.
MAX_ENTRIES = 10

Event = tuple[DetailType, Detail]


class Publisher:
    """Puts typed Agentry events on one bus; the boto3 ``events`` client is injectable."""

    def __init__(
        self,
        bus_name: str,
        *,
        client: Any | None = None,
        attempts: int = 4,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if attempts < 1:
            raise ValueError(f"attempts: must be at least 1, got {attempts}")
        self.bus_name = bus_name
        self.attempts = attempts
        self._client = client
        self._sleep = sleep

    @property
    def client(self) -> Any:
        """The boto3 EventBridge client (created on first use, with standard retries)."""
        if self._client is None:
            self._client = boto3.client("events", config=Config(retries={"mode": "standard"}))
        return self._client

    def publish(self, events: Sequence[Event]) -> list[int]:
        """Publish ``events``; the indexes of those that still failed after the retries.

        A client error (throttled beyond the client's retries, no permission) counts as the
        failure of every entry of that call; nothing is raised for it.
        """
        failed: list[int] = []
        for start in range(0, len(events), MAX_ENTRIES):
            chunk = list(range(start, min(start + MAX_ENTRIES, len(events))))
            failed += self._publish_chunk(events, chunk)
        return failed

    def publish_one(self, detail_type: DetailType, detail: Detail) -> None:
        """Publish one event; ``PublishError`` if it could not be."""
        if self.publish([(detail_type, detail)]):
            raise PublishError(f"put_events to {self.bus_name}: the event was not accepted")

    def _publish_chunk(self, events: Sequence[Event], indexes: list[int]) -> list[int]:
        pending = indexes
        for attempt in range(self.attempts):
            if attempt:
                # Full jitter: retried entries of many announcers do not arrive in lockstep.
                self._sleep(random.uniform(0, min(1.0, 0.05 * 2**attempt)))
            try:
                with _translate(self.bus_name):
                    response = self.client.put_events(
                        Entries=[self._entry(*events[i]) for i in pending]
                    )
            except PublishError:
                continue
            results = response.get("Entries", [])
            if not response.get("FailedEntryCount", 0):
                return []
            # Entries answer in the order they were sent; an ErrorCode marks a failed one.
            pending = [
                index
                for index, result in zip(pending, results, strict=False)
                if result.get("ErrorCode")
            ] + pending[len(results) :]
            if not pending:
                return []
        return pending

    def _entry(self, detail_type: DetailType, detail: Detail) -> dict[str, Any]:
        return {
            "Source": EVENT_SOURCE,
            "DetailType": str(detail_type),
            "Detail": detail.model_dump_json(by_alias=True),
            "EventBusName": self.bus_name,
        }


@contextmanager
def _translate(bus_name: str) -> Iterator[None]:
    """boto3's EventBridge errors (after its own retries) as ``PublishError``."""
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise PublishError(f"put_events to {bus_name} failed: {exc}") from exc
