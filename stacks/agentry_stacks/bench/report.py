"""The bench report: what ``agentry bench --json`` prints, one pydantic model per figure group.

The models are the schema: ``agentry bench --schema`` prints it as JSON Schema, and
``docs/bench.schema.json`` is that output, checked in (a test keeps the two equal). Every field
says what it counts and in which unit. Maps keyed by case (``"10"``, ``"300+long goal"``) or by
step kind (``"plan"``, ``"act"``) are JSON objects, so their keys are strings.

Units: DynamoDB *write units* and *read units* are request units as on-demand bills them;
*calls* are API requests; money is US dollars. Timings (seconds) are this machine's and are
never asserted by the tests; every other figure is deterministic for a given tree.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "SCHEMA_VERSION",
    "BenchReport",
    "BundleFigures",
    "Case",
    "CaseFigures",
    "ColdImport",
    "ColdStart",
    "CostFigures",
    "CostLine",
    "PerStep",
    "PipelineFigures",
    "Price",
    "PromptTokens",
    "RunFigures",
    "StepCost",
    "StoreFigures",
    "Target",
]

#: Bumped when a field changes meaning or goes away (adding a field does not bump it).
SCHEMA_VERSION = 2

_FROZEN = ConfigDict(extra="forbid", frozen=True)


class Case(BaseModel):
    """One history the per-step figures are taken at."""

    model_config = _FROZEN
    name: str = Field(description='The case\'s key: "10", "300", "300+long goal"...')
    history: int = Field(description="Messages in the agent's history when the step runs.")
    goal_chars: int = Field(description="Characters of the agent's goal.")


class StepCost(BaseModel):
    """What one step of one kind costs in DynamoDB and the model (one fresh invocation)."""

    model_config = _FROZEN
    write_units: float = Field(description="DynamoDB write request units of the step.")
    read_units: float = Field(description="DynamoDB read request units of the step.")
    bytes_written: int = Field(description="Bytes of the items the step wrote.")
    bytes_read: int = Field(description="Bytes of the items the step read.")
    floor_write_units: float | None = Field(
        description="The least a correct design writes: the step's own new items at 1 unit "
        "per started KB each, plus 1 unit for the header that commits it (null: baseline)."
    )
    write_units_over_floor: float | None = Field(
        description="write_units / floor_write_units (null: baseline)."
    )
    dynamodb_calls: int = Field(description="DynamoDB requests of the step.")
    model_calls: int = Field(description="Bedrock Converse requests of the step.")
    eventbridge_calls: int = Field(description="PutEvents requests made by the step itself.")
    operations: dict[str, int] = Field(
        description='Requests by service and operation ("dynamodb.PutItem": 2).'
    )
    new_items: list[str] = Field(
        description='Kinds of the items the step created ("MSG", "TOOL", "SUMMARY").'
    )


class PromptTokens(BaseModel):
    """Estimated prompt tokens of one plan step (``model.estimate_tokens``)."""

    model_config = _FROZEN
    without_compaction: int = Field(description="The whole history as one prompt.")
    with_compaction: int = Field(description="The prompt the measured plan step sent.")


class CaseFigures(BaseModel):
    """A plan and an act at one case, ours and the baseline's."""

    model_config = _FROZEN
    case: Case
    plan: StepCost
    act: StepCost
    baseline_plan: StepCost = Field(description="The sketch: read all, rewrite all, publish.")
    baseline_act: StepCost
    chained_pair: StepCost = Field(
        description="The next steps, from a plan, in one invocation of the worker's timeout: "
        "as many as the chain ran (chained_steps); units are for all of them."
    )
    chained_steps: int = Field(description="Steps the chained invocation committed.")
    header_bytes: int = Field(description="Size of the agent's header item after the plan.")
    prompt: PromptTokens


class StoreFigures(BaseModel):
    """Per-step store and model figures at every case."""

    model_config = _FROZEN
    token_budget: int = Field(description="Prompt tokens before compaction (the stack's).")
    cases: dict[str, CaseFigures] = Field(description="By case name.")
    plan_read_growth: float = Field(
        description="Read units of a plan at the longest history over those at the shortest."
    )
    act_read_growth: float = Field(
        description="Read units of an act at the longest history over those at the shortest."
    )


