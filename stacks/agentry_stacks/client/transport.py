"""Sending one HTTP request: the client's only I/O, behind a one-method interface.

The default transport is the standard library's ``urllib.request``: the client sends small
JSON requests one at a time, so it needs no connection pool or extra dependency. A test (or
another HTTP stack) passes any object with the same ``send`` method.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

from agentry_stacks.client.errors import TransportError

__all__ = ["HttpRequest", "HttpResponse", "Transport", "UrllibTransport"]

#: Bodies larger than this are not read: the api function answers far less.
MAX_RESPONSE_BYTES = 10 * 1024 * 1024

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class HttpRequest:
    """A request ready to send: signed headers included."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None = None


@dataclass(frozen=True)
class HttpResponse:
    """An HTTP answer of any status."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class Transport(Protocol):
    """Sends a request and returns the answer of any status; ``TransportError`` without one."""

    def send(self, request: HttpRequest) -> HttpResponse:
        """Send ``request``."""
        ...


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirect would resend a signed request to another URL (and drop its body on 303):
    # an API never redirects, so a redirect is answered to the caller as it is.
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


class UrllibTransport:
    """HTTP(S) with ``urllib.request``, ``timeout`` seconds per request, no redirects."""

    def __init__(self, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self._opener = urllib.request.build_opener(_NoRedirect())
        # A loopback server (`agentry local serve`) is never reached through HTTP(S)_PROXY,
        # which urllib would otherwise use for 127.0.0.1 unless NO_PROXY names it.
        self._direct = urllib.request.build_opener(_NoRedirect(), urllib.request.ProxyHandler({}))

    def send(self, request: HttpRequest) -> HttpResponse:
        """Send ``request``; any HTTP status is an answer, anything else a ``TransportError``."""
        parts = urlsplit(request.url)
        where = parts.netloc
        opener = self._direct if parts.hostname in _LOOPBACK else self._opener
        prepared = urllib.request.Request(
            request.url, data=request.body, headers=request.headers, method=request.method
        )
        try:
            with opener.open(prepared, timeout=self.timeout) as answer:
                return HttpResponse(
                    answer.status, answer.read(MAX_RESPONSE_BYTES), dict(answer.headers)
                )
        except urllib.error.HTTPError as exc:  # a 4xx/5xx is an answer, not a failure
            with exc:
                return HttpResponse(exc.code, exc.read(MAX_RESPONSE_BYTES), dict(exc.headers))
        except urllib.error.URLError as exc:
            raise TransportError(f"cannot reach {where}: {_reason(exc.reason)}") from exc
        except TimeoutError as exc:
            raise TransportError(f"{where} did not answer within {self.timeout:g} s") from exc
        except (OSError, ssl.SSLError, http.client.HTTPException) as exc:  # reset, cut short
            raise TransportError(f"the connection to {where} failed: {_reason(exc)}") from exc


def _reason(reason: object) -> str:
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused (is the server running, on this port?)"
    if isinstance(reason, socket.gaierror):
        return f"unknown host ({reason.strerror})"
    if isinstance(reason, TimeoutError):
        return "timed out"
    return str(getattr(reason, "strerror", None) or reason)
