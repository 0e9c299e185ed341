"""The bench report as tables on a terminal (``agentry bench`` without ``--json``)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from agentry_stacks.bench.report import BenchReport


def render_report(report: BenchReport, console: Console) -> None:
    """Print the store, prompt, start-up and throughput figures."""
    store = Table(title="DynamoDB per step: Agentry vs. rewriting the whole state (baseline)")
    for column in ("history", "bytes", "WCU", "calls", "baseline bytes", "baseline WCU",
                   "baseline calls", "baseline / ours"):  # fmt: skip
        store.add_column(column, justify="right")
    for length, ours in report.store.ours.items():
        base = report.store.baseline[length]
        store.add_row(
            length,
            f"{ours.bytes_written:,.0f}",
            f"{ours.write_units:g}",
            f"{ours.aws_calls:g}",
            f"{base.bytes_written:,.0f}",
            f"{base.write_units:g}",
            f"{base.aws_calls:g}",
            f"{report.store.baseline_over_ours_bytes[length]:g}x",
        )
    console.print(store)
    console.print(
        f"Our bytes per step at {report.history_lengths[-1]} messages are "
        f"{report.store.ours_growth:g}x those at {report.history_lengths[0]}."
    )
    prompt = Table(title=f"Prompt tokens per plan step (budget {report.prompt.token_budget})")
    for column in ("history", "without compaction", "with compaction"):
        prompt.add_column(column, justify="right")
    for length, tokens in report.prompt.by_length.items():
        prompt.add_row(length, f"{tokens.without_compaction:,}", f"{tokens.with_compaction:,}")
    console.print(prompt)
    cold, bundle, speed = report.cold_start, report.bundle, report.throughput
    size = f"{bundle.zipped_bytes:,} bytes" if bundle.zipped_bytes else f"n/a ({bundle.error})"
    console.print(
        f"Cold import (median of {cold.runs}): api {cold.api_seconds * 1000:.0f} ms, "
        f"worker {cold.worker_seconds * 1000:.0f} ms; bundle ({bundle.architecture}): {size}"
    )
    console.print(
        f"Throughput on the {speed.environment} environment: {speed.steps_per_second:g} steps/s "
        f"({speed.steps} steps of {speed.agents} agents in {speed.seconds:g} s)"
    )
