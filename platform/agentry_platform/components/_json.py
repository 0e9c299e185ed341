"""JSON-string inputs for Pulumi: policies and patterns are rendered once, key-sorted."""

from __future__ import annotations

import json
from typing import Any

import pulumi

__all__ = ["json_output"]


def json_output(value: Any) -> pulumi.Output[str]:
    """Render ``value`` (which may hold Outputs) as a stable JSON string Output."""
    return pulumi.Output.from_input(value).apply(lambda v: json.dumps(v, sort_keys=True))
