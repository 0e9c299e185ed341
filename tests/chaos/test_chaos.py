"""Chaos, first half: seeded schedules over the whole outbox, every invariant checked after each.

A scenario is one agent's life; a batch interleaves a few of them in one world (the real
handlers over moto) under a seeded schedule of faults on every AWS call the runtime makes,
crashes and timeouts at any call, duplicate, reordered and concurrent deliveries, stream
redeliveries, replays and outages, humans acting at any moment, hostile model turns and tool
outputs, with chaining on and off (by seed). The seeds are split over two test
files so that pytest-xdist runs the halves in parallel; ``AGENTRY_CHAOS_SCENARIOS`` scales the
run and ``AGENTRY_CHAOS_SEEDS`` replays given seeds.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from chaos_coverage import missing
from chaos_run import PER_BATCH, SCENARIOS, run_batch, shard_seeds, verdict


def test_invariants_hold_over_the_first_half_of_the_schedules(aws: Any) -> None:
    # GIVEN the first half of the seeded batches
    seeds = shard_seeds(0, 2)
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
