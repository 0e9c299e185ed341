"""Chaos, second shard: the other half of the seeded schedules (see ``test_chaos.py``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from chaos_run import SCENARIOS, run_batch, shard_seeds


def test_invariants_hold_over_the_second_half_of_the_schedules(
    aws: None, advance_clock: Callable[[float], None]
) -> None:
    # GIVEN the other half of the seeded batches
    stats: Counter[str] = Counter()
    # WHEN each batch runs until nothing is in flight THEN every invariant holds (run_batch)
    for seed in shard_seeds(1, 2):
        run_batch(advance_clock, seed, stats=stats)
    assert stats["scenarios"] >= SCENARIOS // 2 - 4, stats
