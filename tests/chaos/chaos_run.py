"""Running chaos batches: one ``ChaosWorld`` per batch, invariants checked when it settles."""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Callable

from chaos_invariants import check_agents
from chaos_schedule import Chaos, Schedule
from chaos_world import ChaosWorld, ValidatingResponder

from agentry_offline.model import OfflineModel

#: Scenarios (one agent's life under a seeded schedule) in a run; ``make chaos`` sets 3000.
SCENARIOS = int(os.environ.get("AGENTRY_CHAOS_SCENARIOS", "200"))
#: Agents whose schedules interleave in one table. Small: moto deep-copies the whole table on
#: every transaction, so a big table makes every step slower.
AGENTS_PER_BATCH = 4


def run_batch(
    advance_clock: Callable[[float], None],
    seed: int,
    *,
    broken: bool = False,
    stats: Counter[str] | None = None,
) -> None:
    """Run one seeded batch to the end and check every invariant (``InvariantViolation``)."""
    responder = ValidatingResponder(OfflineModel())
    world = ChaosWorld(f"chaos-{seed}", responder=responder, seed=seed, broken=broken)
    try:
        schedule = Schedule(world, chaos=Chaos(), advance_clock=advance_clock)
        ids = schedule.run(AGENTS_PER_BATCH)
        check_agents(world, ids, seed=seed)
        if stats is not None:
            stats.update(str(point) for point in world.store.fired.elements())
            stats.update(world.store.get_header(a).status.value for a in ids)
            stats["deliveries"] += schedule.deliveries
            stats["scenarios"] += len(ids)
    finally:
        world.drop()


def shard_seeds(shard: int, shards: int) -> range:
    """The batch seeds of one shard (test files run in parallel under pytest-xdist)."""
    batches = math.ceil(SCENARIOS / AGENTS_PER_BATCH)
    return range(shard, batches, shards)
