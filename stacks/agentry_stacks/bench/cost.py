"""Cost per million steps, model tokens excluded, from a price table the report prints.

Prices are AWS's public on-demand list prices in us-east-1, read from the pricing pages named
beside each (checked when this table was written; verify before quoting them):

- DynamoDB on-demand, https://aws.amazon.com/dynamodb/pricing/on-demand/: $0.625 per million
  write request units, $0.125 per million read request units (standard table class). Reads of
  the table's stream by a Lambda trigger are free (same page, "DynamoDB Streams").
- SQS, https://aws.amazon.com/sqs/pricing/: $0.40 per million standard-queue requests (each
  64 KB chunk of a payload is one request; step events are far smaller).
- Lambda, https://aws.amazon.com/lambda/pricing/: $0.20 per million requests; duration
  $0.0000133334 per GB-second on arm64, $0.0000166667 on x86_64 (first pricing tier).
- EventBridge, https://aws.amazon.com/eventbridge/pricing/: $1.00 per million custom events
  put on a bus (each 64 KB chunk is one event); delivery to an SQS target is not charged by
  EventBridge (the queue bills its SendMessage). Archive processing ($0.10 per GB) is left
  out: a step event is about 300 bytes, under $0.05 per million steps.
- Step Functions, https://aws.amazon.com/step-functions/pricing/: $0.025 per thousand state
  transitions (standard workflows). Only recoveries run the state machine: none in a steady
  state, so its line is 0 unless a handler starts executions.

How a step is priced (for ours and the baseline alike): the DynamoDB request units of the
case's measured steps (mean of a plan and an act; for chaining, of the chained pair), and every
other request per step from the scripted run of the same mode (SQS, Lambda invocations,
PutEvents). The baseline publishes its own event and is delivered like ours (queue and worker),
without the announcer. Lambda duration is not measured here (the model's latency dominates it
and is the same for every design): an assumed billed duration per invocation and per step is
priced at the worker's memory, and printed as an assumption.
"""

from __future__ import annotations

from agentry_stacks.bench.report import (
    CaseFigures,
    CostFigures,
    CostLine,
    PerStep,
    Price,
    RunFigures,
)

__all__ = ["PRICES", "cost_figures"]

REGION = "us-east-1"
_DYNAMODB = "https://aws.amazon.com/dynamodb/pricing/on-demand/"
_SQS = "https://aws.amazon.com/sqs/pricing/"
_LAMBDA = "https://aws.amazon.com/lambda/pricing/"
_EVENTS = "https://aws.amazon.com/eventbridge/pricing/"
_STATES = "https://aws.amazon.com/step-functions/pricing/"

#: The price table (us-east-1), in US dollars.
PRICES: dict[str, Price] = {
    "wru": Price(item="DynamoDB write request unit", usd=0.625, per="1M", source=_DYNAMODB),
    "rru": Price(item="DynamoDB read request unit", usd=0.125, per="1M", source=_DYNAMODB),
    "sqs": Price(item="SQS request (standard queue)", usd=0.40, per="1M", source=_SQS),
    "lambda": Price(item="Lambda request", usd=0.20, per="1M", source=_LAMBDA),
    "gbs.arm64": Price(item="Lambda duration, arm64", usd=0.0000133334, per="GB-s", source=_LAMBDA),
    "gbs.x86_64": Price(
        item="Lambda duration, x86_64", usd=0.0000166667, per="GB-s", source=_LAMBDA
    ),
    "events": Price(item="EventBridge custom event", usd=1.00, per="1M", source=_EVENTS),
    "states": Price(item="Step Functions state transition", usd=0.025, per="1K", source=_STATES),
}
#: Billed Lambda time assumed (not measured): per invocation beyond its steps, and per step
#: with the model's latency left out.
ASSUMED_MS_PER_INVOCATION = 10.0
ASSUMED_MS_PER_STEP = 50.0
_MILLION = 1_000_000


def cost_figures(
    cases: dict[str, CaseFigures],
    unchained: RunFigures,
    chained: RunFigures,
    *,
    architecture: str,
    memory_mb: int,
) -> CostFigures:
    """Dollars per million steps for every case: ours unchained, ours chained, the baseline."""
    gbs = PRICES[f"gbs.{architecture}"] if f"gbs.{architecture}" in PRICES else PRICES["gbs.arm64"]

    def line(
        write_units: float, read_units: float, delivery: PerStep, events: float, lambdas: float
    ) -> CostLine:
        seconds = (lambdas * ASSUMED_MS_PER_INVOCATION + ASSUMED_MS_PER_STEP) / 1000
        parts = {
            "dynamodb": write_units * PRICES["wru"].usd + read_units * PRICES["rru"].usd,
            "sqs": delivery.sqs * PRICES["sqs"].usd,
            "lambda_requests": lambdas * PRICES["lambda"].usd,
            "lambda_duration": seconds * memory_mb / 1024 * gbs.usd * _MILLION,
            "eventbridge": events * PRICES["events"].usd,
            "step_functions": delivery.step_functions * PRICES["states"].usd * 1000,
        }
        rounded = {name: round(value, 4) for name, value in parts.items()}
        return CostLine(total=round(sum(parts.values()), 4), **rounded)

    ours_unchained, ours_chained, baseline = {}, {}, {}
    # The baseline is delivered by the queue like ours, but publishes itself: no announcer.
    worker_only = unchained.steady.lambda_by_function.get("worker", 0.0)
    for name, figures in cases.items():
        plan, act = figures.plan, figures.act
        ours_unchained[name] = line(
            (plan.write_units + act.write_units) / 2,
            (plan.read_units + act.read_units) / 2,
            unchained.steady,
            unchained.steady.eventbridge,
            unchained.steady.lambda_invocations,
        )
        pair, steps = figures.chained_pair, figures.chained_steps
        ours_chained[name] = line(
            pair.write_units / steps,
            pair.read_units / steps,
            chained.steady,
            chained.steady.eventbridge,
            chained.steady.lambda_invocations,
        )
        base_plan, base_act = figures.baseline_plan, figures.baseline_act
        baseline[name] = line(
            (base_plan.write_units + base_act.write_units) / 2,
            (base_plan.read_units + base_act.read_units) / 2,
            unchained.steady,
            (base_plan.eventbridge_calls + base_act.eventbridge_calls) / 2,
            worker_only,
        )
    return CostFigures(
        region=REGION,
        prices=list(PRICES.values()),
        lambda_memory_mb=memory_mb,
        assumed_ms_per_invocation=ASSUMED_MS_PER_INVOCATION,
        assumed_ms_per_step=ASSUMED_MS_PER_STEP,
        ours_unchained=ours_unchained,
        ours_chained=ours_chained,
        baseline=baseline,
    )
