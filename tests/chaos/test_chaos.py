"""Chaos, first shard: seeded schedules over many agents, every invariant checked after each.

A scenario is one agent's life under a seeded schedule of duplicate and reordered deliveries,
crashes at every commit point, two workers at once, model throttling, server errors, malformed
plans and tool failures, interleaved with the other agents of its batch. The seeds are split
over two test files so that pytest-xdist runs the halves in parallel.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from chaos_invariants import InvariantViolation
from chaos_run import SCENARIOS, run_batch, shard_seeds
from chaos_world import CrashPoint

from agentry_runtime.state import Status


def test_invariants_hold_over_the_first_half_of_the_schedules(
    aws: None, advance_clock: Callable[[float], None]
) -> None:
    # GIVEN half of the seeded batches
    stats: Counter[str] = Counter()
    # WHEN each batch runs until nothing is in flight THEN every invariant holds (run_batch)
    for seed in shard_seeds(0, 2):
        run_batch(advance_clock, seed, stats=stats)
    # AND the chaos really struck: every crash point fired, and agents ended every way
    assert stats["scenarios"] >= SCENARIOS // 2 - 4, stats
    assert {str(p) for p in CrashPoint} <= stats.keys(), stats
    for status in (Status.COMPLETED, Status.NEEDS_HUMAN, Status.CANCELLED):
        assert stats[status.value] > 0, stats


def test_a_disabled_idempotency_record_breaks_the_invariants(
    aws: None, advance_clock: Callable[[float], None]
) -> None:
    # GIVEN a store whose tool-call claim ignores the idempotency record (a deliberate bug)
    caught: list[InvariantViolation] = []
    # WHEN seeded schedules run against it
    for seed in range(40):
        try:
            run_batch(advance_clock, seed, broken=True)
        except InvariantViolation as violation:
            caught.append(violation)
            break
    # THEN some schedule makes the invariants fail: a committed call executed twice
    assert caught, "the chaos suite did not notice tool calls executed without a claim"
    assert "executed 2 times" in str(caught[0])
