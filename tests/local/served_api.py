"""A running ``agentry local serve`` for tests: the server in-process on a free port, two keys."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.credentials import Credentials

from agentry_stacks.client import AgentsClient, Target
from agentry_stacks.local import LocalEnvironment
from agentry_stacks.local.serve import LocalApiServer
from agentry_stacks.local.signature import KeyTable, SigningKey

ALICE = "arn:aws:sts::123456789012:assumed-role/team-a/alice"
BOB = "arn:aws:sts::123456789012:assumed-role/team-b/bob"
ALICE_KEY = SigningKey("AKIAALICE00000000001", "alice-secret/with+odd=chars", ALICE)
BOB_KEY = SigningKey("AKIABOB0000000000002", "bob-secret", BOB)


@dataclass
class Clock:
    """The server's clock: now, moved by ``shift`` (a test makes requests look stale)."""

    shift: timedelta = field(default_factory=timedelta)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.shift


@dataclass
class Served:
    """A server over an open environment, its keys and its clock."""

    server: LocalApiServer
    env: LocalEnvironment
    clock: Clock

    @property
    def target(self) -> Target:
        return Target(self.server.url, self.server.region)

    def client(self, key: SigningKey, *, region: str | None = None) -> AgentsClient:
        """A client signing with ``key`` (and ``region``, default the server's)."""
        target = Target(self.server.url, region or self.server.region)
        return AgentsClient(
            target, credentials=Credentials(key.access_key_id, key.secret_access_key)
        )


@contextmanager
def serving(graph: dict[str, Any]) -> Iterator[Served]:
    """Serve ``graph``'s environment to Alice's and Bob's keys; no background tick, so each
    request settles the environment before the next one is answered."""
    clock = Clock()
    keys = KeyTable([ALICE_KEY, BOB_KEY])
    with LocalEnvironment(graph=copy.deepcopy(graph)) as env:
        server = LocalApiServer(env, keys, port=0, tick=None, clock=clock)
        with server:
            yield Served(server, env, clock)
