"""The bench report as terminal tables (``agentry bench``) and as the README's figures.

:func:`markdown` renders only what is deterministic (units, calls, dollars, ratios): the README
section it writes between :data:`BEGIN` and :data:`END` changes when the code's figures change,
never with the machine's speed; timings stay on the terminal and in the JSON.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from rich.console import Console
from rich.table import Table

from agentry_stacks.bench.report import BenchReport, CostLine, PerStep, StepCost

__all__ = [
    "BEGIN",
    "END",
    "SUMMARY_BEGIN",
    "SUMMARY_END",
    "markdown",
    "readme_section",
    "render_report",
    "replace_section",
    "summary",
]

#: The markers around the generated figures of ``docs/bench.md``.
BEGIN = "<!-- agentry bench --markdown: begin (generated, do not edit) -->"
END = "<!-- agentry bench --markdown: end -->"
#: The markers around the README's summary of them.
SUMMARY_BEGIN = "<!-- agentry bench summary: begin (generated, do not edit) -->"
SUMMARY_END = "<!-- agentry bench summary: end -->"

Rows = list[list[str]]


def _n(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}".rstrip("0").rstrip(".") if digits else f"{value:,.0f}"


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _usd(value: float) -> str:
    return f"${value:,.2f}"


# --- the tables, as rows (shared by the terminal and markdown) -------------------------------

_STEP_HEADER = ["case", "kind", "WRU", "floor", "/ floor", "RRU", "bytes written", "bytes read",
                "DynamoDB calls", "model calls", "new items"]  # fmt: skip


def _step_rows(report: BenchReport) -> Rows:
    rows = []
    for name, figures in report.store.cases.items():
        for kind in ("plan", "act"):
            ours: StepCost = getattr(figures, kind)
            rows.append(
                [
                    name, kind, _n(ours.write_units), _n(ours.floor_write_units),
                    _x(ours.write_units_over_floor), _n(ours.read_units),
                    _n(ours.bytes_written, 0), _n(ours.bytes_read, 0), str(ours.dynamodb_calls),
                    str(ours.model_calls), " ".join(ours.new_items),
                ]
            )  # fmt: skip
    return rows


_BASELINE_HEADER = ["case", "plan WRU", "plan RRU", "act WRU", "act RRU", "bytes written",
                    "ours / baseline, bytes written"]  # fmt: skip


def _baseline_rows(report: BenchReport) -> Rows:
    rows = []
    for name, figures in report.store.cases.items():
        plan, act = figures.baseline_plan, figures.baseline_act
        ours = figures.plan.bytes_written + figures.act.bytes_written
        theirs = plan.bytes_written + act.bytes_written
        rows.append(
            [
                name, _n(plan.write_units), _n(plan.read_units), _n(act.write_units),
                _n(act.read_units), _n(theirs / 2, 0), _x(ours / theirs),
            ]
        )  # fmt: skip
    return rows


_CHAIN_HEADER = ["case", "steps in the invocation", "WRU / step", "RRU / step", "/ floor",
                 "header bytes", "prompt tokens (no compaction)", "prompt tokens sent"]  # fmt: skip


def _chain_rows(report: BenchReport) -> Rows:
    rows = []
    for name, figures in report.store.cases.items():
        pair, steps = figures.chained_pair, figures.chained_steps
        rows.append(
            [
                name, str(steps), _n(pair.write_units / steps), _n(pair.read_units / steps),
                _x(pair.write_units_over_floor), str(figures.header_bytes),
                _n(figures.prompt.without_compaction, 0), _n(figures.prompt.with_compaction, 0),
            ]
        )  # fmt: skip
    return rows


_RUN_HEADER = ["per step", "AWS calls", "DynamoDB", "model", "EventBridge", "SQS", "Lambda",
               "WRU", "RRU"]  # fmt: skip


def _run_row(label: str, figures: PerStep) -> list[str]:
    return [
        label, _n(figures.aws_calls), _n(figures.dynamodb), _n(figures.model),
        _n(figures.eventbridge), _n(figures.sqs), _n(figures.lambda_invocations),
        _n(figures.write_units), _n(figures.read_units),
    ]  # fmt: skip


def _run_rows(report: BenchReport) -> Rows:
    runs = report.pipeline
    rows = [_run_row(f"unchained, {kind}", f) for kind, f in runs.unchained.by_kind.items()]
    rows.append(_run_row("unchained, steady state", runs.unchained.steady))
    rows.append(
        _run_row(
            f"chained, steady state ({_n(runs.chained.steps_per_worker_invocation)} steps per "
            "invocation)",
            runs.chained.steady,
        )
    )
    rows.append(_run_row("fixed per run, unchained", runs.unchained.fixed))
    rows.append(_run_row("fixed per run, chained", runs.chained.fixed))
    return rows


_COST_HEADER = ["case", "ours, unchained", "ours, chained", "baseline", "chained / baseline"]


def _cost_rows(report: BenchReport) -> Rows:
    cost = report.cost
    return [
        [
            name,
            _usd(cost.ours_unchained[name].total),
            _usd(cost.ours_chained[name].total),
            _usd(line.total),
            _x(cost.ours_chained[name].total / line.total),
        ]
        for name, line in cost.baseline.items()
    ]


_BREAKDOWN_HEADER = ["at 100 messages", "total", "DynamoDB", "SQS", "Lambda requests",
                     "Lambda GB-s", "EventBridge", "Step Functions"]  # fmt: skip


def _breakdown_rows(report: BenchReport, case: str) -> Rows:
    def row(label: str, line: CostLine) -> list[str]:
        return [
            label, _usd(line.total), _usd(line.dynamodb), _usd(line.sqs),
            _usd(line.lambda_requests), _usd(line.lambda_duration), _usd(line.eventbridge),
            _usd(line.step_functions),
        ]  # fmt: skip

    cost = report.cost
    return [
        row("ours, unchained", cost.ours_unchained[case]),
        row("ours, chained", cost.ours_chained[case]),
        row("baseline", cost.baseline[case]),
    ]


_PRICE_HEADER = ["price", "USD", "per", "source"]


def _price_rows(report: BenchReport) -> Rows:
    return [
        [p.item, f"{p.usd:.10f}".rstrip("0").rstrip("."), p.per, p.source]
        for p in report.cost.prices
    ]


_TARGET_HEADER = ["target", "value", "limit", "holds", "detail"]


def _target_rows(report: BenchReport, *, timings: bool) -> Rows:
    rows = []
    for target in report.targets:
        timed = "cold import" in target.name
        if timed and not timings:
            continue
        holds = {True: "yes", False: "no", None: "n/a"}[target.holds]
        rows.append([target.name, _n(target.value, 3), _n(target.limit), holds, target.detail])
    return rows


# --- terminal ---------------------------------------------------------------------------------


def _table(title: str, header: Sequence[str], rows: Iterable[Sequence[str]]) -> Table:
    table = Table(title=title, title_justify="left")
    for index, column in enumerate(header):
        table.add_column(column, justify="left" if index == 0 else "right")
    for row in rows:
        table.add_row(*row)
    return table


def render_report(report: BenchReport, console: Console) -> None:
    """Print every figure group and the targets."""
    budget = report.store.token_budget
    console.print(
        _table(
            f"One step in a fresh invocation (DynamoDB and model; compaction at {budget:,} tokens)",
            _STEP_HEADER,
            _step_rows(report),
        )
    )
    console.print(
        f"Read growth, longest over shortest history: plan {report.store.plan_read_growth:g}x, "
        f"act {report.store.act_read_growth:g}x."
    )
    console.print(
        _table(
            "The baseline: the whole agent in one item, read and rewritten every step",
            _BASELINE_HEADER,
            _baseline_rows(report),
        )
    )
    console.print(
        _table(
            "The next steps as a chaining worker runs them (from a plan, one invocation)",
            _CHAIN_HEADER,
            _chain_rows(report),
        )
    )
    runs = report.pipeline
    console.print(
        _table(
            f"End to end: the {runs.agent} agent of {runs.stack} scripted for "
            f"{runs.unchained.steps} steps on the local environment",
            _RUN_HEADER,
            _run_rows(report),
        )
    )
    console.print(
        f"Local run time: unchained {runs.unchained.seconds:g} s, chained "
        f"{runs.chained.seconds:g} s (this machine and moto, not Lambda)."
    )
    cold = report.cold_start
    if cold.available:
        rows = [
            [name, _n(f.with_bytecode_seconds, 3), _n(f.without_bytecode_seconds, 3)]
            for name, f in cold.handlers.items()
            if f is not None
        ]
        console.print(
            _table(
                f"Cold import from the unpacked bundle, CPython {cold.interpreter} "
                f"(median of {cold.runs}, seconds)",
                ["handler", "with bytecode", "without"],
                rows,
            )
        )
    else:
        console.print(f"Cold import: unavailable ({cold.reason})")
    bundle = report.bundle
    size = f"{bundle.zipped_bytes:,} bytes" if bundle.zipped_bytes else f"n/a ({bundle.error})"
    console.print(
        f"Bundle ({bundle.architecture}): {size}; bytecode: {bundle.bytecode or 'none'} "
        f"({bundle.bytecode_note})"
    )
    console.print(_table(f"Prices ({report.cost.region})", _PRICE_HEADER, _price_rows(report)))
    console.print(
        f"Lambda duration assumed (not measured): {report.cost.assumed_ms_per_invocation:g} ms "
        f"per invocation + {report.cost.assumed_ms_per_step:g} ms per step, at "
        f"{report.cost.lambda_memory_mb} MB."
    )
    console.print(
        _table("Cost per million steps (model tokens excluded)", _COST_HEADER, _cost_rows(report))
    )
    if "100" in report.cost.baseline:
        console.print(_table("By service", _BREAKDOWN_HEADER, _breakdown_rows(report, "100")))
    console.print(_table("Targets (issue 14)", _TARGET_HEADER, _target_rows(report, timings=True)))


# --- markdown (the README) ----------------------------------------------------------------------


_NUMERIC = re.compile(r"^-?\$?[\d,]*\.?\d+x?$|^-$")


def _markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    body = [list(row) for row in rows]
    # Numbers to the right, words to the left.
    align = [
        "---:" if body and all(_NUMERIC.match(row[i]) for row in body) else "---"
        for i in range(len(header))
    ]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines.extend("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in body)
    return "\n".join(lines)


def markdown(report: BenchReport) -> str:
    """The README's figures: every deterministic table of the report, as markdown."""
    runs = report.pipeline
    parts = [
        f"Stack `{report.stack}`; compaction at {report.store.token_budget:,} tokens; "
        f"schema version {report.schema_version}.",
        "**One step in a fresh invocation** (DynamoDB request units, bytes, calls):",
        _markdown_table(_STEP_HEADER, _step_rows(report)),
        "**The baseline** (the article's sketch: the whole agent in one item, read and "
        "rewritten every step, then an event published):",
        _markdown_table(_BASELINE_HEADER, _baseline_rows(report)),
        "**The next steps as a chaining worker runs them** (from a plan, in one invocation "
        "of the worker's timeout):",
        _markdown_table(_CHAIN_HEADER, _chain_rows(report)),
        f"**End to end**, the `{runs.agent}` agent scripted for {runs.unchained.steps} steps "
        "on the local environment (announcer: one invocation per stream record):",
        _markdown_table(_RUN_HEADER, _run_rows(report)),
        f"**Cost per million steps** (model tokens excluded; {report.cost.region} prices, "
        f"Lambda duration assumed at {report.cost.assumed_ms_per_invocation:g} ms per "
        f"invocation + {report.cost.assumed_ms_per_step:g} ms per step):",
        _markdown_table(_COST_HEADER, _cost_rows(report)),
        _markdown_table(_PRICE_HEADER, _price_rows(report)),
        "**Targets** (the cold-start target is a timing: see `agentry bench`):",
        _markdown_table(_TARGET_HEADER, _target_rows(report, timings=False)),
    ]
    return "\n\n".join(parts) + "\n"


def summary(report: BenchReport) -> str:
    """The README's summary: the targets, and what a million steps cost against the baseline."""
    return (
        _markdown_table(_TARGET_HEADER, _target_rows(report, timings=False))
        + "\n\n"
        + _markdown_table(_COST_HEADER, _cost_rows(report))
        + "\n"
    )


def readme_section(text: str, begin: str = BEGIN, end: str = END) -> str | None:
    """The generated section of a document's text (between the markers), or ``None``."""
    start, stop = text.find(begin), text.find(end)
    if start < 0 or stop < start:
        return None
    return text[start + len(begin) : stop].strip("\n") + "\n"


def replace_section(text: str, section: str, begin: str = BEGIN, end: str = END) -> str:
    """``text`` with its generated section replaced by ``section``; ``ValueError`` if no markers."""
    start, stop = text.find(begin), text.find(end)
    if start < 0 or stop < start:
        raise ValueError(f"the markers {begin!r} ... {end!r} are missing")
    return text[: start + len(begin)] + "\n\n" + section.strip("\n") + "\n\n" + text[stop:]
