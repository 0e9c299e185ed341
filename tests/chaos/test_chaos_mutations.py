"""The chaos suite can fail: each safeguard, weakened through a seam, breaks an invariant.

A suite whose invariants always hold could be checking nothing. Each test here runs the same
seeded schedules against a runtime with one safeguard taken away, through a constructor
parameter the runtime already has (or, for the tool claim, a store whose claim is a no-op), and
asserts that some schedule of a fixed seed set breaks the invariant that safeguard protects.
It also pins that a seed replays exactly: the same schedule, the same outcome.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from chaos_run import Outcome, batch_options, run_batch

#: The seeds each weakened runtime is tried on, in order, until one breaks an invariant.
SEEDS = range(40)


def _first_broken(session: Any, seeds: Iterable[int], **overrides: Any) -> Outcome | None:
    for seed in seeds:
        outcome = run_batch(seed, options=batch_options(seed, overrides), session=session)
        if outcome.problems:
            return outcome
    return None


def test_without_the_retry_of_failed_entries_the_stream_gives_up_on_the_outbox(aws: Any) -> None:
    # GIVEN an announcer whose publisher tries each PutEvents entry once (no retry of the
    # entries a 200 answer reports failed)
    # WHEN the seeded schedules run (the bus fails entries in brownouts of 8 to 24 calls)
    broken = _first_broken(aws, SEEDS, publisher_attempts=1)
    # THEN a schedule breaks the outbox's promise: the stream mapping spends its retries on
    # what the publisher should have retried, and gives records up while the announcer is up
    assert broken is not None, "no schedule noticed that failed entries are not retried"
    assert any("while the announcer was up" in p for p in broken.problems), broken.problems


def test_without_the_cancellation_reread_an_act_step_runs_calls_of_a_cancelled_agent(
    aws: Any,
) -> None:
    # GIVEN a loop that does not re-read the header before each tool call after the first
    # WHEN the seeded schedules run (cancels land right before a worker claims a call)
    broken = _first_broken(aws, SEEDS, recheck_cancellation=False)
    # THEN a schedule finds a worker that went on starting calls after the cancel committed
    assert broken is not None, "no schedule noticed calls started after a cancel"
    assert any("after the cancel was committed" in p for p in broken.problems), broken.problems


def test_without_the_claim_a_tool_call_runs_twice(aws: Any) -> None:
    # GIVEN a store whose tool-call claim always succeeds (the idempotency record ignored)
    # WHEN the seeded schedules run (duplicate and concurrent deliveries, crashes, takeovers)
    broken = _first_broken(aws, SEEDS, claims=False)
    # THEN a schedule finds a committed call executed more than once
    assert broken is not None, "no schedule noticed a tool call executed twice"
    assert any(re.search(r"executed \d+ times", p) for p in broken.problems), broken.problems


def test_a_seed_replays_exactly(aws: Any) -> None:
    # GIVEN a seed
    seed = 6
    # WHEN its batch runs twice
    first, second = run_batch(seed, session=aws), run_batch(seed, session=aws)
    # THEN both runs made the same choices, met the same faults and ended the same way
    assert first.trace == second.trace
    assert first.stats == second.stats
    assert first.problems == second.problems == []
