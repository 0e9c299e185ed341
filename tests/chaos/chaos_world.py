"""The chaos world: the real runtime over moto, with every managed service between its functions
played by the schedule, and every request going through the faulty wire.

What runs for real: the worker, announcer, api and reconciler *handlers* (Powertools and all),
``AgentLoop``, ``AgentStore``, ``Announcer``/``Publisher``, ``Reconciler``, ``AgentService``, the
model client (boto3 ``bedrock-runtime``, standard retries) against the offline models at the
wire, the tool registries; the recovery state machine's own definition (interpreted, see
``chaos_recovery``); moto's table, stream, bus, rules and queues. The settings are the ``dev``
stack's (``Pulumi.dev.yaml``): queue redrive, batch sizes, timeouts, the stream mapping's
retries, the reconciler's schedule and staleness, recovery's attempts and backoff.

Concurrent invocations of one function get their own copy of its handler module, as two Lambda
containers would (a handler module keeps per-invocation state in module globals).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import random
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.config import Config
from chaos_agents import (
    Executions,
    HostileModel,
    ModelRouter,
    ScriptPlan,
    chaos_tools,
    flight_tools,
    flights_model,
)
from chaos_clock import VirtualClock, time_module
from chaos_conductor import Conductor
from chaos_recovery import RecoveryExecution
from chaos_wire import Target, Trace, Wire
from moto.dynamodb.models import dynamodb_backends
from moto.sqs.models import sqs_backends
from support.harness import REGION, create_agents_table

from agentry_offline.bedrock import FakeBedrockServer
from agentry_offline.events import LambdaContext
from agentry_platform.lib.patterns import error_pattern, step_pattern
from agentry_platform.lib.recovery_definition import recovery_definition
from agentry_runtime.agents import Agent, AgentCatalog
from agentry_runtime.contract import StepRequested
from agentry_runtime.errors import StoreError
from agentry_runtime.events import Publisher
from agentry_runtime.loop import AgentLoop, StepResult
from agentry_runtime.model import ModelClient, ModelSettings
from agentry_runtime.runtime import Runtime, set_runtime
from agentry_runtime.settings import AccessSettings, LoopSettings, ReconcilerSettings
from agentry_runtime.state import ToolClaim
from agentry_runtime.store import AgentStore
from agentry_stacks.deploy.config import EnvironmentConfig, load_stack_config

ACCOUNT = "123456789012"
FLIGHTS = "flights"
#: Lambda's longest timeout: workers that chain run this long.
CHAIN_WORKER_TIMEOUT = 900


@functools.cache
def dev_config() -> EnvironmentConfig:
    """The ``dev`` stack's config: the chaos runs with the settings a real stack deploys."""
    return load_stack_config("dev")


@dataclass(frozen=True)
class Scenario:
    """One agent's life: what it is asked, and by which definition."""

    index: int
    agent: str
    goal: str
    plan: ScriptPlan | None = None
    fail_rate: float = 0.0


@dataclass
class Options:
    """What the runtime is built with: the real defaults, or a deliberately weakened seam."""

    chain: bool = True
    publisher_attempts: int = 4
    recheck_cancellation: bool = True
    #: ``False``: a deliberately broken store whose tool-call claim always succeeds.
    claims: bool = True


class _ClaimlessStore(AgentStore):
    """A deliberately broken store: claiming a tool call ignores its idempotency record."""

    def claim_tool(self, claim: ToolClaim, *, ttl: int | None) -> ToolClaim | None:
        """Write the claim if it is free, and take the call either way (the bug the chaos
        must notice)."""
        super().claim_tool(claim, ttl=ttl)
        return claim


class _NoChainLoop(AgentLoop):
    """The loop with chaining off: every step is one invocation's only step."""

    def handle(
        self,
        event: StepRequested,
        *,
        deadline: float | None = None,
        chain: bool = False,
        on_chain: Callable[[float], None] | None = None,
    ) -> StepResult:
        """Run just the step the event asks for."""
        return super().handle(event, deadline=deadline, chain=False, on_chain=on_chain)


