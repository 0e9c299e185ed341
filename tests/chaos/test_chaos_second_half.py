"""Chaos, second half: the other half of the seeded schedules (see ``test_chaos.py``)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from chaos_coverage import missing
from chaos_run import PER_BATCH, SCENARIOS, run_batch, shard_seeds, verdict


def test_invariants_hold_over_the_second_half_of_the_schedules(aws: Any) -> None:
    # GIVEN the second half of the seeded batches
    seeds = shard_seeds(1, 2)
    stats: Counter[str] = Counter()
    outcomes = []
    # WHEN each batch runs until its world rests
    for seed in seeds:
        outcome = run_batch(seed, session=aws)
        stats += outcome.stats
        outcomes.append(outcome)
    # THEN every invariant held in every batch (a failure names its seed and schedule)
    verdict(outcomes)
    assert stats["scenarios"] == len(seeds) * PER_BATCH
    # AND over a full half, the chaos struck everywhere it is meant to
    if len(seeds) * PER_BATCH >= SCENARIOS // 2:
        assert missing(stats) == [], stats
