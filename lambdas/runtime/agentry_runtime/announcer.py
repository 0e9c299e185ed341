"""The announcer: the only publisher on the bus, fed by the state table's stream.

Every writer (api, worker, recovery state machine, reconciler) only commits; the stream carries
each header write, with its old and new image, here. For each record in order the announcer
works out what the write announces (``announce.announcements``) and publishes it:

- step events go out as often as a record comes (their consumers are idempotent on the step);
- a lifecycle event (completed, error, needs human, needs approval) goes out once per header
  version: its announcement is claimed in the table first and marked done after the publish,
  so a record delivered twice, or the stream replayed from its start, mails nobody twice and
  starts no second recovery. A delivery of a record that failed or died between claim and mark
  leaves a claim that the next delivery of the same record takes over at once (the claim's
  owner is the record); any other announcer waits for its lease.

Entries PutEvents fails are retried (``events.Publisher``); the first record whose events still
fail is returned, so the event source mapping retries from it (and bisects, and gives up after
its bounded age into its on-failure destination, where the reconciler's sweep takes over).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agentry_runtime.announce import lifecycle_events, step_events
from agentry_runtime.contract import META_SK, SORT_KEY
from agentry_runtime.errors import CorruptItemError, StoreError
from agentry_runtime.events import Event, Publisher
from agentry_runtime.observability import logger, metrics
from agentry_runtime.state import utcnow
from agentry_runtime.store import AgentStore, header_from_image

__all__ = ["Announcer", "StreamRecord"]

#: How long an announcement claim holds before another announcer may take it over.
CLAIM_SECONDS = 120
#: How long an announcement record is kept: longer than the stream keeps records (24 h).
RECORD_TTL_SECONDS = 3 * 86_400


@dataclass(frozen=True)
class StreamRecord:
    """One DynamoDB stream record, as the announcer needs it."""

    sequence_number: str
    keys: Mapping[str, Any]
    old_image: Mapping[str, Any] | None
    new_image: Mapping[str, Any] | None

    @classmethod
    def from_lambda(cls, record: Mapping[str, Any]) -> StreamRecord:
        """A record of the event Lambda hands the function (``Records[i]``)."""
        data = record.get("dynamodb") or {}
        return cls(
            sequence_number=str(data.get("SequenceNumber", "")),
            keys=data.get("Keys") or {},
            old_image=data.get("OldImage"),
            new_image=data.get("NewImage"),
        )


@dataclass
class _Planned:
    record: int
    event: Event
    claim: tuple[str, int, int] | None  # (agent id, version, nonce) of a lifecycle event


class Announcer:
    """Publishes the events of header transitions (see the module doc)."""

    def __init__(self, *, store: AgentStore, publisher: Publisher) -> None:
        self.store = store
        self.publisher = publisher

    def announce(self, records: Sequence[StreamRecord]) -> str | None:
        """Publish the events of ``records``; the sequence number to retry from, or ``None``."""
        planned: list[_Planned] = []
        blocked: int | None = None
        for index, record in enumerate(records):
            if not self._plan(index, record, planned):
                # A lifecycle claim is held elsewhere or could not be taken: retry from here.
                blocked = index
                break
        failed = set(self.publisher.publish([p.event for p in planned]))
        for position, item in enumerate(planned):
            if item.claim is None:
                continue
            if position in failed:
                self._release(item.claim)
            else:
                self._finish(item.claim)
        metrics.add_metric(name="EventsAnnounced", unit="Count", value=len(planned) - len(failed))
        if failed:
            metrics.add_metric(name="AnnounceFailures", unit="Count", value=len(failed))
        lowest = min(
            [planned[position].record for position in failed]
            + ([blocked] if blocked is not None else []),
            default=None,
        )
        return None if lowest is None else records[lowest].sequence_number

    def _plan(self, index: int, record: StreamRecord, planned: list[_Planned]) -> bool:
        """Add the record's events to ``planned``; ``False`` if it must wait for a claim."""
        if _sort_key(record.keys) != META_SK or record.new_image is None:
            return True  # not a header, or a header deleted (TTL, DELETE /agents/{id})
        try:
            old = header_from_image(record.old_image) if record.old_image else None
            new = header_from_image(record.new_image)
        except CorruptItemError:
            # Nothing can be announced from it; blocking the shard on it would strand every
            # agent behind it. The reconciler's sweep finds this agent if it waits.
            logger.exception(
                "unreadable header in a stream record", sequence=record.sequence_number
            )
            metrics.add_metric(name="UnreadableStreamRecords", unit="Count", value=1)
            return True
        planned.extend(_Planned(index, event, None) for event in step_events(old, new))
        for event in lifecycle_events(old, new):
            claim = (new.agent_id, new.version, new.nonce)
            if any(p.claim == claim for p in planned):
                continue  # the same record twice in one batch: this batch announces it already
            try:
                claimed = self.store.claim_announcement(
                    new.agent_id,
                    new.version,
                    new.nonce,
                    lease_seconds=CLAIM_SECONDS,
                    ttl=int(utcnow().timestamp()) + RECORD_TTL_SECONDS,
                    owner=record.sequence_number,
                )
            except StoreError:
                logger.warning("could not claim an announcement", agent_id=new.agent_id)
                claimed = None
            if claimed is None:
                return False
            if claimed:
                planned.append(_Planned(index, event, claim))
        return True

    def _finish(self, claim: tuple[str, int, int]) -> None:
        try:
            self.store.finish_announcement(*claim)
        except StoreError:
            # The event is out; failing the batch would publish it again. Left CLAIMED, the
            # record is only re-announced if the stream is replayed after the lease passed.
            logger.warning("could not mark an announcement done", agent_id=claim[0])

    def _release(self, claim: tuple[str, int, int]) -> None:
        try:
            self.store.release_announcement(*claim)
        except StoreError:
            # Then the retry waits for the lease to pass (CLAIM_SECONDS): slower, still safe.
            logger.warning("could not release an announcement claim", agent_id=claim[0])


def _sort_key(keys: Mapping[str, Any]) -> str | None:
    value = keys.get(SORT_KEY)
    return value.get("S") if isinstance(value, Mapping) else None
