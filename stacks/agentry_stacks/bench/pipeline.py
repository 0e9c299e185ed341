"""Every AWS request a step costs end to end: a scripted agent on the local environment.

The local environment runs the stack's own graph: the api, worker and announcer handlers
in-process, the table's stream emulated through the announcer's filter, the bus delivering to
the step queue in moto, and a scripted model behind the fake Bedrock endpoint. One agent of
the stack plays a script of ``turns`` tool calls and a final answer (``2 * turns + 1`` steps),
twice: with the worker never chaining, and as the stack runs it (chaining when the next step's
worst case fits the invocation).

What is counted, per step:

- every call the handlers make (DynamoDB, model, EventBridge, SQS), through the meter, armed
  only inside an invocation (so the harness's own reads are not counted);
- Lambda invocations: the worker's and the api's as they happen; the announcer's as one per
  stream record it receives (in AWS each commit is a model call apart from the next, so with
  no batching window each record is an invocation of its own; the local poller batches them);
- the SQS requests Lambda's event source mapping makes for a batch (the receive that returns
  it and the delete of its successes) and the ``SendMessage`` of each event EventBridge
  delivers to the queue. Empty receives while the queue is idle depend on time, not on steps:
  they are left out, as are the stream's reads (free for Lambda triggers).

A step's cycle is its announcement, its delivery (queue and invocation) and its own calls. The
run's fixed cost, reported apart, is what is not in any cycle: creating the agent (the api's
invocation) and what follows the last step (the completion's announcement). The steady state
is the rest over the steps; per kind (unchained), each cycle is counted for the step it runs.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3

from agentry_offline.script import Script, ScriptCall, ScriptTurn
from agentry_runtime.contract import Env, Handler, StepKind
from agentry_runtime.loop import AgentLoop, StepResult
from agentry_stacks.bench.meter import AwsMeter, Usage
from agentry_stacks.bench.report import PerStep, RunFigures

__all__ = ["DEFAULT_TURNS", "TOOL_CALL", "measure_run", "with_max_steps"]

#: Tool-call turns of the scripted agent (then one final answer): 51 steps.
DEFAULT_TURNS = 25
#: The flight demo's lookup: a pure read of the toolset's data, no AWS call of its own.
TOOL_CALL = ScriptCall(
    name="get_flight_info",
    input={"origin": "New York", "destination": "San Francisco", "date": "2099-06-01"},
)
GOAL = "Compare the flights from New York to San Francisco on every day of June 2099"


def script(turns: int) -> Script:
    """``turns`` identical lookups, then an answer."""
    calls = [ScriptTurn(tool_use=[TOOL_CALL]) for _ in range(turns)]
    return Script(turns=[*calls, ScriptTurn(text="The cheapest is AG101 every day.")])


def with_max_steps(graph: Mapping[str, Any], agent: str, max_steps: int) -> dict[str, Any]:
    """The graph with ``agent``'s step limit raised to ``max_steps`` in every function."""
    document = json.loads(json.dumps(graph))
    for resource in document["resources"]:
        variables = ((resource.get("inputs") or {}).get("environment") or {}).get("variables")
        if not variables or Env.AGENTS.value not in variables:
            continue
        agents = json.loads(variables[Env.AGENTS.value])
        agents[agent]["maxSteps"] = max(int(agents[agent]["maxSteps"]), max_steps)
        variables[Env.AGENTS.value] = json.dumps(agents)
    return document


class _NeverChains:
    """The worker's loop with chaining turned off: every step goes back through the queue."""

    def __init__(self, loop: AgentLoop) -> None:
        self._loop = loop

    def handle(self, event: Any, **options: Any) -> StepResult:
        """The loop's ``handle``, told never to chain."""
        return self._loop.handle(event, **{**options, "chain": False})

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loop, name)


@dataclass
class _Recorder:
    """Counts invocations and the event source mapping's requests; snapshots per invocation."""

    meter: AwsMeter
    step_of: Callable[[], int]
    #: The meter's totals when the run started: snapshots are taken relative to them.
    start: Usage = field(default_factory=Counter)
    #: After each worker invocation: steps committed so far, the batch's kind, the totals.
    snapshots: list[tuple[int, StepKind | None, Usage]] = field(default_factory=list)
    seen_messages: set[str] = field(default_factory=set)
    #: What the api's invocations cost (creating the agent: the run's fixed cost).
    api: Usage = field(default_factory=Counter)

    def wrap(self, function: Any) -> None:
        """Count ``function``'s invocations and meter the calls it makes while it runs."""
        handler = function.entry_point
        invoke = function.invoke

        def metered(event: dict[str, Any]) -> Any:
            records = event.get("Records") or []
            before = Counter(self.meter.totals)
            if handler == Handler.ANNOUNCER.value:
                self.meter.add("calls.lambda.announcer", len(records))
            elif handler == Handler.WORKER.value:
                self._delivered(records)
            else:
                self.meter.add(f"calls.lambda.{handler.split('.')[-2]}")
            with self.meter.armed():
                result = invoke(event)
            if handler == Handler.API.value:
                self.api.update(self.meter.totals)
                self.api.subtract(before)
            if handler == Handler.WORKER.value:
                failed = len((result or {}).get("batchItemFailures", []))
                if failed < len(records):
                    self.meter.add("calls.sqs.esm.DeleteMessageBatch")
                with self.meter.disarmed():
                    step = self.step_of()
                usage = Counter(self.meter.totals)
                usage.subtract(self.start)
                self.snapshots.append((step, _kind(records), usage))
            return result

        function.invoke = metered

    def _delivered(self, records: list[dict[str, Any]]) -> None:
        self.meter.add("calls.lambda.worker")
        self.meter.add("calls.sqs.esm.ReceiveMessage")
        for record in records:
            if record.get("messageId") not in self.seen_messages:
                self.seen_messages.add(str(record.get("messageId")))
                self.meter.add("calls.sqs.eventbridge.SendMessage")


