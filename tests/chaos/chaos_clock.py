"""One virtual clock for everything that reads the time in a chaos world.

Leases, runner deadlines, visibility timeouts, stale-after windows, claim leases and recovery
backoffs all compare times, so they must all read the same clock, and it must move only when
the schedule says so: a scenario then runs the same way every time, and the schedule moves the
clock past a lease instead of waiting for it. Sleeping (botocore's retry backoff, the loop's
outcome retries, the publisher's jitter, a recovery's ``Wait``) takes virtual time too.

:func:`patched_time` points every reader at the clock: the runtime's ``utcnow`` imports, the
loop's and the worker's ``time`` module, botocore's retry sleep, Powertools' idempotency
expiry, and moto's SQS timestamps (so a message becomes visible again when the virtual clock
passes its visibility timeout).
"""

from __future__ import annotations

import contextlib
import datetime as datetime_module
import time as real_time
import types
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from unittest import mock

import botocore.endpoint
import moto.sqs.models
from aws_lambda_powertools.utilities.idempotency.persistence import base as idempotency_base
from aws_lambda_powertools.utilities.idempotency.persistence import (
    datarecord as idempotency_record,
)
from aws_lambda_powertools.utilities.idempotency.persistence import (
    dynamodb as idempotency_dynamodb,
)
from botocore.retries.standard import ExponentialBackoff

from agentry_runtime import announcer, loop, reconciler, service, state

#: Where every chaos world's clock starts: a fixed moment, so timestamps repeat run to run.
#: Noon, so that a day of virtual time never crosses a date the offline model reads.
EPOCH = datetime(2031, 3, 4, 12, 0, tzinfo=UTC).timestamp()


class VirtualClock:
    """Seconds since the epoch, moved only by :meth:`advance` (and sleeps)."""

    def __init__(self, start: float = EPOCH) -> None:
        self.start = start
        self._now = start

    def now(self) -> float:
        """The current virtual time (epoch seconds)."""
        return self._now

    def utcnow(self) -> datetime:
        """The current virtual time as an aware UTC datetime."""
        return datetime.fromtimestamp(self._now, UTC)

    def advance(self, seconds: float) -> None:
        """Move forward (never back)."""
        self._now += max(0.0, seconds)

    def advance_to(self, moment: float) -> None:
        """Move forward to ``moment`` if it is later."""
        self._now = max(self._now, moment)


def time_module(clock: VirtualClock, sleep: Callable[[float], None]) -> types.SimpleNamespace:
    """A stand-in for the ``time`` module: virtual ``time()`` and ``sleep()``, real the rest."""
    return types.SimpleNamespace(
        time=clock.now,
        sleep=sleep,
        monotonic=real_time.monotonic,
        perf_counter=real_time.perf_counter,
        strftime=real_time.strftime,
        gmtime=real_time.gmtime,
    )


@contextlib.contextmanager
def patched_time(clock: VirtualClock, sleep: Callable[[float], None]) -> Iterator[Any]:
    """Make the runtime, botocore and moto's SQS read ``clock`` and sleep with ``sleep``."""
    fake_time = time_module(clock, sleep)
    original_delay = ExponentialBackoff.delay_amount

    def steady_delay(self: ExponentialBackoff, context: Any) -> float:
        # botocore draws its jitter from the global random module; a fixed draw keeps the
        # backoff (virtual time) the same on every run. The formula stays botocore's.
        self._random = lambda: 0.5
        return float(original_delay(self, context))

    def millis() -> float:
        return clock.now() * 1000

    class VirtualDatetime(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return datetime.fromtimestamp(clock.now(), tz)

    # Powertools' idempotency expires in-progress records on ``datetime.now()``.
    virtual_datetime = types.SimpleNamespace(**vars(datetime_module))
    virtual_datetime.datetime = VirtualDatetime

    with contextlib.ExitStack() as stack:
        for module in (state, reconciler, service, announcer, loop):
            stack.enter_context(mock.patch.object(module, "utcnow", clock.utcnow))
        stack.enter_context(mock.patch.object(loop, "time", fake_time))
        stack.enter_context(mock.patch.object(botocore.endpoint, "time", fake_time))
        stack.enter_context(mock.patch.object(ExponentialBackoff, "delay_amount", steady_delay))
        stack.enter_context(mock.patch.object(moto.sqs.models, "unix_time", clock.now))
        stack.enter_context(mock.patch.object(moto.sqs.models, "unix_time_millis", millis))
        for module in (idempotency_base, idempotency_record, idempotency_dynamodb):
            stack.enter_context(mock.patch.object(module, "dt", virtual_datetime))
        yield fake_time
