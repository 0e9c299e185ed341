"""The agents of a chaos world: real tool registries and offline models, with hostility on demand.

Two kinds of agents run side by side:

- the flight demo (the offline planner and the real flight tools, whose calls may fail);
- scripted agents (``ScriptedModel`` over a seeded script) with a toolset made to hurt: a tool
  with a side effect, a tool that hangs past its timeout (its effect lands when the schedule
  releases it, after the loop gave up on it), a flaky tool, and a tool whose output is hostile
  (unserialisable objects, circular structures, bytes, lone surrogates, huge or deeply nested
  values, exceptions whose text cannot be encoded or read). Their model turns can be hostile too
  (:class:`HostileModel`): too many calls, repeated toolUseIds, ids reused from an earlier
  turn, answers too large to store.

Every execution of every tool is recorded (:class:`Executions`): who ran it, when (as a position
in the table's stream, the one total order of writes), and how it ended. "At most once" and
"the outcome recorded is the outcome that happened" are measured from that record.
"""

from __future__ import annotations

import functools
import json
import random
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from botocore.exceptions import ClientError
from pydantic import BaseModel, Field

from agentry_flights import registry as flights_registry
from agentry_offline.model import LABEL, OfflineModel, OfflineResponder
from agentry_offline.script import Script, ScriptedModel
from agentry_runtime.contract import PARTITION_KEY, SORT_KEY, agent_pk
from agentry_runtime.tools import ToolContext, ToolRegistry

#: Sort-key prefix of the ledger items the side-effecting chaos tools write.
LEDGER_PREFIX = "LEDGER#"
#: Real seconds a hanging tool is given before the loop records an unknown outcome.
HANG_TIMEOUT_SECONDS = 0.02
#: What the loop calls a structural correction (the answer was not even stored).
_CORRECTION = "Your previous answer could not be used"
_MARKER = re.compile(re.escape(LABEL) + r" \(script turn (\d+)\)")

WEIRD_KINDS = (
    "object",
    "circular",
    "bytes",
    "surrogate",
    "set",
    "nan",
    "deep",
    "huge",
    "bad_key",
    "str_surrogate",
    "not_dict",
    "raise_surrogate",
    "raise_unreadable",
)


@dataclass
class Execution:
    """One run of a tool function."""

    agent_id: str
    tool_use_id: str
    name: str
    #: The actor (invocation) that ran it.
    actor: str
    #: How many writes the table's stream held when it started.
    position: int
    #: What the loop should record: SUCCEEDED, FAILED, or UNKNOWN while it hangs.
    expected: str = "RUNNING"


@dataclass
class _Hung:
    execution: Execution
    release: threading.Event
    thread: threading.Thread


class Executions:
    """Every tool execution of a world, and the hung ones waiting for release."""

    def __init__(self, stream_length: Callable[[], int], current_actor: Callable[[], str]) -> None:
        self._stream_length = stream_length
        self._current_actor = current_actor
        self.log: list[Execution] = []
        self.hung: list[_Hung] = []
        self.rng = random.Random(0)
        self.fail_rates: dict[str, float] = {}

    def start(self, ctx: ToolContext, name: str) -> Execution:
        """Record that a tool function starts running."""
        execution = Execution(
            ctx.agent_id, ctx.tool_use_id, name, self._current_actor(), self._stream_length()
        )
        self.log.append(execution)
        return execution

    def hang(self, execution: Execution) -> threading.Event:
        """Block the calling (tool) thread until the schedule releases it."""
        release = threading.Event()
        self.hung.append(_Hung(execution, release, threading.current_thread()))
        execution.expected = "UNKNOWN"
        return release

    def release_one(self, index: int) -> Execution:
        """Let one hung tool go on; wait until it has finished (its effect landed)."""
        hung = self.hung.pop(index)
        hung.release.set()
        hung.thread.join(timeout=30)
        if hung.thread.is_alive():
            raise RuntimeError(f"hung tool {hung.execution.tool_use_id} did not finish")
        return hung.execution

    def fails(self, agent_id: str) -> bool:
        """Whether this execution of one of ``agent_id``'s flaky calls fails."""
        return self.rng.random() < self.fail_rates.get(agent_id, 0.3)


