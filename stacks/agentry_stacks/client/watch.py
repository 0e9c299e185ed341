"""Following an agent's timeline by polling: status changes and new turns, until it ends or
waits for a person.

Each round reads ``GET /agents/{id}`` and, when its ``messageCount`` grew, the new messages
from ``GET /agents/{id}/messages`` (resuming from the last page's cursor, so a long history is
read once). The API has no push channel, so polling is the way to follow it; the interval
keeps the load on the API small.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from agentry_runtime.contract import HUMAN_WAITS, TERMINAL, Status
from agentry_stacks.client.api import AgentsClient
from agentry_stacks.client.errors import WatchTimeoutError

__all__ = [
    "EXIT_COMPLETED",
    "EXIT_NEEDS_HUMAN",
    "EXIT_OTHER",
    "TimelineEvent",
    "TimelineKind",
    "Watcher",
    "exit_code_for",
    "is_settled",
]

EXIT_COMPLETED = 0
EXIT_OTHER = 1
EXIT_NEEDS_HUMAN = 3

_PAGE = 100


def exit_code_for(status: str) -> int:
    """As ``agentry local run``: 0 COMPLETED, 3 when a person must act (NEEDS_HUMAN,
    AWAITING_APPROVAL), 1 for anything else."""
    if status == Status.COMPLETED:
        return EXIT_COMPLETED
    return EXIT_NEEDS_HUMAN if status in HUMAN_WAITS else EXIT_OTHER


def is_settled(status: str) -> bool:
    """Whether nothing will change without a person: the agent ended or waits for one."""
    return status in TERMINAL or status in HUMAN_WAITS


class TimelineKind(StrEnum):
    """What a timeline event reports."""

    STATUS = "status"
    MESSAGE = "message"


@dataclass(frozen=True)
class TimelineEvent:
    """A status change (``status``, ``previous``) or a new message (``message`` as
    ``/messages`` returns it: seq, role, origin, step, content)."""

    kind: TimelineKind
    agent_id: str
    status: str | None = None
    previous: str | None = None
    message: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The event as one JSON object (``watch --json`` prints one per line)."""
        body: dict[str, Any] = {"kind": self.kind.value, "agentId": self.agent_id}
        if self.kind is TimelineKind.STATUS:
            body.update(status=self.status, previous=self.previous)
        else:
            body["message"] = self.message
        return body


class Watcher:
    """Polls one agent every ``interval`` seconds; see the module doc.

    :meth:`events` yields until the agent is settled (``status`` then holds its status), or
    raises ``WatchTimeoutError`` after ``timeout`` seconds. ``sleep`` and ``clock`` are
    injectable so a test never waits.
    """

    def __init__(
        self,
        client: AgentsClient,
        agent_id: str,
        *,
        interval: float = 2.0,
        timeout: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.agent_id = agent_id
        self.interval = interval
        self.timeout = timeout
        self.status: str | None = None
        self._sleep = sleep
        self._clock = clock
        self._seen = 0  # messages seen: the next one has this seq
        self._cursor: str | None = None  # the cursor of the page that holds message _seen

    def events(self) -> Iterator[TimelineEvent]:
        """The agent's timeline from its first message, then live; see the class doc."""
        started = self._clock()
        while True:
            view = self.client.get(self.agent_id)
            count = int(view.get("context", {}).get("messageCount", 0))
            if count > self._seen:
                yield from self._new_messages()
            status = str(view["status"])
            if status != self.status:
                previous, self.status = self.status, status
                yield TimelineEvent(
                    TimelineKind.STATUS, self.agent_id, status=status, previous=previous
                )
            if is_settled(status):
                return
            if self.timeout is not None and self._clock() - started >= self.timeout:
                raise WatchTimeoutError(
                    f"{self.agent_id} is still {status} after {self.timeout:g} s"
                )
            self._sleep(self.interval)

    def _new_messages(self) -> Iterator[TimelineEvent]:
        while True:
            page = self.client.messages(self.agent_id, limit=_PAGE, cursor=self._cursor)
            for message in page.get("messages", []):
                if int(message["seq"]) >= self._seen:
                    self._seen = int(message["seq"]) + 1
                    yield TimelineEvent(TimelineKind.MESSAGE, self.agent_id, message=message)
            following = page.get("nextCursor")
            if not following:
                # The last page is read again next time (its cursor is kept): new messages
                # land on it, and the ones already seen are skipped by seq.
                return
            self._cursor = following
