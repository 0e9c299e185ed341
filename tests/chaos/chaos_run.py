"""Running chaos batches: one world per batch of scenarios, invariants checked once it rests.

A *scenario* is one agent's life; a *batch* runs a few scenarios in one world, so their steps,
faults and humans interleave. Everything a batch does is drawn from its seed: the same seed
gives the same schedule, the same faults and the same outcome, and a failure prints the seed,
the batch's settings and the tail of its schedule. ``AGENTRY_CHAOS_SCENARIOS`` sets how many
scenarios a run plays (``make chaos``: thousands); ``AGENTRY_CHAOS_SEEDS`` replays given seeds.
"""

from __future__ import annotations

import math
import os
import random
import re
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

from chaos_clock import patched_time
from chaos_invariants import InvariantViolation, check
from chaos_schedule import NotSettledError, Profile, Schedule, scenarios_for, seeded_agent_ids
from chaos_world import ChaosWorld, Options
from support.harness import aws_session

from agentry_runtime import events, service

#: Scenarios a run plays; ``make chaos`` sets thousands.
SCENARIOS = int(os.environ.get("AGENTRY_CHAOS_SCENARIOS", "320"))
#: Scenarios whose schedules interleave in one world.
PER_BATCH = 4
#: Lines of the schedule a failure prints (the whole schedule goes to a file).
TRACE_LINES = 150
_ACTOR = re.compile(r"\b(?:worker|announcer|api|recovery|reconciler)\d+\b")


@dataclass
class Outcome:
    """What one batch did, and what it broke."""

    seed: int
    options: Options
    problems: list[str]
    stats: Counter[str] = field(default_factory=Counter)
    trace: list[str] = field(default_factory=list)


def batch_options(seed: int, overrides: dict[str, Any] | None = None) -> Options:
    """The runtime of a batch: chaining on for seeds 0 and 1 modulo 4, off for 2 and 3."""
    return Options(chain=seed % 4 < 2, **(overrides or {}))


def run_batch(seed: int, *, options: Options | None = None, session: Any = None) -> Outcome:
    """Run one seeded batch until it rests and check every invariant."""
    rng = random.Random(seed)
    options = options or batch_options(seed)
    scenarios = scenarios_for(seed, rng, PER_BATCH)
    profile = Profile.draw(rng)
    session = session or aws_session()
    world = ChaosWorld(seed, scenarios, options, session)
    schedule = Schedule(world, rng, profile)
    problems: list[str] = []
    try:
        with (
            patched_time(world.clock, world.conductor.sleep),
            mock.patch.object(service, "new_agent_id", seeded_agent_ids(seed)),
            # The publisher's jitter draws from the global random module: draw it from the seed.
            mock.patch.object(events, "random", random.Random(f"jitter-{seed}")),
        ):
            try:
                schedule.run()
            except NotSettledError as exc:
                problems.append(str(exc))
            ended_badly = {name for name, ok in schedule.endings.items() if not ok}
            broken, seen = check(world, ended_badly=ended_badly)
            problems += broken
        stats = _stats(world, schedule) + seen
    finally:
        world.close()
    return Outcome(seed, options, problems, stats, world.trace.lines)


def _stats(world: ChaosWorld, schedule: Schedule) -> Counter[str]:
    stats: Counter[str] = Counter(schedule.stats)
    stats["scenarios"] += len(world.scenarios)
    stats["ticks"] += schedule.ticks
    stats["worker invocations"] += schedule.queue.invocations
    stats["announcer invocations"] += schedule.stream.invocations
    stats["stream redeliveries"] += schedule.stream.redelivered
    stats["stream replays"] += schedule.stream.replays
    stats["duplicate deliveries"] += schedule.queue.duplicates
    stats["stream give-ups"] += len(world.seen.given_up)
    stats["tool executions"] += len(world.executions.log)
    stats["human notifications"] += len(world.seen.notifications)
    stats["chain " + ("on" if world.options.chain else "off")] += len(world.scenarios)
    stats["conditional-check conflicts"] += world.wire.conflicts
    for key, count in world.wire.injected.items():
        stats[f"injected {key}"] += count
    for execution in world.executions.log:
        stats[f"executed {execution.name}"] += 1
    stats["recovery executions"] += schedule.executions
    stats["given up while the announcer was down"] += sum(f for _, _, f in world.seen.given_up)
    return stats


def verdict(outcomes: list[Outcome]) -> None:
    """Raise ``InvariantViolation`` for the first broken batch: its seed, its settings, its
    problems and the tail of its schedule (the whole schedule goes to a file); name the others.
    """
    broken = [o for o in outcomes if o.problems]
    if not broken:
        return
    first = broken[0]
    dump = Path(tempfile.gettempdir()) / f"agentry-chaos-seed-{first.seed}.log"
    dump.write_text("\n".join(first.trace) + "\n", encoding="utf-8")
    head = f"seed {first.seed} ({first.options}): {len(first.problems)} invariant(s) broken"
    listed = "\n".join(f"- {p}" for p in first.problems[:12])
    others = ", ".join(str(o.seed) for o in broken[1:]) or "none"
    # The schedule's lines about the first broken agent: those that name it (by the end of its
    # id), and every line of the invocations that acted on it.
    agent = re.match(r"agent (\w+):", first.problems[0])
    naming = [line for line in first.trace if agent and agent[1][-4:] in line]
    actors = {name for line in naming for name in _ACTOR.findall(line)}
    lines = [line for line in first.trace if set(_ACTOR.findall(line)) & actors] or first.trace
    shown = "\n".join(lines[-TRACE_LINES:])
    about = f"agent {agent[1]}" if agent else "the batch"
    raise InvariantViolation(
        f"{head}\n{listed}\nother broken seeds: {others}\n"
        f"replay: AGENTRY_CHAOS_SEEDS={first.seed} pytest tests/chaos -k schedules\n"
        f"whole schedule: {dump}\nthe schedule's last {TRACE_LINES} lines about {about}:\n{shown}"
    )


def shard_seeds(shard: int, shards: int) -> list[int]:
    """The batch seeds of one shard (the test files run in parallel under pytest-xdist)."""
    chosen = os.environ.get("AGENTRY_CHAOS_SEEDS")
    if chosen:
        seeds = [int(s) for s in chosen.replace(",", " ").split()]
    else:
        seeds = list(range(math.ceil(SCENARIOS / PER_BATCH)))
    return seeds[shard::shards]
