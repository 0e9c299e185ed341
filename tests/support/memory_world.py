"""The unit test world: the real loop, store and service over in-memory AWS, with no I/O.

``MemoryWorld`` is ``World`` (``support.world``) without moto, sockets or handlers: the table is
a :class:`~support.memory_store.MemoryDynamoDB`, the model a
:class:`~support.stub_bedrock.StubBedrock` in front of an offline responder, and the world
plays the announcer and the queue with the runtime's own pure decision: each header write the
table records is passed to ``announce.announcements`` (what the announcer would publish), step
events go to a FIFO queue, and :meth:`MemoryWorld.run` delivers them to ``AgentLoop.handle``
as a worker of ``worker_seconds`` would (chaining when its worst case fits). What only the
wiring does (the stream's delivery, claims on announcements, EventBridge rules, SQS
visibility, the handlers' parsing) is tested on moto, with ``World``.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agentry_flights import bookings
from agentry_offline.bedrock import Responder
from agentry_offline.model import OfflineModel
from agentry_runtime.announce import announcements
from agentry_runtime.contract import META_SK, SORT_KEY, DetailType, StepRequested
from agentry_runtime.events import Publisher
from agentry_runtime.handlers.worker import _MARGIN_SECONDS as WORKER_MARGIN_SECONDS
from agentry_runtime.loop import StepResult
from agentry_runtime.settings import LoopSettings
from agentry_runtime.store import AgentStore, header_from_image
from agentry_runtime.tools import ToolRegistry
from support.agents import flights_agent, single_agent_runtime
from support.memory_store import memory_table
from support.stub_bedrock import StubBedrock

__all__ = ["TABLE", "MemoryWorld"]

TABLE = "agentry-unit-agents"


class _NoBus:
    """The unit world has no bus: only the announcer publishes, and it is not part of it."""

    def put_events(self, **_: Any) -> Any:
        raise AssertionError("the unit layer publishes nothing: test the announcer on moto")


@dataclass
class MemoryWorld:
    """The flight agent (or ``tools``), the loop and the service over the in-memory table."""

    responder: Responder = field(default_factory=OfflineModel)
    tools: ToolRegistry | None = None
    settings: LoopSettings = field(default_factory=LoopSettings)
    #: Invocation length of the worker (it chains while a next step's worst case fits).
    worker_seconds: float = 60.0
    #: Total attempts of the model client (boto3's ``standard`` retry mode).
    model_attempts: int = 4

    def __post_init__(self) -> None:
        self.dynamodb = memory_table(TABLE)
        self.bedrock = StubBedrock(self.responder, total_max_attempts=self.model_attempts)
        self.store = AgentStore(TABLE, client=self.dynamodb)
        self.agent = flights_agent(tools=self.tools, bedrock=self.bedrock, settings=self.settings)
        self.runtime = single_agent_runtime(
            self.store, Publisher("agentry-unit", client=_NoBus()), self.agent
        )
        self.loop = self.runtime.loop
        self.service = self.runtime.service
        #: Step events announced and not delivered yet, oldest first.
        self.queue: deque[StepRequested] = deque()
        #: Every step event delivered, in order (a redelivery is a new entry).
        self.delivered: list[StepRequested] = []
        #: What each delivery's ``handle`` returned.
        self.results: list[StepResult] = []
        #: Lifecycle events announced so far: ``(detail type, detail)``.
        self.events: list[tuple[DetailType, Any]] = []
        self._position = 0

    # --- agents -----------------------------------------------------------------------------

    def start(self, goal: str) -> str:
        """Create an agent as the api does; return its id."""
        return self.service.create(goal).agent_id

    def bookings(self, agent_id: str) -> list[dict[str, Any]]:
        """The bookings the flight tool stored for an agent."""
        return bookings(self.dynamodb, TABLE, agent_id)

    def header_writes(self, agent_id: str) -> int:
        """How many times the agent's header was written."""
        return sum(
            1
            for change in self.dynamodb.changes
            if change.keys[SORT_KEY]["S"] == META_SK
            and change.keys["pk"]["S"] == f"AGENT#{agent_id}"
        )

    # --- delivery ---------------------------------------------------------------------------

    def announce(self) -> None:
        """Turn the header writes since the last call into events, as the announcer would."""
        changes = self.dynamodb.changes[self._position :]
        self._position += len(changes)
        for change in changes:
            if change.keys[SORT_KEY]["S"] != META_SK or change.new is None:
                continue
            old = None if change.old is None else header_from_image(change.old)
            for detail_type, detail in announcements(old, header_from_image(change.new)):
                if isinstance(detail, StepRequested):
                    self.queue.append(detail)
                else:
                    self.events.append((detail_type, detail))

    def skip_announcements(self) -> None:
        """Forget the writes not announced yet, as a stream mapping past its record age does."""
        self._position = len(self.dynamodb.changes)

    def deliver(self, event: StepRequested, *, chain: bool = True) -> StepResult:
        """Hand one step event to the loop, as a worker of ``worker_seconds`` does."""
        self.delivered.append(event)
        # As the worker handler computes it from the invocation's remaining time.
        deadline = time.time() + self.worker_seconds - WORKER_MARGIN_SECONDS
        result = self.loop.handle(event, deadline=deadline, chain=chain)
        self.results.append(result)
        return result

    def run(
        self,
        *,
        duplicate: bool = False,
        max_deliveries: int = 500,
        before_delivery: Callable[[StepRequested], None] | None = None,
    ) -> int:
        """Announce and deliver step events until nothing moves; how many were delivered.

        With ``duplicate``, each event is delivered twice, as one batch holding it twice: the
        first copy does not chain (only a batch's last record does).
        """
        for count in range(max_deliveries):
            self.announce()
            if not self.queue:
                return count
            event = self.queue.popleft()
            if before_delivery is not None:
                before_delivery(event)
            if duplicate:
                self.deliver(event, chain=False)
            self.deliver(event)
        raise AssertionError(f"the agent did not settle in {max_deliveries} deliveries")

    def observed(self, detail_type: DetailType) -> list[Any]:
        """The details of the lifecycle events of one type announced so far."""
        self.announce()
        return [detail for kind, detail in self.events if kind == detail_type]
