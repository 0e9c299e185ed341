"""What can go wrong when calling an Agentry HTTP API, as one small hierarchy::

    ClientError            anything the client reports instead of an answer
    ├── TargetError        which API, where and as whom: no stack output, no Pulumi CLI, a bad
    │                      URL, no region, no credentials (a usage error: exit 2)
    ├── UsageError         the command asks for nothing the API can do (nothing to approve)
    ├── TransportError     the request did not get an HTTP answer: refused, timed out, TLS
    ├── ApiError           the API answered with an error status (4xx, 5xx)
    └── WatchTimeoutError  ``watch --timeout`` ran out before the agent ended or waited

Each is raised once, where it happens, ``from`` the library's own exception.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = [
    "ApiError",
    "ClientError",
    "TargetError",
    "TransportError",
    "UsageError",
    "WatchTimeoutError",
]


class ClientError(Exception):
    """Base of the client's errors: the message is meant for people, one line."""


class TargetError(ClientError):
    """The API to call, its region or the credentials to sign with cannot be determined."""


class UsageError(ClientError):
    """The request makes no sense in the agent's current state (a usage error: exit 2)."""


class TransportError(ClientError):
    """The request got no HTTP answer (connection refused, timeout, TLS, DNS)."""


class ApiError(ClientError):
    """The API answered ``status`` with ``body``.

    The api function's errors are ``{"error": {"code", "message", "fields": [{field,
    reason}]}}``; API Gateway's own (403 from the IAM authorizer, 404 for an unknown route,
    429 from the stage's throttle) are ``{"message": ...}``. Both are read here, so the
    message always names the field when there is one.
    """

    def __init__(self, method: str, path: str, status: int, body: Any) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.body = body
        error = body.get("error") if isinstance(body, dict) else None
        error = error if isinstance(error, dict) else {}
        self.code: str | None = error.get("code") if isinstance(error.get("code"), str) else None
        raw_fields = error.get("fields")
        self.fields: list[dict[str, str]] = [
            {"field": str(f.get("field")), "reason": str(f.get("reason"))}
            for f in (raw_fields if isinstance(raw_fields, list) else [])
            if isinstance(f, dict)
        ]
        super().__init__(f"{method} {path}: {status} {self._describe()}")

    def _describe(self) -> str:
        if self.fields:
            named = "; ".join(f"{f['field']}: {f['reason']}" for f in self.fields)
            return f"{self.code or 'Error'}: {named}"
        body = self.body
        if isinstance(body, dict):
            inner = body.get("error")
            message = body.get("message") or (
                inner.get("message") if isinstance(inner, dict) else None
            )
            if isinstance(message, str):
                return f"{self.code}: {message}" if self.code else message
            return json.dumps(body)[:300]
        return str(body)[:300] if body else "(no body)"


class WatchTimeoutError(ClientError):
    """The agent neither ended nor waited for a person within the watch's time limit."""
