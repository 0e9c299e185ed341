"""What a run of the chaos must have struck, so that "every invariant held" means something."""

from __future__ import annotations

from collections import Counter

#: Every fault the wire injects, on every target it applies to.
FAULTS = (
    *(
        f"injected {target} {kind}"
        for target in ("dynamodb", "events", "sqs", "bedrock")
        for kind in ("throttle", "5xx", "lost response", "applied, answered 5xx")
    ),
    "injected dynamodb transaction conflict",
    "injected events partial failure",
    *(f"injected recovery {kind}" for kind in ("throttle", "5xx", "applied, answered 5xx")),
)
#: What else must have happened at least once.
EVENTS = (
    *(f"{kind} crashes" for kind in ("worker", "announcer", "api", "reconciler")),
    *(f"{kind} timeouts" for kind in ("worker", "announcer")),
    "conditional-check conflicts",
    "cancels mid-step",
    "cancels",
    "resumes",
    "follow-ups",
    "duplicate deliveries",
    "stream redeliveries",
    "stream replays",
    "given up while the announcer was down",
    "brownouts",
    "clock jumps",
    "hung tools released",
    "hostile outputs stored",
    "structural corrections",
    "chained commits",
    "nonce pokes",
    "human notifications",
    "recovery executions",
    "outcome SUCCEEDED",
    "outcome FAILED",
    "outcome UNKNOWN",
    "ends COMPLETED",
    "ends CANCELLED",
    "ends NEEDS_HUMAN",
    "chain on",
    "chain off",
    *(f"executed {tool}" for tool in ("book_flight", "charge", "slow", "flaky", "weird")),
)


def missing(stats: Counter[str]) -> list[str]:
    """What the run never did (empty when the chaos struck everywhere)."""
    return [name for name in (*FAULTS, *EVENTS) if stats[name] <= 0]
