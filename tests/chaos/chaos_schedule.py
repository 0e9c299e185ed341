"""Seeded schedules: the chaos plays every managed service, the clients and the humans.

A schedule starts its batch's agents through the api, then, tick by tick, makes one seeded
choice: which actor takes its next step (and whether its process dies there), or which managed
service acts (the stream mapping invokes the announcer, the queue mapping a worker, EventBridge
starts a recovery execution, the scheduler runs the reconciler). Between choices it may strike:
arm a burst of faults on a client (throttling, 5xx, lost responses, PutEvents partial failures,
transaction conflicts), cancel or resume or follow up an agent (also right before a worker
claims a tool call: "at every point of a step"), make a model answer malformed, release a tool
that hung past its timeout, replay the stream, take the announcer down, jump the clock past
leases, visibility timeouts and staleness.

After the chaos comes the calm: faults disarmed, hung tools released, and the schedule drains
everything, lets time pass and runs the reconciler as its schedule would, until a sweep finds
nothing to do. Then the invariants are checked (``chaos_invariants``).
"""

from __future__ import annotations

import functools
import json
import random
import traceback
from collections import Counter
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from chaos_agents import random_plan
from chaos_conductor import Actor
from chaos_mappings import QueueMapping, StreamMapping
from chaos_wire import Burst, FaultKind, Target
from chaos_world import FLIGHTS, ChaosWorld, Scenario

from agentry_offline.events import decode_body, http_api_event
from agentry_runtime.contract import META_SK, Status, agent_pk
from agentry_runtime.errors import StepInProgressError, StoreError
from agentry_runtime.handlers import reconciler
from agentry_runtime.store import header_from_image

GOALS = (
    "Book a flight from New York to San Francisco for tomorrow",
    "Book a flight from Boston to Miami for tomorrow",
    "Book a flight from Chicago to Seattle for tomorrow",
    "Book a flight from Seattle to Los Angeles for tomorrow",
    "Book a flight from New York to Denver for tomorrow",  # no such route: answered at once
    "Find me something nice to do",  # not a flight: answered at once
)
#: Ticks of chaos per agent of the batch, then the calm.
CHAOS_TICKS_PER_AGENT = 150
#: Ticks a batch may take in all before it counts as never settling.
MAX_TICKS_PER_AGENT = 5000
#: Reconciler sweeps in the calm before the batch counts as never settling.
MAX_SWEEPS = 40


@dataclass(frozen=True)
class Profile:
    """How hard one batch is hit: probabilities per tick, per step or per delivery."""

    crash: float
    fault: float
    human: float
    mid_step_cancel: float
    duplicate: float
    concurrent: float
    redeliver: float
    replay: float
    brownout: float
    outage: float
    release: float
    model_fault: float
    jump: float

    @classmethod
    def draw(cls, rng: random.Random) -> Profile:
        """A profile between calm and violent."""
        level = rng.choice([0.5, 1.0, 1.0, 2.0])
        return cls(
            crash=0.01 * level,
            fault=0.05 * level,
            human=0.02 * level,
            mid_step_cancel=0.05 * level,
            duplicate=0.1 * level,
            concurrent=0.1 * level,
            redeliver=0.05 * level,
            replay=0.002 * level,
            brownout=0.003 * level,
            outage=0.002 * level,
            release=0.05,
            model_fault=0.01 * level,
            jump=0.01 * level,
        )


@dataclass
class _Client:
    """A client's request to start one scenario's agent (retried on failure)."""

    scenario: Scenario
    key: str
    attempts: int = 0
    agent_id: str | None = None
    resumes: int = 0
    follow_ups: int = 0


class NotSettledError(AssertionError):
    """The batch did not come to rest within its budget."""


