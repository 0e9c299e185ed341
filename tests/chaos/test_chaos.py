"""Chaos: seeded random schedules over many agents, with every invariant checked after each.

``AGENTRY_CHAOS_SCENARIOS`` sets how many scenarios (one agent's life under a seeded schedule,
interleaved with the other agents of its batch) run; ``make chaos`` runs 3000.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Callable

import pytest
from chaos_invariants import InvariantViolation, check_agents
from chaos_schedule import Chaos, Schedule
from chaos_world import ChaosWorld, CrashPoint, ValidatingResponder

from agentry_runtime.offline_model import OfflineModel
from agentry_runtime.state import Status

SCENARIOS = int(os.environ.get("AGENTRY_CHAOS_SCENARIOS", "200"))
#: Agents whose schedules interleave in one table (moto copies a table per transaction).
AGENTS_PER_BATCH = 5


def _run_batch(
    advance_clock: Callable[[float], None],
    seed: int,
    *,
    broken: bool = False,
    stats: Counter[str] | None = None,
) -> None:
    responder = ValidatingResponder(OfflineModel())
    world = ChaosWorld(f"chaos-{seed}", responder=responder, seed=seed, broken=broken)
    try:
        schedule = Schedule(world, chaos=Chaos(), advance_clock=advance_clock)
        ids = schedule.run(AGENTS_PER_BATCH)
        check_agents(world, ids, seed=seed)
        if stats is not None:
            stats.update(str(point) for point in world.store.fired.elements())
            stats.update(world.store.get_header(a).status.value for a in ids)
            stats["recoveries"] += len(world.recovery.notified)
            stats["deliveries"] += schedule.deliveries
    finally:
        world.drop()


def test_invariants_hold_over_seeded_schedules(
    aws: None, advance_clock: Callable[[float], None]
) -> None:
    # GIVEN many seeded schedules of duplicates, reordering, crashes, concurrent workers,
    # model faults and tool failures over batches of agents
    stats: Counter[str] = Counter()
    # WHEN each batch runs until nothing is in flight
    for seed in range(math.ceil(SCENARIOS / AGENTS_PER_BATCH)):
        _run_batch(advance_clock, seed, stats=stats)  # THEN every invariant holds
    # AND the chaos really struck: every crash point fired, and agents ended every way
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
            _run_batch(advance_clock, seed, broken=True)
        except InvariantViolation as violation:
            caught.append(violation)
            break
    # THEN some schedule makes the invariants fail: a committed call executed twice
    assert caught, "the chaos suite did not notice tool calls executed without a claim"
    assert "executed 2 times" in str(caught[0])


@pytest.mark.parametrize("seed", [0, 1])
def test_one_schedule_replays_from_its_seed(
    aws: None, advance_clock: Callable[[float], None], seed: int
) -> None:
    # GIVEN one seed WHEN its batch runs THEN it settles soundly (a failing seed is re-runnable)
    _run_batch(advance_clock, 10_000 + seed)
