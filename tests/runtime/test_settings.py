"""Settings from the function environment: every bad value names its variable."""

from __future__ import annotations

import pytest

from agentry_runtime.runtime import Runtime
from agentry_runtime.settings import LoopSettings

BASE = {
    "AGENTRY_TABLE_NAME": "agents",
    "AGENTRY_EVENT_BUS_NAME": "bus",
    "AGENTRY_MODEL_ID": "anthropic.claude-3-5-haiku-20241022-v1:0",
}


def test_loop_settings_read_the_platform_variables() -> None:
    settings = LoopSettings.from_env(
        {
            "AGENTRY_MAX_STEPS": "7",
            "AGENTRY_TOOL_TIMEOUT_SECONDS": "3",
            "AGENTRY_TOKEN_BUDGET": "99",
        }
    )
    assert (settings.max_steps, settings.tool_timeout_seconds, settings.token_budget) == (7, 3, 99)


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("AGENTRY_MAX_STEPS", "many", "expected an integer"),
        ("AGENTRY_MAX_TOOL_FAILURES", "0", "at least 1"),
        ("AGENTRY_TOKEN_BUDGET", "-5", "at least 1"),
    ],
)
def test_bad_loop_settings_name_the_variable(variable: str, value: str, reason: str) -> None:
    with pytest.raises(ValueError, match=f"{variable}: .*{reason}"):
        LoopSettings.from_env({variable: value})


def test_runtime_from_env_wires_tools_with_the_configured_timeout() -> None:
    runtime = Runtime.from_env({**BASE, "AGENTRY_TOOL_TIMEOUT_SECONDS": "4"})
    assert runtime.store.table_name == "agents"
    assert runtime.publisher.bus_name == "bus"
    assert {runtime.tools.get(n).timeout_seconds for n in runtime.tools.names()} == {4}


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "AGENTRY_TABLE_NAME, AGENTRY_EVENT_BUS_NAME, AGENTRY_MODEL_ID"),
        ({**BASE, "AGENTRY_MAX_REQUEST_BYTES": "²"}, "AGENTRY_MAX_REQUEST_BYTES"),
        ({**BASE, "AGENTRY_MAX_REQUEST_BYTES": "0"}, "AGENTRY_MAX_REQUEST_BYTES"),
        ({**BASE, "AGENTRY_MAX_STEPS": "x"}, "AGENTRY_MAX_STEPS"),
    ],
)
def test_runtime_from_env_rejects_bad_environments(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Runtime.from_env(environ)
