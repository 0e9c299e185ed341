"""Seeded random schedules: the chaos plays SQS, EventBridge, the recovery machine and humans.

One schedule starts a batch of agents, then delivers their events one at a time in a random
order; any delivery may be duplicated, handed to two workers at once, or crash at a random
``CrashPoint`` (and is then redelivered, as SQS would once the visibility timeout passes).
Model faults (throttling, server errors, malformed plans, bad tool input) and tool failures are
injected at random moments; ``Agent Error`` events go through the recovery machine; a human
cancels some agents and resumes some of those that ask for help.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass

from chaos_world import LEASE_SECONDS, ChaosWorld, CrashPoint, SimulatedCrash
from pydantic import BaseModel

from agentry_runtime.contract import AgentErrorDetail, DetailType, StepRequested
from agentry_runtime.errors import StaleStepError
from agentry_runtime.loop import StepInProgressError
from agentry_runtime.state import IllegalTransitionError, Status

GOALS = (
    "Book a flight from New York to San Francisco for tomorrow",
    "Book a flight from Boston to Miami for tomorrow",
    "Book a flight from Chicago to Seattle for tomorrow",
    "Book a flight from Seattle to Los Angeles for tomorrow",
    "Book a flight from New York to Denver for tomorrow",  # no such route: answered at once
    "Find me something nice to do",  # not a flight: answered at once
)
#: Deliveries a schedule may make per agent before it counts as never settling.
MAX_DELIVERIES_PER_AGENT = 300

# A redelivery that failed because the worker died or found the call leased elsewhere.
_REDELIVERED = (SimulatedCrash, StepInProgressError, StaleStepError)


@dataclass(frozen=True)
class Chaos:
    """How often each kind of chaos strikes (probabilities per delivery)."""

    reorder: float = 0.6
    duplicate: float = 0.1
    crash: float = 0.15
    concurrent: float = 0.1
    model_fault: float = 0.05
    cancel: float = 0.01
    resume: float = 0.4
    tool_failure: float = 0.35


Event = tuple[DetailType, BaseModel]


class Schedule:
    """One seeded schedule over a batch of agents in one ``ChaosWorld``."""

    def __init__(
        self, world: ChaosWorld, *, chaos: Chaos, advance_clock: Callable[[float], None]
    ) -> None:
        self.world = world
        self.rng = world.rng
        self.chaos = chaos
        self.advance_clock = advance_clock
        self.pending: list[Event] = []
        self.unexpected: list[str] = []
        self.resumed: set[str] = set()
        self.deliveries = 0

    def run(self, agents: int) -> list[str]:
        """Start ``agents`` agents and deliver until nothing is in flight; return their ids."""
        ids = []
        for _ in range(agents):
            header = self.world.service.create(self.rng.choice(GOALS))
            ids.append(header.agent_id)
            # Some agents' tools never fail, some fail often, some always (they need a human).
            self.world.fail_rates[header.agent_id] = self.rng.choice(
                [0.0, 0.0, self.chaos.tool_failure, 1.0]
            )
        self._collect()
        budget = MAX_DELIVERIES_PER_AGENT * agents
        while self.pending or self._human_steps_in(ids):
            while self.pending:
                self.deliveries += 1
                if self.deliveries > budget:
                    raise AssertionError(f"the schedule did not settle in {budget} deliveries")
                self._strike(ids)
                self._deliver_one()
                self._collect()
        if self.unexpected:
            raise AssertionError("unexpected worker errors: " + "; ".join(self.unexpected[:5]))
        return ids

    # --- chaos ----------------------------------------------------------------------------

    def _strike(self, ids: list[str]) -> None:
        """Maybe inject a model fault or cancel an agent before the next delivery."""
        rng = self.rng
        if rng.random() < self.chaos.model_fault:
            faults = self.world.responder.model.faults
            kind = rng.choice(["throttle", "server_error", "malformed", "bad_tool_args"])
            # Four throttles or server errors in a row outlast boto3's retries.
            amount = rng.choice([1, 2, 4]) if kind in ("throttle", "server_error") else 1
            setattr(faults, kind, getattr(faults, kind) + amount)
        if rng.random() < self.chaos.cancel:
            # An agent that already finished cannot be cancelled any more.
            with contextlib.suppress(IllegalTransitionError):
                self.world.service.cancel(rng.choice(ids))

    def _human_steps_in(self, ids: list[str]) -> bool:
        """Resume some agents that wait for a human (each at most once); True if any was."""
        acted = False
        for agent_id in ids:
            if agent_id in self.resumed or self.rng.random() >= self.chaos.resume:
                continue
            if self.world.store.get_header(agent_id).status == Status.NEEDS_HUMAN:
                self.resumed.add(agent_id)
                self.world.service.resume(agent_id, "Please try again.")
                acted = True
        self._collect()
        return acted

    # --- delivery -------------------------------------------------------------------------

    def _collect(self) -> None:
        for event in self.world.publisher.take():
            if event[0] in (DetailType.STEP_REQUESTED, DetailType.AGENT_ERROR):
                self._enqueue(event)

    def _enqueue(self, event: Event) -> None:
        if self.pending and self.rng.random() < self.chaos.reorder:
            self.pending.insert(self.rng.randrange(len(self.pending) + 1), event)
        else:
            self.pending.append(event)

    def _deliver_one(self) -> None:
        rng = self.rng
        event = self.pending.pop(rng.randrange(len(self.pending)) if rng.random() < 0.5 else 0)
        if rng.random() < self.chaos.duplicate:
            self._enqueue(event)  # at-least-once delivery: the same message comes again
        detail_type, detail = event
        if detail_type == DetailType.AGENT_ERROR:
            assert isinstance(detail, AgentErrorDetail)
            step = self.world.recovery.handle(detail)
            if step is not None:
                self._enqueue((DetailType.STEP_REQUESTED, step))
            return
        assert isinstance(detail, StepRequested)
        crash = rng.choice(list(CrashPoint)) if rng.random() < self.chaos.crash else None
        workers = 2 if rng.random() < self.chaos.concurrent else 1
        failed = self._run_workers(detail, crash, workers)
        if failed:
            # Whatever a dead worker leased is abandoned: let the redelivery take it over.
            self.advance_clock(LEASE_SECONDS + 1)
            for _ in range(failed):
                self._enqueue(event)

    def _run_workers(self, event: StepRequested, crash: CrashPoint | None, workers: int) -> int:
        """Handle the event on ``workers`` threads at once; return how many must be redelivered."""
        failures: list[bool] = []
        barrier = threading.Barrier(workers)

        def work(armed: CrashPoint | None) -> None:
            self.world.store.crashes.armed = armed
            try:
                if workers > 1:
                    barrier.wait()
                self.world.loop.handle(event)
                failures.append(False)
            except _REDELIVERED:
                failures.append(True)
            except Exception as exc:  # a bug: reported after the schedule, with its event
                self.unexpected.append(f"{event!r}: {type(exc).__name__}: {exc}")
                failures.append(True)
            finally:
                self.world.store.crashes.armed = None

        if workers == 1:
            work(crash)
        else:
            threads = [
                threading.Thread(target=work, args=(crash if i == 0 else None,))
                for i in range(workers)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        return sum(failures)
