"""Scripted offline runs: a model that plays a script of turns, one per plan step, for any agent.

A script is JSON::

    {"turns": [{"toolUse": [{"name": "get_order", "input": {"orderId": "A-1001"}}]},
               {"text": "Order A-1001 shipped on Monday."}]}

Each plan step gets the next turn: tool calls (with fresh ``toolUseId`` values) or a final text.
The position is read back from the conversation itself (each answer carries its turn number), so
a retried or duplicated model call gets the same answer and compaction does not lose the place.
Requests are still validated as Bedrock does; a scripted call whose input fails the tool's schema
goes through the loop's normal correction path. A script that runs out, or names a tool the agent
does not have, makes the model refuse with a message naming the turn (kept in ``failure``): the
run ends in an error, never in a false COMPLETED.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agentry_offline.bedrock import tool_specs
from agentry_offline.model import (
    LABEL,
    CannotAnswerError,
    Faults,
    OfflineResponder,
    _digest,
)

__all__ = ["Script", "ScriptCall", "ScriptError", "ScriptTurn", "ScriptedModel"]

_MARKER = re.compile(re.escape(LABEL) + r" \(script turn (\d+)\)")


class ScriptError(ValueError):
    """A script file is unreadable or invalid; the message names the field and the reason."""


class ScriptCall(BaseModel):
    """One tool call of a scripted turn."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9_-]+$")
    input: dict[str, Any] = Field(default_factory=dict)


class ScriptTurn(BaseModel):
    """One plan step's answer: tool calls, or the final text."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    tool_use: list[ScriptCall] | None = Field(default=None, alias="toolUse", min_length=1)
    text: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_kind(self) -> ScriptTurn:
        if (self.tool_use is None) == (self.text is None):
            raise ValueError("a turn has exactly one of toolUse or text")
        return self


class Script(BaseModel):
    """A script of turns for :class:`ScriptedModel`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    turns: list[ScriptTurn] = Field(min_length=1)

    @classmethod
    def parse(cls, data: Any, *, source: str = "script") -> Script:
        """Validate a decoded script; ``ScriptError`` naming the field (``turns[1].toolUse``)."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = "".join(
                f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"]
            ).lstrip(".")
            reason = str(error["msg"]).removeprefix("Value error, ")
            raise ScriptError(f"{source}: {where or '(document)'}: {reason}") from None

    @classmethod
    def load(cls, path: Path) -> Script:
        """Read and validate a script file."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ScriptError(f"script {path}: cannot read it ({exc.strerror})") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ScriptError(f"script {path}: not JSON ({exc})") from None
        return cls.parse(data, source=f"script {path}")


class ScriptedModel(OfflineResponder):
    """Answers each plan step with the next turn of a :class:`Script`."""

    def __init__(self, script: Script, *, faults: Faults | None = None) -> None:
        super().__init__(faults=faults)
        self.script = script

    def _summarise(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # Keep the place in the script: the summary replaces the turns that carried it.
        summary = super()._summarise(messages)
        played = _position(messages)
        if played:
            summary.append({"text": f"{LABEL} (script turn {played}) was the last turn played."})
        return summary

    def _answer(self, request: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
        messages: list[dict[str, Any]] = request["messages"]
        position = _position(messages)
        number = position + 1
        turns = self.script.turns
        if position >= len(turns):
            raise CannotAnswerError(
                f"script turn {number}: the script ran out (it has {len(turns)} turns); "
                "add the turns this agent still needs"
            )
        turn = turns[position]
        marker = f"{LABEL} (script turn {number})"
        if turn.text is not None:
            return [{"text": f"{marker} {turn.text}"}], "end_turn"
        assert turn.tool_use is not None
        offered = tool_specs(request.get("toolConfig"))
        for index, call in enumerate(turn.tool_use):
            if call.name not in offered:
                raise CannotAnswerError(
                    f"script turn {number}: toolUse[{index}] names tool {call.name!r}, which this "
                    f"agent does not have; its tools: {', '.join(offered) or 'none'}"
                )
        uses = [
            {
                # Fresh per call and stable for a retried request of the same step.
                "toolUseId": "tooluse_" + _digest([messages, number, index])[:22],
                "name": call.name,
                "input": call.input,
            }
            for index, call in enumerate(turn.tool_use)
        ]
        names = ", ".join(call.name for call in turn.tool_use)
        return [{"text": f"{marker} calling {names}"}, *({"toolUse": use} for use in uses)], (
            "tool_use"
        )


def _position(messages: list[dict[str, Any]]) -> int:
    """How many turns of the script the conversation already holds (from their markers)."""
    seen = 0
    for message in messages:
        for block in message.get("content", []):
            text = block.get("text") if isinstance(block, dict) else None
            if isinstance(text, str):
                for match in _MARKER.finditer(text):
                    seen = max(seen, int(match.group(1)))
    return seen
