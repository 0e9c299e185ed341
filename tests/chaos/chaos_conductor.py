"""Deterministic interleaving: every function invocation is an actor that runs call by call.

A chaos world runs many things at once: worker invocations, announcer invocations, api
requests, reconciler runs, recovery executions. Each runs on its own thread as an *actor*, but
only one actor runs at any moment, and only between two AWS calls: before every call an actor
hands control back to the schedule (a botocore ``before-call`` hook calls
:meth:`Conductor.yield_point`), and the schedule's seeded random choice says who goes next. So
two workers interleave at the granularity of their DynamoDB calls, a cancel lands between any
two calls of a step, and the same seed gives the same interleaving on every run.

A process crash is an actor that is resumed with a kill: :class:`SimulatedCrash` is raised at
its yield point, before the call it was about to make (a ``BaseException``, so no ``except
Exception`` of the code under test can swallow it, as nothing survives a dead process). Lambda's
timeout is the same kill, when the virtual clock has passed the invocation's deadline.

Threads that are not actors (a tool's own thread, a hung tool released later) pass through the
yield points: they run while the actor that owns them waits for them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chaos_clock import VirtualClock

#: Real seconds an actor may run between two yield points before the schedule gives up on it.
HANG_SECONDS = 60


class SimulatedCrash(BaseException):
    """The actor's process died at this point (crash, or Lambda's timeout)."""


@dataclass(eq=False)
class Actor:
    """One invocation (or execution) running on its own thread, one step at a time."""

    name: str
    kind: str
    fn: Callable[[], Any]
    #: Virtual time after which Lambda kills the invocation (``None``: no timeout).
    deadline: float | None = None
    #: Whether the schedule may kill it: functions may die, managed services do not.
    crashable: bool = False
    #: What it is about to do (``dynamodb.PutItem MSG`` ...), for traces and targeting.
    label: str = "start"
    #: The parameters of the call it is about to make.
    params: dict[str, Any] = field(default_factory=dict)
    wake_at: float = 0.0
    #: Faults injected on its calls (an error it then raised is explained by them).
    faults: int = 0
    #: Inside the function's own code (only there can it crash).
    in_function: bool = False
    done: bool = False
    result: Any = None
    error: BaseException | None = None
    crashed: str | None = None
    #: Set by the schedule: the reason it dies at its next resumption.
    kill: str | None = None
    go: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    info: dict[str, Any] = field(default_factory=dict)


class Conductor:
    """Runs actors one step at a time (see the module doc)."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.actors: list[Actor] = []
        self.current: Actor | None = None
        self._back = threading.Semaphore(0)
        self._local = threading.local()
        self._names = 0

    # --- the schedule's side ----------------------------------------------------------------

    def spawn(
        self,
        kind: str,
        fn: Callable[[], Any],
        *,
        deadline: float | None = None,
        crashable: bool = False,
        **info: Any,
    ) -> Actor:
        """A new actor, paused before its first line."""
        self._names += 1
        actor = Actor(
            name=f"{kind}{self._names}",
            kind=kind,
            fn=fn,
            deadline=deadline,
            crashable=crashable,
            info=info,
        )
        thread = threading.Thread(target=self._body, args=(actor,), name=actor.name, daemon=True)
        thread.start()
        self.actors.append(actor)
        return actor

    def runnable(self) -> list[Actor]:
        """Actors that may take a step now (not asleep)."""
        now = self.clock.now()
        return [a for a in self.actors if a.wake_at <= now]

    def next_wake(self) -> float | None:
        """The earliest moment a sleeping actor wakes, if one sleeps."""
        sleeping = [a.wake_at for a in self.actors if a.wake_at > self.clock.now()]
        return min(sleeping, default=None)

    def step(self, actor: Actor, *, kill: str | None = None) -> None:
        """Let ``actor`` run to its next yield point (or its end); kill it there if asked."""
        if actor.done:
            raise RuntimeError(f"{actor.name} already ended")
        timed_out = (
            actor.in_function and actor.deadline is not None and self.clock.now() > actor.deadline
        )
        actor.kill = "lambda timeout" if timed_out else kill
        actor.wake_at = 0.0
        self.current = actor
        actor.go.release()
        if not self._back.acquire(timeout=HANG_SECONDS):
            raise RuntimeError(
                f"{actor.name} did not yield within {HANG_SECONDS} s at {actor.label}"
            )
        self.current = None
        if actor.done:
            self.actors.remove(actor)

    def finish(self, actor: Actor, *, limit: int = 100_000) -> None:
        """Run ``actor`` to its end with nothing else interleaved (no kills)."""
        for _ in range(limit):
            if actor.done:
                return
            self.clock.advance_to(actor.wake_at)
            self.step(actor)
        raise RuntimeError(f"{actor.name} did not end within {limit} steps")

    # --- the actors' side -------------------------------------------------------------------

    def actor(self) -> Actor | None:
        """The actor whose thread this is (``None`` on other threads)."""
        return getattr(self._local, "actor", None)

    def yield_point(self, label: str, params: dict[str, Any] | None = None) -> None:
        """Hand control back to the schedule; on resumption, die if the schedule says so."""
        actor = self.actor()
        if actor is None or self.current is not actor:
            return  # a tool's thread: it runs while its actor waits for it
        actor.label = label
        actor.params = params or {}
        self._back.release()
        actor.go.acquire()
        if actor.kill is not None and actor.in_function and actor.crashable:
            reason, actor.kill = actor.kill, None
            raise SimulatedCrash(reason)
        actor.kill = None

    def sleep(self, seconds: float) -> None:
        """Sleep in virtual time: an actor yields until the clock reaches its wake time."""
        actor = self.actor()
        if actor is None or self.current is not actor:
            self.clock.advance(seconds)
            return
        actor.wake_at = self.clock.now() + max(seconds, 0.0)
        self.yield_point(f"sleep {seconds:.3f}")

    def function(self, call: Callable[[], Any]) -> Any:
        """Run a function's code (crashable); its end is a yield point too (dying before
        answering loses the answer, as a crash after the last write does)."""
        actor = self.actor()
        assert actor is not None, "function() runs on an actor's thread"
        actor.in_function = True
        try:
            result = call()
            self.yield_point("return")
            return result
        finally:
            actor.in_function = False

    def _body(self, actor: Actor) -> None:
        self._local.actor = actor
        actor.go.acquire()
        try:
            actor.result = actor.fn()
        except SimulatedCrash as crash:
            actor.crashed = str(crash)
        except BaseException as exc:  # reported by the schedule with the actor's trace
            actor.error = exc
        finally:
            actor.done = True
            self._back.release()