class PerStep(BaseModel):
    """AWS requests and DynamoDB units, per step (or per run, for a fixed cost)."""

    model_config = _FROZEN
    aws_calls: float = Field(
        description="Every request: DynamoDB, model, EventBridge, SQS, Lambda invocations, "
        "Step Functions."
    )
    dynamodb: float
    model: float
    eventbridge: float = Field(description="PutEvents requests.")
    sqs: float = Field(description="SQS requests, whoever makes them (see sqs_by_request).")
    lambda_invocations: float
    step_functions: float = Field(description="Step Functions requests made by the handlers.")
    write_units: float
    read_units: float
    bytes_written: float
    sqs_by_request: dict[str, float] = Field(
        description='"eventbridge.SendMessage" (delivery to the queue), "esm.ReceiveMessage" '
        'and "esm.DeleteMessageBatch" (Lambda\'s event source mapping), '
        '"runtime.<Operation>" (the handlers\' own).'
    )
    lambda_by_function: dict[str, float] = Field(
        description="Invocations by function (announcer: one per stream record)."
    )
    dynamodb_by_operation: dict[str, float]


class RunFigures(BaseModel):
    """One run of the scripted agent on the local environment."""

    model_config = _FROZEN
    mode: Literal["unchained", "chained"]
    steps: int = Field(description="Steps the agent committed.")
    worker_invocations: int
    steps_per_worker_invocation: float
    steady: PerStep = Field(description="Per step, between the first and last worker invocation.")
    by_kind: dict[str, PerStep] = Field(
        description="Steady state per step of each kind (unchained only: a chain mixes kinds)."
    )
    fixed: PerStep = Field(description="Per run, beyond steady state times steps.")
    seconds: float = Field(description="Wall time of the run on this machine (informative).")


class PipelineFigures(BaseModel):
    """A scripted agent run end to end, unchained and chained."""

    model_config = _FROZEN
    stack: str
    agent: str
    script_turns: int = Field(description="Tool-call turns of the script (then one answer).")
    unchained: RunFigures
    chained: RunFigures


class ColdImport(BaseModel):
    """Median import time of one handler module from the unpacked bundle."""

    model_config = _FROZEN
    module: str
    with_bytecode_seconds: float
    without_bytecode_seconds: float


class ColdStart(BaseModel):
    """Cold imports under the function's Python version (see ``bench.startup``)."""

    model_config = _FROZEN
    available: bool = Field(description="False when no interpreter of that version is here.")
    python_version: str
    interpreter: str | None = Field(description="The interpreter's full version.")
    runs: int
    reason: str = Field(description="Why the figures are unavailable ('' when they are).")
    handlers: dict[str, ColdImport | None] = Field(description="By handler (api, worker...).")


class BundleFigures(BaseModel):
    """The deployed bundle (the stack's architecture)."""

    model_config = _FROZEN
    zipped_bytes: int | None
    architecture: str
    bytecode: str | None = Field(description="The CPython that compiled its bytecode, or null.")
    bytecode_note: str = ""
    error: str | None = None


class Price(BaseModel):
    """One price the cost is computed from."""

    model_config = _FROZEN
    item: str
    usd: float
    per: str = Field(description='The unit priced: "1M write request units", "1 GB-second"...')
    source: str = Field(description="The AWS pricing page it comes from.")


class CostLine(BaseModel):
    """Dollars per million steps, by service."""

    model_config = _FROZEN
    total: float
    dynamodb: float
    sqs: float
    lambda_requests: float
    lambda_duration: float
    eventbridge: float
    step_functions: float


class CostFigures(BaseModel):
    """Cost per million steps, model tokens excluded, from the price table."""

    model_config = _FROZEN
    region: str
    prices: list[Price]
    lambda_memory_mb: int = Field(description="The worker's memory (GB-s are priced at it).")
    assumed_ms_per_invocation: float = Field(
        description="Billed duration assumed per invocation beyond its steps (not measured)."
    )
    assumed_ms_per_step: float = Field(
        description="Billed duration assumed per step, the model's latency excluded (not measured)."
    )
    ours_unchained: dict[str, CostLine] = Field(description="By case.")
    ours_chained: dict[str, CostLine] = Field(description="By case.")
    baseline: dict[str, CostLine] = Field(description="By case.")


class Target(BaseModel):
    """One of issue 14's targets, checked on this report."""

    model_config = _FROZEN
    name: str
    value: float | None
    limit: float
    holds: bool | None = Field(description="null when it cannot be measured here.")
    detail: str


class BenchReport(BaseModel):
    """Everything ``agentry bench`` measures in one run."""

    model_config = _FROZEN
    schema_version: Literal[2] = 2
    quick: bool = Field(description="Fewer cold-start runs (every other figure is the same).")
    stack: str
    history_lengths: list[int]
    long_goal_chars: int
    store: StoreFigures
    pipeline: PipelineFigures
    cold_start: ColdStart
    bundle: BundleFigures
    cost: CostFigures
    targets: list[Target]