def _counted(
    executions: Executions, name: str, fn: Callable[[Any, ToolContext], Any]
) -> Callable[[Any, ToolContext], Any]:
    """``fn`` with each run recorded, and its expected outcome noted."""

    @functools.wraps(fn)
    def run(args: Any, ctx: ToolContext) -> Any:
        execution = executions.start(ctx, name)
        try:
            result = fn(args, ctx)
        except BaseException:
            execution.expected = "FAILED"
            raise
        if execution.expected == "RUNNING":
            # The registry turns anything but a dict or a str into an error outcome.
            ok = isinstance(result, dict | str)
            execution.expected = "SUCCEEDED" if ok else "FAILED"
        return result

    return run


# --- the flight demo ---------------------------------------------------------------------------


def flight_tools(executions: Executions) -> ToolRegistry:
    """The flight toolset; a call fails (before its effect) at its agent's fail rate."""
    registry = ToolRegistry()
    for name in flights_registry.names():
        tool = flights_registry.get(name)

        def failing(args: Any, ctx: ToolContext, _fn: Any = tool.fn) -> Any:
            if executions.fails(ctx.agent_id):
                raise RuntimeError("injected tool failure")
            return _fn(args, ctx)

        wrapped = _counted(executions, name, functools.wraps(tool.fn)(failing))
        registry.tool(
            name=name,
            description=tool.description,
            timeout_seconds=20,
            read_only=tool.read_only,
        )(wrapped)
    return registry


# --- the chaos toolset -------------------------------------------------------------------------


class NoteInput(BaseModel):
    """Input of ``note``."""

    text: str = Field(min_length=1, max_length=200)


class ChargeInput(BaseModel):
    """Input of ``charge``."""

    amount: int = Field(ge=1, le=1000)
    ref: str = Field(min_length=1, max_length=40)


class SlowInput(BaseModel):
    """Input of ``slow``."""

    ref: str = Field(min_length=1, max_length=40)


class FlakyInput(BaseModel):
    """Input of ``flaky``."""

    attempt: int = Field(ge=0, le=100)


class WeirdInput(BaseModel):
    """Input of ``weird``."""

    kind: Literal[WEIRD_KINDS]  # type: ignore[valid-type]


