"""Pure functions that turn stored state into a Converse prompt, and pick what to compact."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date
from typing import Any

from agentry_runtime.state import Message, Summary, TextBlock, ToolResultBlock, ToolUseBlock

_SYSTEM_PROMPT = """\
You are Agentry, an autonomous agent that reaches the user's goal by calling tools.
Today's date is {today}.

Goal: {goal}

Work step by step. When you need information or need to act, call one of the tools; you will
see each tool's result (or its error) in the next turn and may correct yourself. When the goal
is reached, or cannot be reached without the user, answer in plain text and stop."""

SUMMARY_PREFIX = "Summary of the earlier conversation:"
RESUME_PREFIX = "Instruction from a human operator:"


def system_prompt(goal: str, today: date) -> str:
    """The static system prompt: the agent's role, today's date and its goal."""
    return _SYSTEM_PROMPT.format(today=today.isoformat(), goal=goal)


def converse_messages(
    messages: Sequence[Message], summary: Summary | None = None
) -> list[dict[str, Any]]:
    """The Converse ``messages`` for a history, after an optional compaction summary.

    Consecutive turns of the same role are merged into one turn (a human instruction after a
    tool-result turn would otherwise break Bedrock's strict user/assistant alternation).
    """
    turns: list[dict[str, Any]] = []
    if summary is not None:
        turns.append({"role": "user", "content": [{"text": f"{SUMMARY_PREFIX}\n{summary.text}"}]})
    for message in messages:
        turn = message.to_converse()
        if turns and turns[-1]["role"] == turn["role"]:
            turns[-1] = {"role": turn["role"], "content": turns[-1]["content"] + turn["content"]}
        else:
            turns.append(turn)
    return turns


def compaction_cut(messages: Sequence[Message], *, keep_tokens: int) -> int | None:
    """The ``seq`` up to which to summarise so the rest fits ``keep_tokens``, or None.

    The kept part always starts with an assistant turn, so a tool-result turn is never
    separated from the tool-use turn it answers, and the summary (a user turn) precedes it.
    """
    kept = 0
    cut: int | None = None
    for index in range(len(messages) - 1, 0, -1):
        kept += estimate_message_tokens(messages[index])
        if kept > keep_tokens:
            break
        if messages[index].role == "assistant":
            cut = messages[index - 1].seq
    if cut is None:
        # Even the last exchange is over budget: keep just the newest assistant turn onwards.
        for index in range(len(messages) - 1, 0, -1):
            if messages[index].role == "assistant":
                return messages[index - 1].seq
        return None
    return cut


def estimate_message_tokens(message: Message) -> int:
    """A deterministic token estimate for one stored turn (about four characters a token)."""
    return len(json.dumps(message.to_converse(), separators=(",", ":"))) // 4 + 1


def transcript(messages: Sequence[Message], previous: Summary | None = None) -> str:
    """A plain-text rendering of turns for the summariser, after the previous summary."""
    lines: list[str] = []
    if previous is not None:
        lines.append(f"{SUMMARY_PREFIX} {previous.text}")
    for message in messages:
        for block in message.content:
            if isinstance(block, TextBlock):
                lines.append(f"{message.role}: {block.text}")
            elif isinstance(block, ToolUseBlock):
                call = block.tool_use
                lines.append(f"assistant called {call.name}({json.dumps(call.input)})")
            elif isinstance(block, ToolResultBlock):
                result = block.tool_result
                body = json.dumps(result.content)
                lines.append(f"tool result ({result.status}): {body}")
    return "\n".join(lines)