@dataclass
class ChaosContext(LambdaContext):
    """A Lambda context whose remaining time runs on the virtual clock."""

    deadline: float = 0.0
    clock: VirtualClock | None = None

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the invocation's (virtual) deadline."""
        assert self.clock is not None
        return max(0, int((self.deadline - self.clock.now()) * 1000))


class _Containers:
    """Copies of one handler module, one per concurrent invocation (Lambda containers)."""

    _pool: dict[str, list[types.ModuleType]] = {}

    def __init__(self, module: str) -> None:
        self.module = module
        self.busy: set[int] = set()

    def acquire(self) -> types.ModuleType:
        """A copy no running invocation uses."""
        copies = self._pool.setdefault(self.module, [])
        for copy in copies:
            if id(copy) not in self.busy:
                self.busy.add(id(copy))
                return copy
        spec = importlib.util.find_spec(self.module)
        assert spec is not None
        assert spec.loader is not None
        copy = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(copy)
        copies.append(copy)
        self.busy.add(id(copy))
        return copy

    def release(self, copy: types.ModuleType) -> None:
        """The invocation ended: the container is free again."""
        self.busy.discard(id(copy))


@dataclass
class Observations:
    """What the world saw happen, for the invariants."""

    #: Every human notification the recovery state machine sent.
    notifications: list[dict[str, Any]] = field(default_factory=list)
    #: Errors no fault, crash or race explains (a bug): ``(actor, description)``.
    unexpected: list[tuple[str, str]] = field(default_factory=list)
    #: API answers: ``(actor, route, status, faults injected on its calls)``.
    api: list[tuple[str, str, int, int]] = field(default_factory=list)
    #: Stream records the mapping gave up on: ``(first index, last index, forced)``.
    given_up: list[tuple[int, int, bool]] = field(default_factory=list)
    #: Agent ids created per client request (a goal is unique per request).
    created: dict[str, list[str]] = field(default_factory=dict)
    #: Announcers whose mark of a published lifecycle event failed (after the client's
    #: retries): a replay after the claim's lease publishes it again, as documented.
    unmarked: set[str] = field(default_factory=set)