def _ledger(ctx: ToolContext, what: str) -> None:
    """The side effect: one ledger item per call, idempotent on the toolUseId."""
    try:
        ctx.dynamodb.put_item(
            TableName=ctx.table_name,
            Item={
                PARTITION_KEY: {"S": agent_pk(ctx.agent_id)},
                SORT_KEY: {"S": f"{LEDGER_PREFIX}{ctx.tool_use_id}"},
                "what": {"S": what},
            },
            ConditionExpression="attribute_not_exists(#pk)",
            ExpressionAttributeNames={"#pk": PARTITION_KEY},
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise


class _Unreadable(Exception):  # noqa: N818 - a hostile tool's exception
    def __str__(self) -> str:
        raise RuntimeError("this exception cannot be read")


def _weird(kind: str) -> Any:
    """A hostile output (or raise) of the given kind."""
    if kind == "object":
        return {"value": object(), "lock": threading.Lock()}
    if kind == "circular":
        loop: dict[str, Any] = {"name": "loop"}
        loop["self"] = loop
        loop["list"] = [loop, [loop]]
        return loop
    if kind == "bytes":
        return {"data": b"\xff\xfe\x00binary" * 50, "array": bytearray(b"\x80\x81")}
    if kind == "surrogate":
        return {"text": "lone \ud800 surrogate", "\udcff key": "value"}
    if kind == "set":
        return {"items": {3, 1, 2}, "frozen": frozenset({"a"}), "when": datetime.now(UTC)}
    if kind == "nan":
        return {"nan": float("nan"), "inf": float("inf"), "minus": float("-inf")}
    if kind == "deep":
        deep: dict[str, Any] = {}
        node = deep
        for _ in range(200):
            node["next"] = {}
            node = node["next"]
        return deep
    if kind == "huge":
        return {"blob": "x" * 60_000, "rows": [{"n": i} for i in range(3000)]}
    if kind == "bad_key":
        return {(1, 2): "tuple key", 3: "int key", None: "none key"}
    if kind == "str_surrogate":
        return "a text with a lone \udc80 surrogate"
    if kind == "not_dict":
        return [1, 2, 3]
    if kind == "raise_surrogate":
        raise ValueError("cannot encode \ud800 this")
    raise _Unreadable()


def chaos_tools(executions: Executions) -> ToolRegistry:
    """The chaos toolset (see the module doc)."""
    registry = ToolRegistry()

    def note(args: NoteInput, ctx: ToolContext) -> dict[str, Any]:
        """Write down a short note."""
        return {"noted": args.text}

    def charge(args: ChargeInput, ctx: ToolContext) -> dict[str, Any]:
        """Charge an amount once (a side effect, idempotent on the call)."""
        _ledger(ctx, f"charge {args.amount} {args.ref}")
        return {"charged": args.amount, "ref": args.ref}

    def slow(args: SlowInput, ctx: ToolContext) -> dict[str, Any]:
        """Do something slow with a side effect (it outlives its timeout)."""
        execution = executions.log[-1]
        executions.hang(execution).wait(timeout=60)
        _ledger(ctx, f"slow {args.ref}")
        return {"done": args.ref}

    def flaky(args: FlakyInput, ctx: ToolContext) -> dict[str, Any]:
        """Try something that sometimes fails."""
        if executions.fails(ctx.agent_id):
            raise RuntimeError(f"flaky failure on attempt {args.attempt}")
        return {"ok": args.attempt}

    def weird(args: WeirdInput, ctx: ToolContext) -> Any:
        """Return something strange."""
        return _weird(args.kind)

    # Real seconds: ample for a tool that returns at once, even on a loaded machine (a tool
    # that timed out would go on running beside the next actor).
    for fn, timeout, read_only in (
        (note, 20.0, True),
        (charge, 20.0, False),
        (slow, HANG_TIMEOUT_SECONDS, False),
        (flaky, 20.0, False),
        (weird, 20.0, False),
    ):
        wrapped = _counted(executions, fn.__name__, fn)
        registry.tool(name=fn.__name__, timeout_seconds=timeout, read_only=read_only)(wrapped)
    return registry


def random_call(rng: random.Random) -> dict[str, Any]:
    """One scripted call of the chaos toolset."""
    name = rng.choice(["note", "note", "charge", "charge", "slow", "flaky", "weird", "weird"])
    inputs: dict[str, Any] = {
        "note": {"text": f"note {rng.randrange(1000)}"},
        "charge": {"amount": rng.randint(1, 1000), "ref": f"r{rng.randrange(1000)}"},
        "slow": {"ref": f"s{rng.randrange(1000)}"},
        "flaky": {"attempt": rng.randrange(100)},
        "weird": {"kind": rng.choice(WEIRD_KINDS)},
    }
    return {"name": name, "input": inputs[name]}


# --- hostile models ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Hostility:
    """How a scripted turn is made hostile: ``kind``, for its first ``persist`` answers."""

    kind: Literal["many", "repeated", "reused", "huge"]
    persist: int


@dataclass
class ScriptPlan:
    """A scripted agent's script and hostile turns."""

    turns: list[dict[str, Any]]
    hostility: dict[int, Hostility] = field(default_factory=dict)


def random_plan(rng: random.Random) -> ScriptPlan:
    """A seeded script: a few rounds of calls, an answer, and a follow-up's round and answer."""
    turns: list[dict[str, Any]] = []
    for _ in range(rng.choice([1, 2, 2, 3])):
        count = rng.choice([1, 1, 2, 3, 3, 4, 6])
        turns.append({"toolUse": [random_call(rng) for _ in range(count)]})
    turns.append({"text": "All done."})
    turns.append({"toolUse": [random_call(rng) for _ in range(rng.choice([1, 2]))]})
    turns.append({"text": "Follow-up done."})
    hostility: dict[int, Hostility] = {}
    if rng.random() < 0.5:
        number = rng.randint(1, len(turns))
        kind = "huge" if "text" in turns[number - 1] else rng.choice(["many", "repeated", "reused"])
        hostility[number] = Hostility(kind, rng.choice([1, 1, 2, 5]))  # type: ignore[arg-type]
    return ScriptPlan(turns, hostility)


class HostileModel(ScriptedModel):
    """A scripted model whose given turns are hostile for their first few answers."""

    def __init__(self, plan: ScriptPlan) -> None:
        super().__init__(Script.parse({"turns": plan.turns}))
        self.hostility = plan.hostility

    def _answer(self, request: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
        content, stop_reason = super()._answer(request)
        messages: list[dict[str, Any]] = request["messages"]
        played, corrections = _progress(messages)
        hostile = self.hostility.get(played + 1)
        if hostile is None or corrections >= hostile.persist:
            return content, stop_reason
        return _mutate(hostile.kind, content, messages), stop_reason


def _progress(messages: list[dict[str, Any]]) -> tuple[int, int]:
    """Script turns played so far, and structural corrections since the last one."""
    played = corrections = 0
    for message in messages:
        for block in message.get("content", []):
            text = block.get("text") if isinstance(block, dict) else None
            if not isinstance(text, str):
                continue
            numbers = [int(n) for n in _MARKER.findall(text)]
            if numbers and max(numbers) > played:
                played, corrections = max(numbers), 0
            elif text.startswith(_CORRECTION):
                corrections += 1
    return played, corrections


def _mutate(
    kind: str, content: list[dict[str, Any]], messages: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    uses = [block["toolUse"] for block in content if "toolUse" in block]
    texts = [block for block in content if "text" in block]
    if kind == "huge" or not uses:
        return [{"text": f"{LABEL} " + "An answer far too long to store. " * 12_000}]
    if kind == "many":
        many = [
            {**uses[0], "toolUseId": f"{uses[0]['toolUseId'][:40]}-{i}"}
            if uses[0]["name"] != "slow"
            else {"toolUseId": f"{uses[0]['toolUseId'][:40]}-{i}", "name": "note", "input": {}}
            for i in range(24)
        ]
        return [*texts, *({"toolUse": use} for use in many)]
    earlier = [
        block["toolUse"]["toolUseId"]
        for message in messages
        if message.get("role") == "assistant"
        for block in message.get("content", [])
        if "toolUse" in block
    ]
    if kind == "reused" and earlier:
        changed = [{**uses[0], "toolUseId": earlier[0]}, *uses[1:]]
    else:
        changed = [uses[0], {**uses[0]}, *uses[1:]]
    return [*texts, *({"toolUse": use} for use in changed)]


class ModelRouter:
    """The fake Bedrock's responder: one offline model per model id; remembers every request
    Bedrock would have rejected (the loop must never send one)."""

    def __init__(self) -> None:
        self.models: dict[str, OfflineResponder] = {}
        self.rejected: list[str] = []

    def __call__(self, model_id: str, request: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        """Answer one Converse request with the model of its id."""
        status, headers, body = self.models[model_id](model_id, request)
        # The offline models validate each request as Bedrock does (a 400 ValidationException);
        # their own refusals (a script that ran out) are labelled, Bedrock's are not.
        if status == 400 and not json.loads(body).get("message", "").startswith(LABEL):
            self.rejected.append(f"{model_id}: {json.loads(body).get('message')}")
        return status, headers, body


def flights_model() -> OfflineModel:
    """The flight demo's planner, on the virtual clock's date."""
    return OfflineModel(today=datetime(2031, 3, 4, tzinfo=UTC).date())
