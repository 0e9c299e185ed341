"""Which API to call and in which region: from a stack's outputs, a URL, or the local server.

A deployed stack exports ``apiEndpoint`` (``https://{api-id}.execute-api.{region}.amazonaws.com``);
the region SigV4 must name is read from that host unless ``--region`` says otherwise (a custom
domain hides it). The outputs come from the Pulumi CLI (``pulumi stack output --json``): its
state may live in any backend, so asking the CLI is the only reader that knows them all.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from agentry_stacks.client.errors import TargetError

__all__ = [
    "LOCAL_HOST",
    "LOCAL_PORT",
    "SERVICE",
    "Target",
    "region_of_url",
    "resolve_target",
    "stack_outputs",
]

#: The service name HTTP APIs are signed for (SigV4 credential scope).
SERVICE = "execute-api"
#: Where ``agentry local serve`` listens by default.
LOCAL_HOST = "127.0.0.1"
LOCAL_PORT = 8765
#: The region of ``--local`` when neither ``--region`` nor the AWS config names one: both
#: shipped stacks run in it.
LOCAL_DEFAULT_REGION = "us-east-1"

_EXECUTE_API_HOST = re.compile(
    r"^[a-z0-9]+\.execute-api\.(?P<region>[a-z]{2}(?:-[a-z]+)+-\d)\.amazonaws\.com(?:\.cn)?$"
)
_REGION = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d$")

#: ``(argv, cwd) -> CompletedProcess``: how the Pulumi CLI is run (a test passes a fake).
Runner = Callable[[Sequence[str], Path | None], "subprocess.CompletedProcess[str]"]


@dataclass(frozen=True)
class Target:
    """An HTTP API to call: its base URL (no trailing slash) and the region to sign for."""

    url: str
    region: str

    def url_for(self, path: str) -> str:
        """The URL of a route's ``path`` (``/agents/...``) under the base URL."""
        return f"{self.url}{path}"


def region_of_url(url: str) -> str | None:
    """The region of an ``execute-api`` URL, or ``None`` for any other host."""
    match = _EXECUTE_API_HOST.match(urlsplit(url).hostname or "")
    return match.group("region") if match else None


def _run_pulumi(argv: Sequence[str], cwd: Path | None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv), cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def stack_outputs(
    stack: str, *, project_dir: Path | None = None, runner: Runner | None = None
) -> dict[str, object]:
    """The outputs of ``stack`` as ``pulumi stack output --json --stack STACK`` prints them.

    ``TargetError`` when the Pulumi CLI is not installed, fails, or prints something else.
    """
    argv = ["pulumi", "stack", "output", "--json", "--stack", stack]
    try:
        done = (runner or _run_pulumi)(argv, project_dir)
    except FileNotFoundError as exc:
        raise TargetError(
            "--stack reads the stack's outputs with the Pulumi CLI, and there is no `pulumi` "
            "on PATH: install it (https://www.pulumi.com/docs/iac/download-install/), or pass "
            "--url with the stack's apiEndpoint output"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise TargetError(f"`{' '.join(argv)}` did not answer within 120 s") from exc
    if done.returncode != 0:
        detail = " ".join((done.stderr or done.stdout or "").split())[:500]
        raise TargetError(f"`{' '.join(argv)}` failed (exit {done.returncode}): {detail}")
    try:
        outputs = json.loads(done.stdout)
    except ValueError as exc:
        raise TargetError(f"`{' '.join(argv)}` did not print JSON: {exc}") from exc
    if not isinstance(outputs, dict):
        raise TargetError(f"`{' '.join(argv)}` printed {type(outputs).__name__}, not an object")
    return outputs


def _checked_url(url: str, option: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetError(f"{option}: {url!r} is not an http(s) URL")
    if parts.query or parts.fragment:
        raise TargetError(f"{option}: {url!r} must not carry a query or a fragment")
    return url.rstrip("/")


def _checked_region(region: str, option: str) -> str:
    if not _REGION.match(region):
        raise TargetError(f"{option}: {region!r} is not an AWS region name")
    return region


def resolve_target(
    *,
    stack: str | None = None,
    url: str | None = None,
    local: bool = False,
    port: int = LOCAL_PORT,
    region: str | None = None,
    default_region: str | None = None,
    project_dir: Path | None = None,
    runner: Runner | None = None,
) -> Target:
    """The API named by exactly one of ``stack``, ``url`` or ``local`` (with ``port``).

    The region is ``region`` if given, else the one in the URL's ``execute-api`` host, else
    ``default_region`` (the AWS config's), else, for ``local`` only, us-east-1.
    """
    chosen = [
        name for name, given in (("--stack", stack), ("--url", url), ("--local", local)) if given
    ]
    if len(chosen) != 1:
        given = f" (got {', '.join(chosen)})" if chosen else ""
        raise TargetError(f"give exactly one of --stack STACK, --url URL or --local{given}")
    if region is not None:
        region = _checked_region(region, "--region")
    if stack is not None:
        outputs = stack_outputs(stack, project_dir=project_dir, runner=runner)
        endpoint = outputs.get("apiEndpoint")
        if not isinstance(endpoint, str):
            raise TargetError(
                f"stack {stack!r} has no apiEndpoint output (outputs: "
                f"{', '.join(sorted(outputs)) or 'none'}): has it been deployed?"
            )
        base, option = _checked_url(endpoint, f"stack {stack!r} apiEndpoint"), "--stack"
    elif url is not None:
        base, option = _checked_url(url, "--url"), "--url"
    else:
        if not 0 < port < 65536:
            raise TargetError(f"--port: {port} is not a TCP port")
        base, option = f"http://{LOCAL_HOST}:{port}", "--local"
    found = region or region_of_url(base) or default_region
    if found is None and local:
        found = LOCAL_DEFAULT_REGION
    if found is None:
        raise TargetError(
            f"{option}: {base} does not name its region (not an execute-api host) and no "
            "region is configured: pass --region"
        )
    return Target(url=base, region=_checked_region(found, "region"))
