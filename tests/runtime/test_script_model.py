"""The scripted offline model keeps its place through retries, duplicates and compaction."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from support.world import World

from agentry_offline.model import Faults
from agentry_offline.script import Script, ScriptedModel
from agentry_runtime.settings import LoopSettings
from agentry_runtime.state import Status
from agentry_runtime.tools import ToolContext, ToolRegistry


class Page(BaseModel):
    """Input of read_page."""

    number: int


def _tools(calls: list[int]) -> ToolRegistry:
    tools = ToolRegistry()

    @tools.tool()
    def read_page(args: Page, ctx: ToolContext) -> str:
        """Read one page of a long document."""
        calls.append(args.number)
        return f"page {args.number}: " + "lorem ipsum " * 150

    return tools


def _script(pages: int) -> Script:
    turns: list[dict[str, Any]] = [
        {"toolUse": [{"name": "read_page", "input": {"number": n}}]} for n in range(pages)
    ]
    turns.append({"text": f"Read {pages} pages."})
    return Script.parse({"turns": turns})


def test_every_turn_is_played_once_even_when_compaction_summarises_the_markers(
    agent_table: str,
) -> None:
    # GIVEN a 12-turn script, a token budget that forces compaction, throttling and duplicates
    calls: list[int] = []
    model = ScriptedModel(_script(12), faults=Faults(throttle=2))
    world = World(
        agent_table,
        responder=model,
        tools=_tools(calls),
        settings=LoopSettings(max_steps=60, token_budget=2500),
    )
    try:
        agent_id = world.start("Read the whole document")
        # WHEN it runs with every event delivered twice
        world.pump(duplicate=True)
        # THEN every page was read once, in order, and the final text was the script's last turn
        header = world.runtime.store.get_header(agent_id)
        assert header.status == Status.COMPLETED, header.last_error
        assert calls == list(range(12))
        answer = world.runtime.service.view(agent_id)["answer"]
        assert answer.endswith("(script turn 13) Read 12 pages.")
        assert header.summary_upto_seq > 0, "the budget should have forced a compaction"
        assert model.failure is None
    finally:
        world.close()
