"""The DynamoDB state store, against moto's in-process DynamoDB."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agentry_runtime import state
from agentry_runtime.contract import (
    ErrorType,
    HeaderAttr,
    StepKind,
    agent_pk,
    message_sk,
    tool_sk,
)
from agentry_runtime.errors import (
    AgentExistsError,
    AgentNotFoundError,
    ItemTooLargeError,
    StaleStepError,
)
from agentry_runtime.state import (
    AgentHeader,
    LastError,
    Message,
    Status,
    Summary,
    TextBlock,
    ToolCallStatus,
    ToolInvocation,
    ToolUse,
    ToolUseBlock,
)
from agentry_runtime.store import AgentStore, item_size

TTL = 1_900_000_000


# --- builders -------------------------------------------------------------------------------


def _header(agent_id: str = "agent-1", **changes: Any) -> AgentHeader:
    fields: dict[str, Any] = {
        "agent_id": agent_id,
        "goal": "Book a flight from New York to San Francisco",
        "runtime_version": "0.1.0",
        "model_id": "anthropic.claude-3-haiku",
        "message_count": 1,
        "ttl": TTL,
    }
    return AgentHeader(**(fields | changes))


def _text(seq: int, text: str = "hello", role: str = "user") -> Message:
    return Message(seq=seq, role=role, content=[TextBlock(text=text)], step=seq)


def _tool_use(seq: int, tool_use_id: str, tool_input: dict[str, Any]) -> Message:
    use = ToolUse(tool_use_id=tool_use_id, name="search_flights", input=tool_input)
    return Message(seq=seq, role="assistant", content=[ToolUseBlock(tool_use=use)])


def _call(agent_id: str, tool_use_id: str, tool_input: dict[str, Any]) -> ToolInvocation:
    return ToolInvocation(
        agent_id=agent_id, tool_use_id=tool_use_id, name="search_flights", input=tool_input, step=0
    )


@pytest.fixture
def store(agent_table: str, dynamodb_client: Any) -> AgentStore:
    """A store on the moto table, with the injected client."""
    return AgentStore(agent_table, client=dynamodb_client)


@pytest.fixture
def created(store: AgentStore) -> AgentHeader:
    """An agent that exists with its first message."""
    header = _header()
    store.create(header, _text(0, "Book a flight"))
    return header


def _raw(store: AgentStore, agent_id: str, sk: str) -> dict[str, Any]:
    key = {"pk": {"S": agent_pk(agent_id)}, "sk": {"S": sk}}
    item: dict[str, Any] = store.client.get_item(TableName=store.table_name, Key=key)["Item"]
    return item


@pytest.fixture
def sent_sizes(dynamodb_client: Any) -> Iterator[list[int]]:
    """The item_size of every item each TransactWriteItems call sends (one total per call)."""
    sizes: list[int] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        sizes.append(sum(item_size(action["Put"]["Item"]) for action in params["TransactItems"]))

    dynamodb_client.meta.events.register(
        "provide-client-params.dynamodb.TransactWriteItems", record
    )
    yield sizes
    dynamodb_client.meta.events.unregister(
        "provide-client-params.dynamodb.TransactWriteItems", record
    )


# --- create / get ---------------------------------------------------------------------------


def test_create_then_get_round_trips_header_and_first_message(store: AgentStore) -> None:
    # GIVEN a header with every kind of field set, and a first message
    header = _header(
        last_error=LastError(error_type=ErrorType.MODEL_THROTTLED, message="slow down", step=0),
        pending_tool_use_ids=["t-1"],
        answer="none yet",
        last_plan_at=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    first = _text(0, "Book a flight")
    # WHEN the agent is created
    store.create(header, first)
    # THEN the header and the message read back equal, version unchanged
    assert store.get_header("agent-1") == header
    assert store.get_header("agent-1").version == 0
    assert store.messages("agent-1") == [first]


def test_create_twice_raises_agent_exists(store: AgentStore, created: AgentHeader) -> None:
    # GIVEN an existing agent WHEN it is created again THEN AgentExistsError, first data intact
    with pytest.raises(AgentExistsError, match="agent-1"):
        store.create(_header(goal="another goal"), _text(0, "other"))
    assert store.get_header("agent-1").goal == created.goal
    assert store.messages("agent-1")[0].text() == "Book a flight"


def test_missing_agent_is_not_found(store: AgentStore) -> None:
    # GIVEN no agent WHEN it is read THEN get raises and find answers None
    with pytest.raises(AgentNotFoundError, match="ghost"):
        store.get_header("ghost")
    assert store.find_header("ghost") is None


def test_meta_item_is_flat_with_the_state_machines_attribute_names(
    store: AgentStore,
) -> None:
    # GIVEN an agent with a last error and nothing awaited
    error = LastError(error_type=ErrorType.PLANNING_FAILED, message="bad plan", step=0)
    store.create(_header(last_error=error, next_step=None), _text(0))
    # WHEN the raw META item is read
    item = _raw(store, "agent-1", "META")
    # THEN every HeaderAttr is a top-level attribute, except nextStep which is absent
    expected = {attr.value for attr in HeaderAttr} - {HeaderAttr.NEXT_STEP.value}
    assert expected <= item.keys()
    assert HeaderAttr.NEXT_STEP.value not in item
    assert item[HeaderAttr.LAST_ERROR_TYPE.value] == {"S": "PlanningFailed"}
    assert item["usage"]["M"].keys() >= {"inputTokens", "cacheReadInputTokens"}
    assert item["ttl"] == {"N": str(TTL)}


# --- commit ---------------------------------------------------------------------------------


def test_commit_appends_messages_and_bumps_version(store: AgentStore, created: AgentHeader) -> None:
    # GIVEN an agent at version 0 WHEN a step commits two messages
    after = created.model_copy(update={"message_count": 3, "step": 1})
    written = store.commit(0, after, messages=[_text(1, "a", "assistant"), _text(2, "b")])
    # THEN the header is written at version 1 and the history holds three messages in order
    assert written.version == 1
    assert store.get_header("agent-1") == written
    assert [m.text() for m in store.messages("agent-1")] == ["Book a flight", "a", "b"]
    assert store.item_count("agent-1") == {"META": 1, "MSG": 3, "TOOL": 0, "SUMMARY": 0}


def test_concurrent_commits_one_wins_and_loser_writes_nothing(
    store: AgentStore, created: AgentHeader
) -> None:
    # GIVEN two workers that both read version 0
    winner = created.model_copy(update={"message_count": 2, "step": 1})
    loser = created.model_copy(update={"message_count": 3, "step": 1, "goal": "loser"})
    # WHEN both commit
    store.commit(0, winner, messages=[_text(1, "winner")])
    with pytest.raises(StaleStepError, match="version is no longer 0"):
        store.commit(0, loser, messages=[_text(1, "loser"), _text(2, "loser too")])
    # THEN only the winner's header and message exist: the loser's MSG#2 was not written
    assert store.get_header("agent-1").goal == created.goal
    assert [m.text() for m in store.messages("agent-1")] == ["Book a flight", "winner"]
    assert store.item_count("agent-1")["MSG"] == 2


def test_commit_never_overwrites_a_stored_message(store: AgentStore, created: AgentHeader) -> None:
    # GIVEN an agent whose message 0 exists
    # WHEN a commit at the right version tries to write another message 0
    with pytest.raises(StaleStepError):
        store.commit(0, created, messages=[_text(0, "rewritten history")])
    # THEN history and header are untouched: messages are append-only
    assert store.messages("agent-1")[0].text() == "Book a flight"
    assert store.get_header("agent-1").version == 0


def test_commit_writes_tool_records_and_summary_with_ttl(
    store: AgentStore, created: AgentHeader
) -> None:
    # GIVEN a plan step that asks for a tool call with float input, and a summary
    tool_input = {"price": 0.1, "passengers": 2, "nested": {"ratio": 1e-7}}
    message = _tool_use(1, "t-1", tool_input)
    summary = Summary(upto_seq=0, text="the user wants a flight")
    # WHEN it commits
    store.commit(
        0,
        created.model_copy(update={"message_count": 2}),
        messages=[message],
        tool_calls=[_call("agent-1", "t-1", tool_input)],
        summary=summary,
    )
    # THEN the record is PENDING, its input round-trips exactly, and every item carries the ttl
    record = store.get_tool_call("agent-1", "t-1")
    assert record is not None
    assert record.status == ToolCallStatus.PENDING
    assert record.input == tool_input
    assert isinstance(record.input["price"], float)
    assert store.messages("agent-1")[1] == message
    assert store.latest_summary("agent-1") == summary
    assert [c.tool_use_id for c in store.tool_calls("agent-1")] == ["t-1"]
    for sk in ("META", message_sk(1), tool_sk("t-1"), "SUMMARY#00000000"):
        assert _raw(store, "agent-1", sk)["ttl"] == {"N": str(TTL)}


def test_oversized_message_raises_and_writes_nothing(
    store: AgentStore, created: AgentHeader
) -> None:
    # GIVEN a message bigger than the item limit
    huge = _text(1, "x" * 360_000, "assistant")
    # WHEN it is committed THEN ItemTooLargeError names its key, and nothing changed
    with pytest.raises(ItemTooLargeError, match=message_sk(1)):
        store.commit(0, created.model_copy(update={"message_count": 2}), messages=[huge])
    assert store.get_header("agent-1").version == 0
    assert store.item_count("agent-1")["MSG"] == 1


def test_tool_record_without_room_for_its_result_is_refused(
    store: AgentStore, created: AgentHeader
) -> None:
    # GIVEN a tool call whose input leaves no room for a full result in the same item
    big_input = {"blob": "y" * 160_000}
    # WHEN it is committed THEN ItemTooLargeError names the tool record
    with pytest.raises(ItemTooLargeError, match=tool_sk("t-big")):
        store.commit(0, created, tool_calls=[_call("agent-1", "t-big", big_input)])
    assert store.get_tool_call("agent-1", "t-big") is None


def test_bytes_written_per_commit_do_not_grow_with_history(
    store: AgentStore, sent_sizes: list[int]
) -> None:
    # GIVEN two agents, one with a short history and one with a long one
    for agent_id, length in (("agent-s", 10), ("agent-l", 80)):
        header = _header(agent_id)
        store.create(header, _text(0))
        history = [_text(seq, f"turn {seq:03d}") for seq in range(1, length)]
        store.commit(0, header.model_copy(update={"message_count": length}), messages=history)
    # WHEN each commits the same one-message step
    for agent_id, length in (("agent-s", 10), ("agent-l", 80)):
        header = store.get_header(agent_id)
        sent_sizes.clear()
        store.commit(
            header.version,
            header.model_copy(update={"message_count": length + 1}),
            messages=[_text(length, "the same new turn")],
        )
        if agent_id == "agent-s":
            short = sent_sizes[0]
    # THEN both transactions send exactly the same number of bytes
    assert sent_sizes[0] == short


# --- reading the history --------------------------------------------------------------------


def test_messages_follow_pagination_across_small_pages(
    store: AgentStore, created: AgentHeader, dynamodb_client: Any
) -> None:
    # GIVEN 25 messages and DynamoDB pages of 4 items
    store.commit(
        0,
        created.model_copy(update={"message_count": 25}),
        messages=[_text(seq, f"m{seq}") for seq in range(1, 25)],
    )
    calls: list[int] = []

    def small_pages(params: dict[str, Any], **_: Any) -> None:
        params["Limit"] = 4
        calls.append(1)

    dynamodb_client.meta.events.register("provide-client-params.dynamodb.Query", small_pages)
    # WHEN all messages (and those after seq 20) are read
    every = store.messages("agent-1")
    tail = store.messages("agent-1", after_seq=20)
    # THEN all come back in order over several pages
    assert [m.seq for m in every] == list(range(25))
    assert [m.text() for m in tail] == ["m21", "m22", "m23", "m24"]
    assert len(calls) >= 7


def test_page_messages_cursor_round_trip(store: AgentStore, created: AgentHeader) -> None:
    # GIVEN 7 messages
    store.commit(
        0,
        created.model_copy(update={"message_count": 7}),
        messages=[_text(seq, f"m{seq}") for seq in range(1, 7)],
    )
    # WHEN they are read page by page, 3 at a time
    pages: list[list[int]] = []
    cursor: str | None = None
    while True:
        page, cursor = store.page_messages("agent-1", limit=3, cursor=cursor)
        pages.append([m.seq for m in page])
        if cursor is None:
            break
    # THEN the pages cover every message once, in order, and the last has no cursor
    assert pages == [[0, 1, 2], [3, 4, 5], [6]]


def test_page_messages_exact_multiple_has_no_empty_last_page(
    store: AgentStore, created: AgentHeader
) -> None:
    # GIVEN 2 messages WHEN read 2 at a time THEN one page and no cursor
    store.commit(0, created.model_copy(update={"message_count": 2}), messages=[_text(1)])
    page, cursor = store.page_messages("agent-1", limit=2)
    assert [m.seq for m in page] == [0, 1]
    assert cursor is None


@pytest.mark.parametrize(
    "cursor",
    [
        "!!not base64!!",
        base64.urlsafe_b64encode(b"not-a-number").decode(),
        base64.urlsafe_b64encode(b"-1").decode().rstrip("="),
        "MQ==",  # padded form of a valid cursor: not what the API hands out
    ],
)
def test_malformed_cursor_names_the_field(
    store: AgentStore, created: AgentHeader, cursor: str
) -> None:
    # GIVEN a cursor the API never returned WHEN a page is asked THEN ValueError names `cursor`
    with pytest.raises(ValueError, match=r"^cursor: "):
        store.page_messages("agent-1", cursor=cursor)


@pytest.mark.parametrize("limit", [0, 1001])
def test_bad_limit_names_the_field(store: AgentStore, limit: int) -> None:
    # GIVEN a limit out of range WHEN a page is asked THEN ValueError names `limit`
    with pytest.raises(ValueError, match=r"^limit: "):
        store.page_messages("agent-1", limit=limit)


# --- external updates, publishing, header-only writes ---------------------------------------


def test_header_survives_the_recovery_state_machines_update(
    store: AgentStore, created: AgentHeader
) -> None:
    # GIVEN an agent waiting for nothing after a failed plan
    failed = created.model_copy(update={"status": Status.PLANNING_FAILED, "next_step": None})
    store.update_header(0, failed)
    # WHEN the state machine's dynamodb:updateItem runs on the META item
    store.client.update_item(
        TableName=store.table_name,
        Key={"pk": {"S": agent_pk("agent-1")}, "sk": {"S": "META"}},
        UpdateExpression=(
            "SET #status = :recovering, #step = #step + :one, #version = #version + :one, "
            "#nextStep = :plan, #updatedAt = :now, #lastErrorType = :errorType "
            "ADD #recoveryAttempts :one"
        ),
        ConditionExpression="#step = :step",
        ExpressionAttributeNames={
            f"#{a.value}": a.value for a in HeaderAttr if a.value != "publishedStep"
        },
        ExpressionAttributeValues={
            ":recovering": {"S": "RECOVERING"},
            ":one": {"N": "1"},
            ":plan": {"S": "plan"},
            ":now": {"S": "2025-06-01T12:00:00.123Z"},
            ":errorType": {"S": "PlanningFailed"},
            ":step": {"N": "0"},
        },
    )
    # THEN the header parses with the changes, and the next commit is conditional on them
    header = store.get_header("agent-1")
    assert header.status == Status.RECOVERING
    assert (header.step, header.version, header.recovery_attempts) == (1, 2, 1)
    assert header.next_step == StepKind.PLAN
    assert header.updated_at == datetime(2025, 6, 1, 12, 0, 0, 123000, tzinfo=UTC)
    assert header.goal == created.goal
    assert store.commit(2, header).version == 3


def test_null_next_step_parses_as_none(store: AgentStore, created: AgentHeader) -> None:
    # GIVEN a META whose nextStep was set to NULL by an external writer
    store.client.update_item(
        TableName=store.table_name,
        Key={"pk": {"S": agent_pk("agent-1")}, "sk": {"S": "META"}},
        UpdateExpression="SET nextStep = :null",
        ExpressionAttributeValues={":null": {"NULL": True}},
    )
    # WHEN it is read THEN no step is awaited
    assert store.get_header("agent-1").next_step is None


def test_mark_published_only_for_the_current_step(store: AgentStore, created: AgentHeader) -> None:
    # GIVEN an agent at step 1, version 1
    store.commit(0, created.model_copy(update={"step": 1}))
    # WHEN the follow-up of step 1, then of the old step 0, is marked
    current = store.mark_published("agent-1", 1)
    old = store.mark_published("agent-1", 0)
    # THEN only the current step is recorded, and the version did not move
    header = store.get_header("agent-1")
    assert (current, old) == (True, False)
    assert header.published_step == 1
    assert header.version == 1


def test_update_header_is_conditional_on_version(store: AgentStore, created: AgentHeader) -> None:
    # GIVEN an agent at version 0 WHEN it is cancelled twice from version 0
    cancelled = created.model_copy(update={"status": Status.CANCELLED})
    assert store.update_header(0, cancelled).version == 1
    # THEN the second write is stale and the first stays
    with pytest.raises(StaleStepError):
        store.update_header(0, created)
    assert store.get_header("agent-1").status == Status.CANCELLED


# --- tool call idempotency records ----------------------------------------------------------


@pytest.fixture
def committed_call(store: AgentStore, created: AgentHeader) -> str:
    """An agent whose plan committed tool call ``t-1``; answers its toolUseId."""
    tool_input = {"origin": "JFK"}
    store.commit(
        0,
        created.model_copy(update={"message_count": 2}),
        messages=[_tool_use(1, "t-1", tool_input)],
        tool_calls=[_call("agent-1", "t-1", tool_input)],
    )
    return "t-1"


def test_claim_is_exclusive_while_leased_and_reclaimable_after(
    store: AgentStore, committed_call: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a committed tool call claimed by one worker
    first = store.claim_tool_call("agent-1", committed_call, lease_seconds=30)
    assert first is not None
    assert (first.status, first.attempts) == (ToolCallStatus.IN_PROGRESS, 1)
    # WHEN a second worker claims it during the lease THEN it gets nothing
    assert store.claim_tool_call("agent-1", committed_call, lease_seconds=30) is None
    # WHEN the lease has expired THEN another worker can take it over
    later = state.utcnow() + timedelta(seconds=31)
    monkeypatch.setattr(state, "utcnow", lambda: later)
    second = store.claim_tool_call("agent-1", committed_call, lease_seconds=30)
    assert second is not None
    assert second.attempts == 2
    assert second.lease_until is not None
    assert second.lease_until > later


def test_finished_call_cannot_be_claimed_and_keeps_its_result(
    store: AgentStore, committed_call: str
) -> None:
    # GIVEN a claimed call WHEN it finishes
    store.claim_tool_call("agent-1", committed_call, lease_seconds=30)
    done = store.finish_tool_call(
        "agent-1", committed_call, succeeded=True, result={"flights": [{"price": 99.5}]}, error=None
    )
    # THEN it is SUCCEEDED, cannot be claimed or finished again, and its result is readable
    assert done.status == ToolCallStatus.SUCCEEDED
    assert done.finished_at is not None
    assert store.claim_tool_call("agent-1", committed_call, lease_seconds=30) is None
    with pytest.raises(StaleStepError, match="IN_PROGRESS"):
        store.finish_tool_call("agent-1", committed_call, succeeded=False, result=None, error="x")
    assert store.get_tool_call("agent-1", committed_call) == done
    assert done.result == {"flights": [{"price": 99.5}]}


def test_unknown_tool_call_cannot_be_claimed(store: AgentStore, created: AgentHeader) -> None:
    # GIVEN no record WHEN it is claimed THEN None, and no record is created
    assert store.claim_tool_call("agent-1", "nope", lease_seconds=5) is None
    assert store.get_tool_call("agent-1", "nope") is None


def test_huge_tool_result_is_truncated_under_the_limit(
    store: AgentStore, committed_call: str
) -> None:
    # GIVEN a claimed call whose result is far over the limit (quotes make JSON escaping grow it)
    store.claim_tool_call("agent-1", committed_call, lease_seconds=30)
    result = {"content": [{"text": 'say "hi" ' * 60_000}]}
    # WHEN it finishes
    done = store.finish_tool_call(
        "agent-1", committed_call, succeeded=True, result=result, error="e" * 50_000
    )
    # THEN the stored result is a marked, truncated string and the item stays under the limit
    assert isinstance(done.result, str)
    assert done.result.endswith("chars]")
    assert "...[truncated " in done.result
    assert done.error is not None
    assert len(done.error) < 5_000
    raw = _raw(store, "agent-1", tool_sk(committed_call))
    assert item_size(raw) <= store.max_item_bytes
    assert len(raw["result"]["S"]) <= store.max_tool_result_chars + 64


# --- sizes and construction -----------------------------------------------------------------


def test_item_size_counts_names_and_values() -> None:
    # GIVEN items of each shape WHEN measured THEN names + values are counted as DynamoDB does
    assert item_size({"ab": {"S": "héllo"}}) == 2 + 6
    assert item_size({"n": {"N": "12345"}}) == 1 + 4
    assert item_size({"f": {"BOOL": True}, "z": {"NULL": True}}) == 4
    assert item_size({"m": {"M": {"k": {"S": "v"}}}}) == 1 + 3 + 1 + 1 + 1
    assert item_size({"l": {"L": [{"S": "ab"}, {"N": "1"}]}}) == 1 + 3 + (1 + 2) + (1 + 2)


def test_store_refuses_limits_it_cannot_honour() -> None:
    # GIVEN limits past DynamoDB's, or leaving no room for a result THEN the field is named
    with pytest.raises(ValueError, match=r"^max_item_bytes: "):
        AgentStore("t", max_item_bytes=500_000)
    with pytest.raises(ValueError, match=r"^max_tool_result_chars: "):
        AgentStore("t", max_item_bytes=100_000, max_tool_result_chars=100_000)


def test_default_client_is_created_lazily(aws: None) -> None:
    # GIVEN no client WHEN the store is built THEN none exists until first use, then a DynamoDB one
    store = AgentStore("t")
    assert store._client is None
    assert store.client.meta.service_model.service_name == "dynamodb"
