"""A client for a stack's HTTP API (``agentry agents``): SigV4-signed with botocore, against a
deployed stack (``--stack``, ``--url``) or ``agentry local serve`` (``--local``).

- ``target``: which URL and region (a stack's ``apiEndpoint`` output, a URL, the local port);
- ``api``: :class:`AgentsClient`, the routes as methods, signing with ``SigV4Auth``;
- ``transport``: the one place that does I/O (``urllib``), replaceable in tests;
- ``watch``: following an agent's timeline by polling, and the exit codes;
- ``render``: the rich views the command prints; ``errors``: what can go wrong.

What ``pulumi up`` runs never imports this package, and this package never imports the local
environment or the offline tooling (import-linter contracts): it talks to an API, any API.
"""

from __future__ import annotations

from agentry_stacks.client.api import (
    AgentsClient,
    Decision,
    connect,
    default_credentials,
    default_region,
    sign,
)
from agentry_stacks.client.errors import (
    ApiError,
    ClientError,
    TargetError,
    TransportError,
    UsageError,
    WatchTimeoutError,
)
from agentry_stacks.client.target import LOCAL_PORT, SERVICE, Target, resolve_target
from agentry_stacks.client.watch import TimelineEvent, TimelineKind, Watcher, exit_code_for

__all__ = [
    "LOCAL_PORT",
    "SERVICE",
    "AgentsClient",
    "ApiError",
    "ClientError",
    "Decision",
    "Target",
    "TargetError",
    "TimelineEvent",
    "TimelineKind",
    "TransportError",
    "UsageError",
    "WatchTimeoutError",
    "Watcher",
    "connect",
    "default_credentials",
    "default_region",
    "exit_code_for",
    "resolve_target",
    "sign",
]
