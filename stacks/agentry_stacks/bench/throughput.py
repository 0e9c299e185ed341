"""Worker throughput on the local environment: steps committed per second, end to end."""

from __future__ import annotations

import time

from agentry_stacks.bench.report import Throughput

GOAL = "Book a flight from New York to San Francisco for tomorrow"


def throughput(agents: int, stack: str = "dev") -> Throughput:
    """Start ``agents`` demo agents on the local environment and time their steps until idle."""
    # Imported late: the local environment plans the stack (Pulumi) when it opens.
    from agentry_stacks.local import LocalEnvironment

    with LocalEnvironment(stack) as env:
        started = time.perf_counter()
        ids = [env.start(GOAL) for _ in range(agents)]
        env.run_until_idle()
        seconds = time.perf_counter() - started
        steps = sum(int(env.agent(a)["metadata"]["invocationCount"]) for a in ids)
    return Throughput(
        environment=f"local ({stack})",
        agents=agents,
        steps=steps,
        seconds=round(seconds, 3),
        steps_per_second=round(steps / seconds, 2),
    )