class Schedule:
    """One seeded schedule over one world (see the module doc)."""

    def __init__(self, world: ChaosWorld, rng: random.Random, profile: Profile) -> None:
        self.world = world
        self.rng = rng
        self.profile = profile
        self.trace = world.trace
        self.conductor = world.conductor
        self.stream = StreamMapping(world, rng, redeliver=profile.redeliver)
        self.queue = QueueMapping(
            world, rng, duplicate=profile.duplicate, concurrent=profile.concurrent
        )
        self.clients = [
            _Client(scenario, f"chaos-{world.seed}-{scenario.index}")
            for scenario in world.scenarios
        ]
        self.period = 60 * world.config.reconciler.schedule_minutes
        self.next_reconcile = world.clock.now() + self.period
        self.reconciling: Actor | None = None
        #: What the schedule did (summed over a run, to show the chaos really struck).
        self.stats: Counter[str] = Counter()
        self.calm = False
        self.ticks = 0
        #: Each actor that ended, and whether it ended well (no crash, no error it raised).
        self.endings: dict[str, bool] = {}
        self.executions = 0

    # --- the run ----------------------------------------------------------------------------

    def run(self) -> None:
        """Play the chaos, then the calm, until the world is at rest."""
        agents = len(self.world.scenarios)
        chaos_ticks = CHAOS_TICKS_PER_AGENT * agents
        sweeps = 0
        while True:
            self.ticks += 1
            if self.ticks > MAX_TICKS_PER_AGENT * agents:
                raise NotSettledError(f"not at rest after {self.ticks} ticks")
            if not self.calm and (
                self.ticks > chaos_ticks or (self._idle() and not self._humans())
            ):
                self._calm_down()
            if not self.calm:
                self._strike()
            if self._act():
                continue
            if self._wait():
                continue
            if not self._idle():
                continue
            # At rest: let the reconciler's staleness pass, as its schedule would.
            sweeps += 1
            if sweeps > MAX_SWEEPS:
                raise NotSettledError(f"still moving after {MAX_SWEEPS} reconciler sweeps")
            if not self._final_sweep():
                return

    def _act(self) -> bool:
        """Make one seeded choice among what can happen now; ``False`` if nothing can."""
        options: list[tuple[float, Any]] = []
        for actor in self.conductor.runnable():
            options.append((10.0, lambda a=actor: self._step(a)))
        for client in self.clients:
            if client.agent_id is None and client.attempts < 4 and not self._creating(client):
                options.append((2.0, lambda c=client: self._create(c)))
        if self.stream.ready():
            options.append((4.0, self._announce))
        if self.queue.ready():
            options.append((4.0, self._work))
        if self.world.queue(self.world.recovery_url)._messages:
            options.append((3.0, self._recover))
        if self.reconciling is None and self.world.clock.now() >= self.next_reconcile:
            options.append((5.0, self._reconcile))
        if self.world.executions.hung and self.rng.random() < self.profile.release:
            options.append((1.0, self._release))
        if not options:
            return False
        total = sum(weight for weight, _ in options)
        pick = self.rng.uniform(0, total)
        for weight, action in options:
            pick -= weight
            if pick <= 0:
                action()
                return True
        options[-1][1]()
        return True

    def _wait(self) -> bool:
        """Nothing can happen now: let time pass to the next moment something can."""
        now = self.world.clock.now()
        moments = [
            self.conductor.next_wake(),
            self.queue.next_visible(),
            self.stream.not_before
            if self.stream.pending() and self.stream.inflight is None
            else None,
        ]
        if not self._idle():
            moments.append(self.next_reconcile)
        future = [m for m in moments if m is not None and m > now]
        if not future:
            return False
        self.world.clock.advance_to(min(future))
        return True

    def _idle(self) -> bool:
        """Nothing runs, nothing is queued, nothing is left to announce."""
        world = self.world
        return (
            not self.conductor.actors
            and all(c.agent_id is not None or c.attempts >= 4 for c in self.clients)
            and self.stream.consumed()
            and self.queue.empty()
            and not world.queue(world.recovery_url)._messages
            and not world.queue(world.dlq_url)._messages
            and not world.executions.hung
        )

    def _calm_down(self) -> None:
        self.calm = True
        self.trace.note("calm: faults disarmed, hung tools released")
        self.world.wire.disarm()
        self.stream.outage = 0
        while self.world.executions.hung:
            self._release()

    def _final_sweep(self) -> bool:
        """Past every lease and staleness, run the reconciler; whether it found work."""
        clock = self.world.clock
        clock.advance(self.world.config.reconciler.stale_after_seconds + self.period)
        self.next_reconcile = clock.now() + self.period
        before = self.world.stream_length()
        actor = self._spawn_reconciler()
        self.conductor.finish(actor)
        self._ended(actor)
        if actor.result is None:
            raise NotSettledError(f"the final reconciler run failed: {actor.error!r}")
        summary = actor.result
        self.trace.note(f"sweep: {json.dumps(summary, sort_keys=True)}")
        return any(summary.values()) or self.world.stream_length() != before

    # --- chaos ------------------------------------------------------------------------------

    def _strike(self) -> None:
        rng, profile, world = self.rng, self.profile, self.world
        if rng.random() < profile.fault:
            self._arm_fault()
        if rng.random() < profile.brownout:
            # The bus answers 200 but fails entries: some, or every one, for 8 to 24 calls.
            share = rng.choice([0.5, 1.0])
            brownout = Burst(Target.EVENTS, FaultKind.PARTIAL, rng.randint(8, 24), share=share)
            if world.wire.arm(brownout):
                self.stats["brownouts"] += 1
        if rng.random() < profile.outage:
            self.stats["outages"] += 1
            self.stream.outage += rng.randint(2, 14)
            self.trace.note(f"stream: announcer outage for {self.stream.outage} invocations")
        if rng.random() < profile.replay:
            self.stream.replay()
        if rng.random() < profile.human:
            self._human()
        if rng.random() < profile.model_fault:
            model = world.router.models[rng.choice(sorted(world.router.models))]
            kind = rng.choice(["malformed", "bad_tool_args"])
            setattr(model.faults, kind, getattr(model.faults, kind) + 1)
            self.trace.note(f"model: next {kind}")
        if rng.random() < profile.jump:
            seconds = rng.choice([5, 5, 40, 40, 130, 130, 700, 1000])
            self.stats["clock jumps"] += 1
            self.trace.note(f"clock: +{seconds} s")
            world.clock.advance(seconds)

    def _arm_fault(self) -> None:
        rng = self.rng
        target = rng.choice(
            [Target.DYNAMODB] * 4
            + [Target.EVENTS] * 2
            + [Target.BEDROCK] * 2
            + [Target.SQS, Target.RECOVERY]
        )
        kinds = [FaultKind.THROTTLE] * 3 + [FaultKind.SERVER_ERROR] * 2 + [FaultKind.LOST] * 2
        kinds += [FaultKind.LOST_5XX]
        if target == Target.DYNAMODB:
            kinds += [FaultKind.TX_CONFLICT]
        if target == Target.RECOVERY:
            # Step Functions' integration sees a server error, applied or not (no timeouts).
            kinds = [FaultKind.THROTTLE, FaultKind.SERVER_ERROR, FaultKind.LOST_5XX]
        if target == Target.EVENTS:
            kinds += [FaultKind.PARTIAL] * 2
        kind = rng.choice(kinds)
        if self.world.wire.arm(Burst(target, kind, rng.choice([1, 1, 2, 3, 5, 8]))):
            self.stats[f"fault {target} {kind}"] += 1

    def _release(self) -> None:
        hung = self.world.executions.hung
        execution = self.world.executions.release_one(self.rng.randrange(len(hung)))
        self.stats["hung tools released"] += 1
        self.trace.note(f"release hung {execution.name} {execution.tool_use_id[-6:]}")

    # --- actors -----------------------------------------------------------------------------

    def _step(self, actor: Actor) -> None:
        rng, profile = self.rng, self.profile
        kill = None
        if not self.calm and actor.crashable and actor.in_function:
            if rng.random() < profile.crash:
                kill = "crash"
            elif (
                actor.kind == "worker"
                and actor.label == "dynamodb.UpdateItem TOOL"
                and rng.random() < profile.mid_step_cancel
            ):
                # A cancel lands right before the worker claims its next tool call.
                agent_id = actor.params["Key"]["pk"]["S"].removeprefix("AGENT#")
                self.stats["cancels mid-step"] += 1
                self.trace.note(f"a cancel lands before {actor.name} claims its next call")
                cancel = self._api("POST", f"/agents/{agent_id}/cancel", None)
                self.conductor.finish(cancel)
                self._ended(cancel)
        self.trace.note(f"{actor.name} > {actor.label}" + (f" [{kill}]" if kill else ""))
        self.conductor.step(actor, kill=kill)
        if actor.done:
            self._ended(actor)

    def _ended(self, actor: Actor) -> None:
        outcome = f"crashed ({actor.crashed})" if actor.crashed else "ended"
        if actor.error is not None:
            outcome = f"raised {type(actor.error).__name__}: {actor.error}"
        self.trace.note(f"{actor.name} {outcome}")
        failed_records = (
            [error for _, error, _ in (actor.result or [])] if actor.kind == "worker" else []
        )
        self.endings[actor.name] = (
            actor.crashed is None
            and actor.error is None
            and not any(isinstance(e, StoreError) for e in failed_records)
        )
        if actor.crashed:
            cause = "timeouts" if actor.crashed == "lambda timeout" else "crashes"
            self.stats[f"{actor.kind} {cause}"] += 1
        if actor.kind == "announcer":
            self.stream.ended(actor)
            self._expected(actor, actor.error)
        elif actor.kind == "worker":
            self.queue.ended(actor)
            self._expected(actor, actor.error)
            for error in failed_records:
                self._expected(actor, error)
        elif actor.kind == "reconciler":
            self.reconciling = None
            self._expected(actor, actor.error)
        elif actor.kind == "recovery":
            if actor.error is not None:
                self._unexpected(actor, actor.error)
        elif actor.kind == "api":
            self._answered(actor)

    def _expected(self, actor: Actor, error: BaseException | None) -> None:
        """Report an error no fault, crash or race explains."""
        if error is None or isinstance(error, StepInProgressError):
            return
        # A store error after the client's retries is what a fault on this invocation's calls
        # (or a burst another caller left) ends in; without any, it is a bug.
        if actor.faults and isinstance(error, StoreError | BotoCoreError | ClientError):
            return
        self._unexpected(actor, error)

    def _unexpected(self, actor: Actor, error: BaseException) -> None:
        text = "".join(traceback.format_exception(error)[-6:])
        self.world.seen.unexpected.append((actor.name, text))

    # --- the managed services ---------------------------------------------------------------

    def _announce(self) -> None:
        self.stream.invoke()

    def _work(self) -> None:
        self.queue.invoke()

    def _recover(self) -> None:
        world = self.world
        messages = world.harness_sqs.receive_message(
            QueueUrl=world.recovery_url, MaxNumberOfMessages=10
        ).get("Messages", [])
        for message in messages:
            world.harness_sqs.delete_message(
                QueueUrl=world.recovery_url, ReceiptHandle=message["ReceiptHandle"]
            )
            event = json.loads(message["Body"])
            # EventBridge delivers to its targets at least once: now and then, twice.
            copies = 2 if not self.calm and self.rng.random() < self.profile.duplicate else 1
            for _ in range(copies):
                self.executions += 1
                execution = world.recovery(f"x{self.executions}")
                actor = self.conductor.spawn(
                    "recovery", functools.partial(execution.run, event), execution=execution
                )
                detail = event["detail"]
                self.trace.note(
                    f"{actor.name}: {detail['agentId'][-4:]} step {detail['step']} "
                    f"{detail['errorType']}"
                )

    def _reconcile(self) -> None:
        now = self.world.clock.now()
        while self.next_reconcile <= now:
            self.next_reconcile += self.period
        self._spawn_reconciler()

    def _spawn_reconciler(self) -> Actor:
        context = self.world.context("reconciler", self.world.config.reconciler.timeout_seconds)
        actor = self.conductor.spawn(
            "reconciler",
            lambda: self.conductor.function(lambda: reconciler.handler({}, context)),
            deadline=context.deadline,
            crashable=not self.calm,
        )
        self.reconciling = actor
        self.trace.note(f"{actor.name}: reconcile")
        return actor

    # --- clients and humans -----------------------------------------------------------------

    def _creating(self, client: _Client) -> bool:
        return any(
            a.kind == "api" and a.info.get("client") is client for a in self.conductor.actors
        )

    def _create(self, client: _Client) -> None:
        client.attempts += 1
        scenario = client.scenario
        body = {"goal": scenario.goal}
        if scenario.agent != FLIGHTS:
            body["agent"] = scenario.agent
        # Creating is never crashed: Powertools expires an in-progress idempotency record on
        # the real clock, which would make a retry's answer depend on how fast the test runs.
        self._api("POST", "/agents", body, key=client.key, client=client, crashable=False)

    def _humans(self) -> bool:
        """Everything rests: a person may still resume or follow up an agent; whether one did."""
        for client in self.clients:
            status = self._status(client.agent_id)
            if status == Status.NEEDS_HUMAN and client.resumes < 2 and self.rng.random() < 0.7:
                client.resumes += 1
                self.stats["resumes"] += 1
                path = f"/agents/{client.agent_id}/resume"
                self._api("POST", path, {"instruction": "Please try again."})
                return True
            if status == Status.COMPLETED and client.follow_ups < 1 and self.rng.random() < 0.5:
                client.follow_ups += 1
                self.stats["follow-ups"] += 1
                path = f"/agents/{client.agent_id}/messages"
                self._api("POST", path, {"text": "One more thing, please."})
                return True
        return False

    def _human(self) -> None:
        known = [c for c in self.clients if c.agent_id is not None]
        if not known:
            return
        client = self.rng.choice(known)
        agent_id = client.agent_id
        status = self._status(agent_id)
        roll = self.rng.random()
        if status == Status.NEEDS_HUMAN and client.resumes < 2:
            client.resumes += 1
            self.stats["resumes"] += 1
            self._api("POST", f"/agents/{agent_id}/resume", {"instruction": "Please try again."})
        elif status == Status.COMPLETED and client.follow_ups < 1 and roll < 0.6:
            client.follow_ups += 1
            self.stats["follow-ups"] += 1
            self._api("POST", f"/agents/{agent_id}/messages", {"text": "One more thing, please."})
        elif roll < 0.25:
            self.stats["cancels"] += 1
            self._api("POST", f"/agents/{agent_id}/cancel", None)
        elif roll < 0.45:
            # A person resumes an agent that does not wait for one: refused (409), no harm.
            self._api("POST", f"/agents/{agent_id}/resume", {"instruction": "Go on."})
        else:
            self._api("GET", f"/agents/{agent_id}", None)

    def _status(self, agent_id: str | None) -> Status | None:
        item = self.world.harness.get_item(
            TableName=self.world.names,
            Key={"pk": {"S": agent_pk(agent_id or "")}, "sk": {"S": META_SK}},
            ConsistentRead=True,
        ).get("Item")
        return None if item is None else header_from_image(item).status

    def _api(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        *,
        key: str | None = None,
        client: _Client | None = None,
        crashable: bool = True,
    ) -> Actor:
        world = self.world
        headers = {"idempotency-key": key} if key else None
        event = http_api_event(method, path, body=body, headers=headers)
        context = world.context("api", world.config.api.timeout_seconds)
        container = world.apis.acquire()

        def request() -> dict[str, Any]:
            try:
                return dict(self.conductor.function(lambda: container.handler(event, context)))
            finally:
                world.apis.release(container)

        actor = self.conductor.spawn(
            "api",
            request,
            deadline=context.deadline,
            crashable=crashable and not self.calm,
            client=client,
            route=_route(method, path),
        )
        self.trace.note(f"{actor.name}: {method} {path}")
        return actor

    def _answered(self, actor: Actor) -> None:
        route = actor.info["route"]
        client: _Client | None = actor.info.get("client")
        if actor.crashed or actor.error is not None:
            status = 500
            if actor.error is not None and not actor.faults:
                self._unexpected(actor, actor.error)
        else:
            status = int(actor.result["statusCode"])
            if status == 202 and client is not None:
                client.agent_id = decode_body(actor.result)["agentId"]
                self.trace.note(f"{actor.name}: created {client.agent_id}")
        self.world.seen.api.append((actor.name, route, status, actor.faults))