def _kind(records: list[dict[str, Any]]) -> StepKind | None:
    kinds = {json.loads(r.get("body") or "{}").get("detail", {}).get("kind") for r in records}
    return StepKind(kinds.pop()) if len(kinds) == 1 and None not in kinds else None


def measure_run(
    graph: Mapping[str, Any], meter: AwsMeter, *, agent: str, turns: int, chained: bool
) -> RunFigures:
    """Run the scripted agent once on ``graph`` and count what its steps cost (module doc)."""
    # Imported late: the local environment loads moto and the offline tooling.
    from agentry_stacks.local import LocalEnvironment

    document = with_max_steps(graph, agent, 2 * turns + 5)
    with LocalEnvironment(graph=document, script=script(turns)) as env:
        meter.reader = boto3.client("dynamodb", region_name=env.graph.region())
        functions = {f.entry_point: f for f in env.functions.values()}
        worker = functions[Handler.WORKER.value]
        if not chained:
            worker.runtime.__dict__["loop"] = _NeverChains(worker.runtime.loop)
        agent_ids: list[str] = []

        def step_of() -> int:
            return worker.runtime.store.get_header(agent_ids[0]).step if agent_ids else 0

        before = Counter(meter.totals)
        recorder = _Recorder(meter, step_of, start=before)
        for function in functions.values():
            recorder.wrap(function)
        started = time.perf_counter()
        agent_ids.append(env.start(GOAL, agent=agent))
        env.run_until_idle()
        seconds = time.perf_counter() - started
        with meter.disarmed():
            header = worker.runtime.store.get_header(agent_ids[0])
        total = Counter(meter.totals)
        total.subtract(before)
    if str(header.status) != "COMPLETED":
        raise RuntimeError(f"the scripted agent ended {header.status}, not COMPLETED")
    return _figures(recorder, total, steps=header.step, chained=chained, seconds=seconds)


def _figures(
    recorder: _Recorder, total: Usage, *, steps: int, chained: bool, seconds: float
) -> RunFigures:
    # Fixed: creating the agent (the api's invocation) and what follows the last step (the
    # completion's announcement). Everything else is the steps' cycles: their steady state.
    fixed = Counter(recorder.api)
    fixed.update(total)
    fixed.subtract(recorder.snapshots[-1][2])
    cycles = Counter(total)
    cycles.subtract(fixed)
    by_kind: dict[str, PerStep] = {}
    if not chained:
        windows: dict[StepKind, tuple[Usage, int]] = {}
        previous: tuple[int, Usage] = (0, Counter(recorder.api))
        for step, kind, usage in recorder.snapshots:
            if kind is not None:
                window, count = windows.get(kind, (Counter(), 0))
                window.update(usage)
                window.subtract(previous[1])
                windows[kind] = (window, count + step - previous[0])
            previous = (step, usage)
        by_kind = {str(kind): _per_step(usage, n) for kind, (usage, n) in sorted(windows.items())}
    invocations = int(total["calls.lambda.worker"])
    return RunFigures(
        mode="chained" if chained else "unchained",
        steps=steps,
        worker_invocations=invocations,
        steps_per_worker_invocation=round(steps / invocations, 2),
        steady=_per_step(cycles, steps),
        by_kind=by_kind,
        fixed=_per_step(fixed, 1),
        seconds=round(seconds, 3),
    )


def _per_step(usage: Usage, steps: int) -> PerStep:
    def each(key: str) -> float:
        return round(float(usage[key]) / steps, 3)

    sqs_keys = sorted(k for k in usage if k.startswith("calls.sqs.") and usage[k])
    lambdas = sorted(k for k in usage if k.startswith("calls.lambda.") and usage[k])
    sqs = {k.removeprefix("calls.sqs."): each(k) for k in sqs_keys}
    # The runtime's own SQS calls are counted by the meter under their operation names.
    sqs |= {
        f"runtime.{k.removeprefix('op.sqs.')}": each(k)
        for k in sorted(usage)
        if k.startswith("op.sqs.") and usage[k]
    }
    dynamodb, model = each("calls.dynamodb"), each("calls.bedrock-runtime")
    events, states = each("calls.events"), each("calls.stepfunctions")
    sqs_total = round(sum(sqs.values()), 3)
    invocations = {k.removeprefix("calls.lambda."): each(k) for k in lambdas}
    lambda_total = round(sum(invocations.values()), 3)
    return PerStep(
        aws_calls=round(dynamodb + model + events + states + sqs_total + lambda_total, 3),
        dynamodb=dynamodb,
        model=model,
        eventbridge=events,
        sqs=sqs_total,
        lambda_invocations=lambda_total,
        step_functions=states,
        write_units=each("write_units"),
        read_units=each("read_units"),
        bytes_written=each("bytes_written"),
        sqs_by_request=sqs,
        lambda_by_function=invocations,
        dynamodb_by_operation={
            k.removeprefix("op.dynamodb."): each(k)
            for k in sorted(usage)
            if k.startswith("op.dynamodb.") and usage[k]
        },
    )
