"""Runtime settings read from the function's environment (set by the platform)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from agentry_runtime.contract import Env


@dataclass(frozen=True)
class LoopSettings:
    """Bounds of the reasoning loop."""

    max_steps: int = 60
    max_tool_failures: int = 3
    max_plan_retries: int = 2
    token_budget: int = 12_000
    tool_timeout_seconds: int = 10
    tool_lease_seconds: int = 120
    max_tool_result_chars: int = 16_000
    ttl_days: int = 30

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> LoopSettings:
        """Settings from ``AGENTRY_*`` variables; a bad value raises naming the variable."""
        values: dict[str, int] = {}
        for name, var in _VARIABLES.items():
            if var not in environ:
                continue
            raw = environ[var]
            try:
                value = int(raw)
            except ValueError:
                raise ValueError(f"{var}: expected an integer, got {raw!r}") from None
            if value < 1:
                raise ValueError(f"{var}: must be at least 1, got {value}")
            values[name] = value
        return cls(**values)


_VARIABLES = {
    "max_steps": Env.MAX_STEPS,
    "max_tool_failures": Env.MAX_TOOL_FAILURES,
    "max_plan_retries": Env.MAX_PLAN_RETRIES,
    "token_budget": Env.TOKEN_BUDGET,
    "tool_timeout_seconds": Env.TOOL_TIMEOUT_SECONDS,
    "ttl_days": Env.AGENT_TTL_DAYS,
}