def _route(method: str, path: str) -> str:
    parts = path.strip("/").split("/")
    if len(parts) == 1:
        return f"{method} agents"
    return f"{method} agent" + (f" {parts[2]}" if len(parts) > 2 else "")


def scenarios_for(seed: int, rng: random.Random, count: int) -> list[Scenario]:
    """The batch's scenarios: flight agents and scripted ones, drawn from the seed."""
    scenarios = []
    for index in range(count):
        reference = f"Reference R-{seed}-{index}."
        if rng.random() < 0.4:
            goal = f"{rng.choice(GOALS)}. {reference}"
            fail_rate = rng.choice([0.0, 0.0, 0.35, 1.0])
            scenarios.append(Scenario(index, FLIGHTS, goal, fail_rate=fail_rate))
        else:
            plan = random_plan(rng)
            name = f"errands-{index}"
            goal = f"Run my errands. {reference}"
            fail_rate = rng.choice([0.0, 0.3, 1.0])
            scenarios.append(Scenario(index, name, goal, plan=plan, fail_rate=fail_rate))
    return scenarios


def seeded_agent_ids(seed: int) -> Any:
    """``new_agent_id`` for one batch: agent ids drawn from the seed (runs repeat exactly)."""
    rng = random.Random(f"agent-ids-{seed}")

    def new_agent_id() -> str:
        return f"agent-{rng.getrandbits(128):032x}"

    return new_agent_id


__all__ = ["NotSettledError", "Profile", "Schedule", "scenarios_for", "seeded_agent_ids"]