class ChaosWorld:
    """One batch's table, stream, bus, queues, runtime and handlers (see the module doc)."""

    def __init__(
        self, seed: int, scenarios: list[Scenario], options: Options, session: Any
    ) -> None:
        self.seed = seed
        self.scenarios = scenarios
        self.options = options
        self.config = dev_config()
        self.clock = VirtualClock()
        self.trace = Trace(self.clock)
        self.conductor = Conductor(self.clock)
        self.fake_time = time_module(self.clock, self.conductor.sleep)
        self.router = ModelRouter()
        self.wire = Wire(self.conductor, FakeBedrockServer(self.router), self.trace, seed)
        self.executions = Executions(self.stream_length, self._current_actor)
        self.executions.rng = random.Random(seed * 7 + 1)
        self.seen = Observations()
        self.names = f"chaos-{seed}"
        self.worker_timeout = (
            CHAIN_WORKER_TIMEOUT if options.chain else self.config.worker.timeout_seconds
        )

        harness = self._client(session, "dynamodb", Target.HARNESS)
        create_agents_table(harness, self.names)
        self.harness = harness
        self.harness_sqs = self._client(session, "sqs", Target.HARNESS)
        self.harness_events = self._client(session, "events", Target.HARNESS)
        self._queues()
        self._bus()

        dynamodb = self._client(
            session, "dynamodb", Target.DYNAMODB, retries={"mode": "standard", "max_attempts": 5}
        )
        events = self._client(session, "events", Target.EVENTS, retries={"mode": "standard"})
        sqs = self._client(session, "sqs", Target.SQS, retries={"mode": "standard"})
        self.recovery_dynamodb = self._client(
            session, "dynamodb", Target.RECOVERY, retries={"total_max_attempts": 1}
        )
        store_type = AgentStore if options.claims else _ClaimlessStore
        self.store = store_type(self.names, client=dynamodb)
        self._observe_marks()
        agents = AgentCatalog.of(*self._agents(session))
        self.publisher = Publisher(
            self.names,
            client=events,
            attempts=options.publisher_attempts,
            sleep=self.conductor.sleep,
        )
        self.runtime = Runtime(
            store=self.store,
            agents=agents,
            publisher=self.publisher,
            runtime_version="chaos",
            ttl_days=self.config.agent.ttl_days,
            reconciler_settings=ReconcilerSettings(
                stale_after_seconds=self.config.reconciler.stale_after_seconds,
                max_redrives=self.config.reconciler.max_redrives,
                dead_letter_queue_url=self.dlq_url,
            ),
            access=AccessSettings(
                operators=[],
                max_active_agents_per_caller=1000,
                approval_window_seconds=self.config.approvals.window_seconds,
            ),
        )
        self.runtime.sqs = sqs
        loop_type = AgentLoop if options.chain else _NoChainLoop
        self.runtime.loop = loop_type(
            store=self.store,
            agents=agents,
            clock=self.clock.now,
            recheck_cancellation=options.recheck_cancellation,
        )
        set_runtime(self.runtime)
        self.workers = _Containers("agentry_runtime.handlers.worker")
        self.apis = _Containers("agentry_runtime.handlers.api")
        recovery = self.config.recovery
        self.recovery_definition = recovery_definition(
            table_name=self.names,
            topic_arn=f"arn:aws:sns:{REGION}:{ACCOUNT}:{self.names}-humans",
            max_attempts=recovery.max_attempts,
            delay_seconds=recovery.delay_seconds,
            backoff_rate=recovery.backoff_rate,
        )

    # --- building -----------------------------------------------------------------------------

    def _client(
        self, session: Any, service: str, target: Target, *, retries: dict[str, Any] | None = None
    ) -> Any:
        config = Config(retries=retries) if retries else None
        return self.wire.attach(session.client(service, config=config), target)

    def _queues(self) -> None:
        sqs = self.harness_sqs
        self.dlq_url = sqs.create_queue(QueueName=f"{self.names}-steps-dlq")["QueueUrl"]
        dlq_arn = self._queue_arn(self.dlq_url)
        visibility = 6 * self.worker_timeout  # the platform's factor (components/queue.py)
        self.steps_url = sqs.create_queue(
            QueueName=f"{self.names}-steps",
            Attributes={
                "VisibilityTimeout": str(visibility),
                "RedrivePolicy": json.dumps(
                    {
                        "deadLetterTargetArn": dlq_arn,
                        "maxReceiveCount": str(self.config.max_receive_count),
                    }
                ),
            },
        )["QueueUrl"]
        self.steps_arn = self._queue_arn(self.steps_url)
        # Step Functions cannot be a target in moto: the recovery rule fills a queue that the
        # schedule turns into executions (EventBridge's delivery to the state machine).
        self.recovery_url = sqs.create_queue(QueueName=f"{self.names}-recovery")["QueueUrl"]

    def _queue_arn(self, url: str) -> str:
        attributes = self.harness_sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["QueueArn"]
        )
        return str(attributes["Attributes"]["QueueArn"])

    def _bus(self) -> None:
        events = self.harness_events
        events.create_event_bus(Name=self.names)
        for name, pattern, url in (
            ("steps", step_pattern(), self.steps_url),
            ("recovery", error_pattern(), self.recovery_url),
        ):
            events.put_rule(Name=name, EventBusName=self.names, EventPattern=json.dumps(pattern))
            events.put_targets(
                Rule=name,
                EventBusName=self.names,
                Targets=[{"Id": name, "Arn": self._queue_arn(url)}],
            )

    def _agents(self, session: Any) -> list[Agent]:
        agent = self.config.agent
        settings = LoopSettings(
            max_steps=agent.max_steps,
            max_tool_failures=2,
            max_plan_retries=agent.max_plan_retries,
            token_budget=agent.token_budget,
            tool_timeout_seconds=agent.tool_timeout_seconds,
        )
        # Chaining needs the worst case of a model call to fit in the invocation; the offline
        # model answers at once, so a chaining world bounds its timeouts to make plans chain.
        model_settings = (
            functools.partial(ModelSettings, read_timeout_seconds=20.0, connect_timeout_seconds=2.0)
            if self.options.chain
            else ModelSettings
        )
        bedrock = self._client(
            session,
            "bedrock-runtime",
            Target.BEDROCK,
            retries={"mode": "standard", "total_max_attempts": 4},
        )
        agents = []
        flights = flights_model()
        self.router.models[FLIGHTS] = flights
        agents.append(
            Agent(
                name=FLIGHTS,
                system_prompt="You are a travel agent that books flights between US cities.",
                tools=flight_tools(self.executions),
                model=ModelClient(model_settings(model_id=FLIGHTS), client=bedrock),
                settings=settings,
            )
        )
        tools = chaos_tools(self.executions)
        for scenario in self.scenarios:
            self.executions.fail_rates[scenario.agent] = scenario.fail_rate
            if scenario.plan is None:
                continue
            self.router.models[scenario.agent] = HostileModel(scenario.plan)
            agents.append(
                Agent(
                    name=scenario.agent,
                    system_prompt="You carry out the user's errands with your tools.",
                    tools=tools,
                    model=ModelClient(model_settings(model_id=scenario.agent), client=bedrock),
                    settings=settings,
                )
            )
        return agents

    def _observe_marks(self) -> None:
        """Note the announcers whose ``finish_announcement`` failed (the store's own method)."""
        finish = self.store.finish_announcement

        def observed(agent_id: str, version: int, nonce: int) -> None:
            try:
                finish(agent_id, version, nonce)
            except StoreError:
                self.seen.unmarked.add(self._current_actor())
                raise

        self.store.finish_announcement = observed  # type: ignore[method-assign]

    # --- reading moto's state (what the managed services know) --------------------------------

    def stream_records(self) -> list[Any]:
        """Every record of the table's stream so far (moto keeps them all)."""
        table = dynamodb_backends[ACCOUNT][REGION].tables[self.names]
        return list(table.stream_shard.items)

    def stream_length(self) -> int:
        """How many writes the stream holds."""
        return len(dynamodb_backends[ACCOUNT][REGION].tables[self.names].stream_shard.items)

    def queue(self, url: str) -> Any:
        """moto's model of one queue."""
        return sqs_backends[ACCOUNT][REGION].queues[url.rsplit("/", 1)[-1]]

    def context(self, function: str, timeout_seconds: int) -> ChaosContext:
        """A Lambda context for an invocation starting now."""
        return ChaosContext(
            function_name=f"{self.names}-{function}",
            timeout_ms=timeout_seconds * 1000,
            deadline=self.clock.now() + timeout_seconds,
            clock=self.clock,
        )

    def _current_actor(self) -> str:
        actor = self.conductor.current
        return actor.name if actor is not None else "-"

    def recovery(self, name: str) -> RecoveryExecution:
        """A new execution of the recovery state machine (a managed service: never crashes)."""
        return RecoveryExecution(
            self.recovery_definition,
            dynamodb=self.recovery_dynamodb,
            notify=self.seen.notifications.append,
            sleep=self.conductor.sleep,
            entered_time=lambda: self.clock.utcnow().isoformat(),
            execution_id=f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{self.names}:{name}",
        )

    def close(self) -> None:
        """Forget the injected runtime and drop the batch's resources."""
        set_runtime(None)
        while self.executions.hung:  # a batch that never settled: let its tools finish first
            self.executions.release_one(0)
        self.harness.delete_table(TableName=self.names)
        for url in (self.steps_url, self.dlq_url, self.recovery_url):
            self.harness_sqs.delete_queue(QueueUrl=url)
        for rule in ("steps", "recovery"):
            self.harness_events.remove_targets(Rule=rule, EventBusName=self.names, Ids=[rule])
            self.harness_events.delete_rule(Name=rule, EventBusName=self.names)
        self.harness_events.delete_event_bus(Name=self.names)
