"""The bench report: one pydantic model per figure group, the JSON that ``--json`` prints.

Keys of ``by_length`` maps are history lengths as strings ("10", "100", "300"), because JSON
object keys are strings.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

_FROZEN = ConfigDict(extra="forbid", frozen=True)


class StepCost(BaseModel):
    """What one step costs in DynamoDB and AWS calls (mean over the steps measured)."""

    model_config = _FROZEN
    bytes_written: float = Field(description="DynamoDB item bytes written per step.")
    write_units: float = Field(description="WCU per step: 1 per KB per item, transactions 2x.")
    aws_calls: float = Field(description="AWS API calls per step (DynamoDB, EventBridge, Bedrock).")
    steps_measured: int = Field(ge=1)


class StoreFigures(BaseModel):
    """Per-step store cost of Agentry's layout and of the sketch's rewrite-everything baseline."""

    model_config = _FROZEN
    ours: dict[str, StepCost]
    baseline: dict[str, StepCost]
    baseline_over_ours_bytes: dict[str, float] = Field(
        description="How many times more bytes the baseline writes per step, per length."
    )
    ours_growth: float = Field(
        description="Our bytes written per step at the longest history over the shortest."
    )


class PromptTokens(BaseModel):
    """Estimated prompt tokens of one plan step (``model.estimate_tokens``)."""

    model_config = _FROZEN
    without_compaction: int
    with_compaction: int


class PromptFigures(BaseModel):
    """Prompt size per plan step, by history length."""

    model_config = _FROZEN
    token_budget: int
    by_length: dict[str, PromptTokens]


class ColdStart(BaseModel):
    """Import time of each handler module in a fresh interpreter (median over ``runs``)."""

    model_config = _FROZEN
    api_seconds: float
    worker_seconds: float
    runs: int


class BundleFigures(BaseModel):
    """The Lambda bundle's zipped size (``agentry_platform.bundle.build_bundle``)."""

    model_config = _FROZEN
    zipped_bytes: int | None
    architecture: str
    error: str | None = None


class Throughput(BaseModel):
    """Worker steps per second on the local environment, end to end."""

    model_config = _FROZEN
    environment: str
    agents: int
    steps: int
    seconds: float
    steps_per_second: float


class BenchReport(BaseModel):
    """Everything ``agentry bench`` measures in one run."""

    model_config = _FROZEN
    schema_version: Literal[1] = 1
    quick: bool
    history_lengths: list[int]
    store: StoreFigures
    prompt: PromptFigures
    cold_start: ColdStart
    bundle: BundleFigures
    throughput: Throughput
