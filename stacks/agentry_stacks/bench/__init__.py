"""``agentry bench``: the platform's cost, prompt, start-up and throughput figures in one run.

Store and prompt figures come from the moto-backed runtime machinery (``store_cost``);
throughput from the local environment; start-up from fresh interpreters and the bundle.
"""

from __future__ import annotations

from agentry_runtime.settings import LoopSettings
from agentry_stacks.bench.report import BenchReport, PromptFigures, StoreFigures
from agentry_stacks.bench.startup import bundle_size, cold_start
from agentry_stacks.bench.store_cost import measure
from agentry_stacks.bench.throughput import throughput

__all__ = ["HISTORY_LENGTHS", "BenchReport", "run_bench"]

#: History lengths the store and prompt figures are taken at.
HISTORY_LENGTHS = (10, 100, 300)


def run_bench(*, quick: bool = False, stack: str = "dev") -> BenchReport:
    """Measure every figure; ``quick`` takes fewer samples (same lengths, same ratios)."""
    lengths = list(HISTORY_LENGTHS)
    budget = LoopSettings().token_budget
    figures = measure(lengths, budget)
    ours = {str(n): f.ours for n, f in figures.items()}
    baseline = {str(n): f.baseline for n, f in figures.items()}
    store = StoreFigures(
        ours=ours,
        baseline=baseline,
        baseline_over_ours_bytes={
            k: round(baseline[k].bytes_written / ours[k].bytes_written, 2) for k in ours
        },
        ours_growth=round(
            ours[str(lengths[-1])].bytes_written / ours[str(lengths[0])].bytes_written, 3
        ),
    )
    return BenchReport(
        quick=quick,
        history_lengths=lengths,
        store=store,
        prompt=PromptFigures(
            token_budget=budget, by_length={str(n): f.prompt for n, f in figures.items()}
        ),
        cold_start=cold_start(runs=3 if quick else 7),
        bundle=bundle_size(stack),
        throughput=throughput(agents=3 if quick else 10, stack=stack),
    )
