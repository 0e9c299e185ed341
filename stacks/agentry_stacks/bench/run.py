"""One bench run: every figure group, and issue 14's targets checked on them."""

from __future__ import annotations

from agentry_platform.bundle import Bundle, BundleError
from agentry_stacks.bench.cost import cost_figures
from agentry_stacks.bench.meter import AwsMeter
from agentry_stacks.bench.pipeline import DEFAULT_TURNS, measure_run
from agentry_stacks.bench.report import (
    BenchReport,
    CaseFigures,
    ColdStart,
    CostFigures,
    PipelineFigures,
    StoreFigures,
    Target,
)
from agentry_stacks.bench.startup import bundle_figures, cold_start, host_architecture
from agentry_stacks.bench.store_cost import CASES, LONG_GOAL_CHARS, measure_cases

__all__ = ["LIMITS", "run_bench", "targets"]

#: Issue 14's targets: the limit of each figure.
LIMITS = {
    "write_units_over_floor": 1.1,
    "read_growth": 1.2,
    "chained_aws_calls_per_step": 2.5,
    "worker_cold_import_seconds": 0.3,
    "cost_over_baseline": 0.5,
}


def run_bench(
    *, quick: bool = False, stack: str = "dev", turns: int = DEFAULT_TURNS
) -> BenchReport:
    """Measure every figure of the report for ``stack`` (``quick``: fewer cold-start runs)."""
    # Imported late: the stack's config, agents and program load Pulumi.
    from agentry_stacks.deploy.agents import resolve_agents
    from agentry_stacks.deploy.config import load_stack_config
    from agentry_stacks.deploy.program import stack_bundle
    from agentry_stacks.offline.plan import plan_stack

    config = load_stack_config(stack)
    agents = resolve_agents(config)
    graph = plan_stack(stack)
    with AwsMeter() as meter:
        cases = measure_cases(
            meter, config.agent.token_budget, float(config.worker.timeout_seconds)
        )
        agent = agents.default
        unchained = measure_run(graph, meter, agent=agent, turns=turns, chained=False)
        chained = measure_run(graph, meter, agent=agent, turns=turns, chained=True)
    store = _store(cases, config.agent.token_budget)
    pipeline = PipelineFigures(
        stack=stack, agent=agent, script_turns=turns, unchained=unchained, chained=chained
    )
    deployed: Bundle | None = None
    error = None
    try:
        deployed = stack_bundle(config, agents)
        local = stack_bundle(
            config.model_copy(update={"lambda_architecture": host_architecture()}), agents
        )
        cold = cold_start(local, runs=3 if quick else 7)
    except BundleError as exc:
        error = str(exc)[:500]
        cold = ColdStart(
            available=False,
            python_version=config.lambda_runtime.removeprefix("python"),
            interpreter=None,
            runs=0,
            reason=f"the bundle could not be built: {error}",
            handlers={},
        )
    cost = cost_figures(
        cases,
        unchained,
        chained,
        architecture=config.lambda_architecture,
        memory_mb=config.worker.memory_mb,
    )
    report_without_targets = {
        "quick": quick,
        "stack": stack,
        "history_lengths": sorted({case.history for case in CASES}),
        "long_goal_chars": LONG_GOAL_CHARS,
        "store": store,
        "pipeline": pipeline,
        "cold_start": cold,
        "bundle": bundle_figures(config.lambda_architecture, deployed, error),
        "cost": cost,
    }
    return BenchReport(
        **report_without_targets,
        targets=targets(store, pipeline, cold, cost),
    )


def _store(cases: dict[str, CaseFigures], token_budget: int) -> StoreFigures:
    shortest, longest = _plain_cases(cases)
    return StoreFigures(
        token_budget=token_budget,
        cases=cases,
        plan_read_growth=round(longest.plan.read_units / shortest.plan.read_units, 3),
        act_read_growth=round(longest.act.read_units / shortest.act.read_units, 3),
    )


def _plain_cases(cases: dict[str, CaseFigures]) -> tuple[CaseFigures, CaseFigures]:
    plain = sorted(
        (c for c in cases.values() if "goal" not in c.case.name), key=lambda c: c.case.history
    )
    return plain[0], plain[-1]


def _per_step_reads(figures: CaseFigures) -> float:
    return (figures.plan.read_units + figures.act.read_units) / 2


def targets(
    store: StoreFigures, pipeline: PipelineFigures, cold: ColdStart, cost: CostFigures
) -> list[Target]:
    """Issue 14's targets, each with its value on this report and whether it holds."""
    worst_name, worst = max(
        (
            (f"{name} {kind}", getattr(figures, kind).write_units_over_floor or 0.0)
            for name, figures in store.cases.items()
            for kind in ("plan", "act")
        ),
        key=lambda pair: pair[1],
    )
    shortest, longest = _plain_cases(store.cases)
    growth = _per_step_reads(longest) / _per_step_reads(shortest)
    calls = pipeline.chained.steady.aws_calls
    worker = cold.handlers.get("worker")
    ratios = {
        name: cost.ours_chained[name].total / cost.baseline[name].total for name in cost.baseline
    }
    # From 100 messages: at 10 the whole document is a few KB, and the delivery every design
    # pays (queue, invocation, event) is most of either cost.
    long_enough = [name for name, f in store.cases.items() if f.case.history >= 100]
    worst_cost = max(long_enough, key=lambda name: ratios[name])
    short = ", ".join(f"{name}: {ratios[name]:.2f}" for name in ratios if name not in long_enough)
    limits = LIMITS
    return [
        Target(
            name="write units per step within 1.1x of the floor",
            value=worst,
            limit=limits["write_units_over_floor"],
            holds=worst <= limits["write_units_over_floor"],
            detail=f"worst: {worst_name} (every case, plan and act)",
        ),
        Target(
            name="read units per step at the longest history within 1.2x of the shortest",
            value=round(growth, 3),
            limit=limits["read_growth"],
            holds=growth <= limits["read_growth"],
            detail=f"mean of a plan and an act, unchained, compaction on: "
            f"{_per_step_reads(longest):g} at {longest.case.history} messages, "
            f"{_per_step_reads(shortest):g} at {shortest.case.history}",
        ),
        Target(
            name="AWS calls per step, chained steady state",
            value=calls,
            limit=limits["chained_aws_calls_per_step"],
            holds=calls <= limits["chained_aws_calls_per_step"],
            detail=f"{pipeline.chained.steps} steps, "
            f"{pipeline.chained.steps_per_worker_invocation:g} per worker invocation",
        ),
        Target(
            name="cold import of the worker with bytecode (this machine, not asserted)",
            value=worker.with_bytecode_seconds if worker else None,
            limit=limits["worker_cold_import_seconds"],
            holds=(worker.with_bytecode_seconds <= limits["worker_cold_import_seconds"])
            if worker
            else None,
            detail=f"without bytecode: {worker.without_bytecode_seconds:g} s"
            if worker
            else cold.reason,
        ),
        Target(
            name="cost per million steps at most half the baseline's",
            value=round(ratios[worst_cost], 3),
            limit=limits["cost_over_baseline"],
            holds=ratios[worst_cost] <= limits["cost_over_baseline"],
            detail=f"chained; worst case from 100 messages: {worst_cost} (shorter: {short})",
        ),
    ]
