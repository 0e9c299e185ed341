"""``Watcher`` over a fake client: new turns once each (cursors), status changes, the end."""

from __future__ import annotations

from typing import Any

import pytest

from agentry_stacks.client import TimelineKind, Watcher, WatchTimeoutError, exit_code_for


class FakeAgent:
    """An agent whose status and messages a test moves; pages of two messages."""

    def __init__(self) -> None:
        self.status = "INITIATED"
        self.messages: list[dict[str, Any]] = []
        self.pages: list[str | None] = []

    def say(self, *texts: str) -> None:
        for text in texts:
            seq = len(self.messages)
            self.messages.append({"seq": seq, "role": "user", "content": [{"text": text}]})

    def get(self, agent_id: str) -> dict[str, Any]:
        return {"status": self.status, "context": {"messageCount": len(self.messages)}}

    def messages_page(
        self, agent_id: str, *, limit: int | None = None, cursor: str | None = None
    ) -> dict[str, Any]:
        self.pages.append(cursor)
        start = 0 if cursor is None else int(cursor) + 1
        page = self.messages[start : start + 2]
        more = start + 2 < len(self.messages)
        return {"messages": page, "nextCursor": str(page[-1]["seq"]) if more else None}


def _watcher(agent: FakeAgent, steps: list[Any], **options: Any) -> Watcher:
    """A watcher whose sleeps run the test's next step instead of waiting."""

    def sleep(_: float) -> None:
        steps.pop(0)()

    client: Any = type("C", (), {"get": agent.get, "messages": agent.messages_page})()
    return Watcher(client, "agent-1", interval=1, sleep=sleep, **options)


def test_turns_are_shown_once_and_the_watch_ends_when_a_person_must_act() -> None:
    agent = FakeAgent()
    agent.say("goal", "plan", "result")

    def more() -> None:
        agent.say("plan 2", "asks")
        agent.status = "AWAITING_APPROVAL"

    watcher = _watcher(agent, [lambda: None, more])
    events = list(watcher.events())
    texts = [e.message["content"][0]["text"] for e in events if e.kind is TimelineKind.MESSAGE]
    statuses = [(e.previous, e.status) for e in events if e.kind is TimelineKind.STATUS]
    assert texts == ["goal", "plan", "result", "plan 2", "asks"]
    assert statuses == [(None, "INITIATED"), ("INITIATED", "AWAITING_APPROVAL")]
    assert watcher.status == "AWAITING_APPROVAL"
    # Pages are read from the last one seen, not from the start (and not when nothing is new)
    assert agent.pages == [None, "1", "1", "3"]
    assert events[-1].to_json() == {
        "kind": "status",
        "agentId": "agent-1",
        "status": "AWAITING_APPROVAL",
        "previous": "INITIATED",
    }


def test_a_timeout_is_an_error_naming_the_status() -> None:
    agent = FakeAgent()
    now = [0.0]

    def tick() -> None:
        now[0] += 10

    watcher = _watcher(agent, [tick] * 5, timeout=25, clock=lambda: now[0])
    with pytest.raises(WatchTimeoutError, match="agent-1 is still INITIATED after 25 s"):
        list(watcher.events())


@pytest.mark.parametrize(
    ("status", "code"),
    [
        ("COMPLETED", 0),
        ("NEEDS_HUMAN", 3),
        ("AWAITING_APPROVAL", 3),
        ("CANCELLED", 1),
        ("FAILED", 1),
    ],
)
def test_exit_codes_match_local_run(status: str, code: int) -> None:
    from agentry_stacks.local.run import exit_code

    assert exit_code_for(status) == code == exit_code(status)
