"""The DynamoDB state store, against moto's in-process DynamoDB and the in-memory fake.

Every test that takes the ``store`` fixture runs twice: on moto and on
``support.memory_store.MemoryDynamoDB``. The same assertions passing on both is what makes the
fake fit for the unit layer (``tests/unit``).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from support.memory_store import memory_table

from agentry_runtime import state
from agentry_runtime.contract import (
    ErrorType,
    HeaderAttr,
    StepKind,
    agent_pk,
    message_sk,
)
from agentry_runtime.errors import (
    AgentExistsError,
    AgentNotFoundError,
    CorruptItemError,
    ItemTooLargeError,
    StaleStepError,
    StoreError,
    StoreThrottledError,
    StoreUnavailableError,
)
from agentry_runtime.state import (
    AgentHeader,
    AgentInfo,
    ClaimStatus,
    Message,
    Origin,
    Status,
    Summary,
    TextBlock,
    ToolClaim,
)
from agentry_runtime.store import AgentStore, header_from_image, item_size

TTL = 1_900_000_000
AGENT = "agent-1"
TABLE = "agentry-test-agents"


# --- builders -------------------------------------------------------------------------------


def _header(**changes: Any) -> AgentHeader:
    fields: dict[str, Any] = {"agent_id": AGENT, "agent": "flights", "message_count": 1, "ttl": TTL}
    return AgentHeader(**(fields | changes))


def _info() -> AgentInfo:
    return AgentInfo(
        agent_id=AGENT,
        agent="flights",
        goal="Book a flight from New York to San Francisco",
        model_id="anthropic.claude-3-haiku",
        runtime_version="0.2.0",
    )


def _text(seq: int, text: str = "hello", role: str = "user", step: int | None = None) -> Message:
    return Message(
        seq=seq,
        role=role,  # type: ignore[arg-type]
        content=[TextBlock(text=text)],
        step=seq if step is None else step,
        origin=Origin.CALLER if role == "user" else Origin.MODEL,
    )


@pytest.fixture(params=["moto", pytest.param("memory", marks=pytest.mark.unit)])
def store(request: pytest.FixtureRequest) -> AgentStore:
    """A store with an injected client: moto's, or the in-memory fake's."""
    if request.param == "memory":
        return AgentStore(TABLE, client=memory_table(TABLE))
    table = request.getfixturevalue("agent_table")
    return AgentStore(table, client=request.getfixturevalue("dynamodb_client"))


@pytest.fixture
def created(store: AgentStore) -> AgentHeader:
    """An agent with its first message, at version 0."""
    header = _header()
    store.create(header, _info(), _text(0, "Book a flight", step=0))
    return header


def _raw(store: AgentStore, sk: str) -> dict[str, Any]:
    return dict(
        store.client.get_item(
            TableName=store.table_name, Key={"pk": {"S": agent_pk(AGENT)}, "sk": {"S": sk}}
        )["Item"]
    )


# --- agents ----------------------------------------------------------------------------------


def test_create_round_trips_header_info_and_first_message(
    store: AgentStore, created: AgentHeader
) -> None:
    assert store.get_header(AGENT) == created
    assert store.get_info(AGENT).model_dump(exclude={"created_at"}) == _info().model_dump(
        exclude={"created_at"}
    )
    assert [m.text() for m in store.messages(AGENT)] == ["Book a flight"]
    assert store.item_count(AGENT) == {"META": 1, "INFO": 1, "MSG": 1, "TOOL": 0, "SUMMARY": 0}


def test_create_twice_raises_agent_exists(store: AgentStore, created: AgentHeader) -> None:
    with pytest.raises(AgentExistsError):
        store.create(_header(), _info(), _text(0))


def test_missing_agent_is_not_found(store: AgentStore) -> None:
    assert store.find_header("nobody") is None
    with pytest.raises(AgentNotFoundError):
        store.get_header("nobody")
    with pytest.raises(AgentNotFoundError):
        store.get_info("nobody")


def test_meta_is_flat_small_and_in_the_active_index_while_it_waits(
    store: AgentStore, created: AgentHeader
) -> None:
    # GIVEN a new agent WHEN its META item is read raw
    item = _raw(store, "META")
    # THEN the state machine's attribute names are top-level, and it is in the active index
    assert {HeaderAttr.STATUS, HeaderAttr.STEP, HeaderAttr.VERSION, HeaderAttr.NEXT_STEP} <= set(
        item
    )
    assert item[HeaderAttr.ACTIVE_SHARD.value] == item[HeaderAttr.SHARD.value]
    assert "goal" not in item  # text lives in items written once
    assert item_size(item) < 1024
    # AND once it waits for a person it leaves the index
    store.commit(0, created.model_copy(update={"status": Status.NEEDS_HUMAN}))
    assert HeaderAttr.ACTIVE_SHARD.value not in _raw(store, "META")


def test_commit_is_conditional_on_the_version(store: AgentStore, created: AgentHeader) -> None:
    # GIVEN an agent at version 0 WHEN two writers commit from version 0
    first = store.commit(0, created.model_copy(update={"step": 1}))
    # THEN the second one finds the header moved on, and nothing of it is written
    with pytest.raises(StaleStepError):
        store.commit(0, created.model_copy(update={"step": 7}))
    assert store.get_header(AGENT) == first
    assert first.version == 1


# --- messages --------------------------------------------------------------------------------


def test_a_step_message_is_written_once_and_the_winner_is_returned(
    store: AgentStore, created: AgentHeader
) -> None:
    # GIVEN a message of step 1 at seq 1
    assert store.put_step_message(AGENT, _text(1, "first", step=1), TTL) is None
    # WHEN another worker of the same step writes seq 1
    existing = store.put_step_message(AGENT, _text(1, "second", step=1), TTL)
    # THEN it gets the first one back, untouched
    assert existing is not None
    assert existing.text() == "first"
    assert store.get_message(AGENT, 1, consistent=True).text() == "first"  # type: ignore[union-attr]


def test_an_orphan_of_an_earlier_step_is_overwritten(
    store: AgentStore, created: AgentHeader
) -> None:
    # GIVEN seq 1 written by step 1, whose header was never committed
    store.put_step_message(AGENT, _text(1, "orphan", step=1), TTL)
    # WHEN step 2 writes seq 1 THEN it wins; an older step cannot overwrite it back
    assert store.put_step_message(AGENT, _text(1, "kept", step=2), TTL) is None
    older = store.put_step_message(AGENT, _text(1, "late", step=1), TTL)
    assert older is not None
    assert older.text() == "kept"


def test_an_oversized_message_raises_and_writes_nothing(
    store: AgentStore, created: AgentHeader
) -> None:
    big = _text(1, "x" * 400_000, step=1)
    with pytest.raises(ItemTooLargeError) as raised:
        store.put_step_message(AGENT, big, TTL)
    assert raised.value.size > raised.value.limit
    assert store.get_message(AGENT, 1, consistent=True) is None


def test_history_reads_the_summary_and_the_messages_after_it(
    store: AgentStore, created: AgentHeader
) -> None:
    # GIVEN five messages, the first three summarised
    for seq in range(1, 5):
        store.put_step_message(AGENT, _text(seq, f"m{seq}", step=seq), TTL)
    store.put_summary(AGENT, Summary(upto_seq=2, text="s", goal="g"), TTL)
    header = created.model_copy(update={"message_count": 5, "summary_upto_seq": 2})
    # WHEN a plan step reads its history
    history = store.history(header)
    # THEN it gets the summary and exactly the messages after it, read eventually consistently
    assert history.summary is not None
    assert (history.summary.text, history.summary.goal) == ("s", "g")
    assert [m.seq for m in history.messages] == [3, 4]
    assert history.strong is False


def test_history_falls_back_to_a_strong_read_when_an_item_is_not_visible_yet(
    store: AgentStore, created: AgentHeader
) -> None:
    # GIVEN a client whose eventually consistent queries miss the newest message
    store.put_step_message(AGENT, _text(1, step=1), TTL)
    header = created.model_copy(update={"message_count": 2})
    real = store.client

    class Lagging:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def get_paginator(self, name: str) -> Any:
            paginator = real.get_paginator(name)

            class Page:
                def paginate(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
                    for page in paginator.paginate(**kwargs):
                        if not kwargs.get("ConsistentRead"):
                            page = {**page, "Items": page["Items"][:-1]}
                        yield page

            return Page()

    lagging = AgentStore(store.table_name, client=Lagging())
    # WHEN the history is read THEN the strong read completes it
    history = lagging.history(header)
    assert [m.seq for m in history.messages] == [0, 1]
    assert history.strong is True
    # AND a header that counts a message no read finds is a corrupt item, not a silent gap
    with pytest.raises(CorruptItemError):
        store.history(created.model_copy(update={"message_count": 5}))


def test_messages_paginate_with_opaque_cursors(store: AgentStore, created: AgentHeader) -> None:
    for seq in range(1, 5):
        store.put_step_message(AGENT, _text(seq, step=seq), TTL)
    seen: list[int] = []
    cursor: str | None = None
    while True:
        page, cursor = store.page_messages(AGENT, limit=2, cursor=cursor, upto=4)
        seen += [m.seq for m in page]
        if cursor is None:
            break
    assert seen == [0, 1, 2, 3, 4]
    # AND messages past the header's count (not committed yet) are not shown
    page, _ = store.page_messages(AGENT, limit=10, upto=2)
    assert [m.seq for m in page] == [0, 1, 2]


def test_a_history_of_an_exact_multiple_of_the_page_has_no_empty_last_page(
    store: AgentStore, created: AgentHeader
) -> None:
    # GIVEN six messages
    for seq in range(1, 6):
        store.put_step_message(AGENT, _text(seq, step=seq), TTL)
    # WHEN they are paged two at a time
    pages: list[list[int]] = []
    cursor: str | None = None
    while True:
        page, cursor = store.page_messages(AGENT, limit=2, cursor=cursor, upto=5)
        pages.append([m.seq for m in page])
        if cursor is None:
            break
    # THEN the third page is the last one: no empty page after it
    assert pages == [[0, 1], [2, 3], [4, 5]]


class _SmallPages:
    """A DynamoDB client whose paginated queries answer two items a page (as DynamoDB's 1 MB
    page would cut a long history)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.queries = 0

    def get_paginator(self, operation: str) -> Any:
        paginator = self._client.get_paginator(operation)
        outer = self

        class _Small:
            def paginate(self, **kwargs: Any) -> Iterator[Any]:
                for page in paginator.paginate(**kwargs, PaginationConfig={"PageSize": 2}):
                    outer.queries += 1
                    yield page

        return _Small()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_messages_and_history_follow_every_page(store: AgentStore, created: AgentHeader) -> None:
    # GIVEN seven messages, and a table that answers queries two items at a time
    for seq in range(1, 7):
        store.put_step_message(AGENT, _text(seq, step=seq), TTL)
    small = _SmallPages(store.client)
    paged = AgentStore(store.table_name, client=small)
    # WHEN every message, then a plan's history, is read
    every = paged.messages(AGENT)
    history = paged.history(_header(message_count=7))
    # THEN both followed the pages to the end
    assert [m.seq for m in every] == list(range(7))
    assert [m.seq for m in history.messages] == list(range(7))
    assert small.queries >= 8


def test_a_null_next_step_reads_as_no_step_awaited(store: AgentStore, created: AgentHeader) -> None:
    # GIVEN a header whose nextStep was written as a DynamoDB NULL
    store.client.update_item(
        TableName=store.table_name,
        Key={"pk": {"S": agent_pk(AGENT)}, "sk": {"S": "META"}},
        UpdateExpression="SET nextStep = :null",
        ExpressionAttributeValues={":null": {"NULL": True}},
    )
    # WHEN it is read THEN no step is awaited (not the model's default, a plan)
    header = store.get_header(AGENT)
    assert header.next_step is None


@pytest.mark.parametrize(
    "cursor",
    ["%%%", base64.urlsafe_b64encode(b"-1").decode(), "MDAx", "9" * 5000],
)
def test_a_malformed_cursor_names_the_field(
    store: AgentStore, created: AgentHeader, cursor: str
) -> None:
    with pytest.raises(ValueError, match=r"^cursor: "):
        store.page_messages(AGENT, cursor=cursor)


@pytest.mark.parametrize("limit", [0, 1001])
def test_a_bad_limit_names_the_field(store: AgentStore, limit: int) -> None:
    with pytest.raises(ValueError, match=r"^limit: "):
        store.page_messages(AGENT, limit=limit)


# --- the header as others write it ---------------------------------------------------------------


def test_the_recovery_state_machines_update_keeps_the_header_readable(
    store: AgentStore, created: AgentHeader
) -> None:
    # GIVEN an agent whose plan failed
    failed = store.commit(
        0,
        created.model_copy(
            update={
                "status": Status.PLANNING_FAILED,
                "next_step": None,
                "last_error_type": ErrorType.MODEL_UNAVAILABLE,
                "last_error_step": 0,
            }
        ),
    )
    # WHEN the state machine's RecordAttempt runs (its own update expression)
    from agentry_platform.lib.recovery_definition import recovery_definition

    task = recovery_definition(
        table_name=store.table_name, topic_arn="t", max_attempts=1, delay_seconds=0
    )["States"]["RecordAttempt"]["Parameters"]
    store.client.update_item(
        TableName=store.table_name,
        Key={"pk": {"S": agent_pk(AGENT)}, "sk": {"S": "META"}},
        UpdateExpression=task["UpdateExpression"],
        ConditionExpression=task["ConditionExpression"],
        ExpressionAttributeNames=task["ExpressionAttributeNames"],
        ExpressionAttributeValues={
            **{
                k: v
                for k, v in task["ExpressionAttributeValues"].items()
                if not k.startswith((":now", ":step", ":failed"))
            },
            ":now": {"S": "2025-06-01T12:00:00.123Z"},
            ":step": {"N": str(failed.step)},
            ":failed": {"S": "PLANNING_FAILED"},
        },
    )
    # THEN the header parses with the changes, is back in the index, and commits go on
    header = store.get_header(AGENT)
    assert header.status == Status.RECOVERING
    assert (header.step, header.version, header.recovery_attempts) == (1, 2, 1)
    assert header.next_step == StepKind.PLAN
    assert header.updated_at == datetime(2025, 6, 1, 12, 0, 0, 123000, tzinfo=UTC)
    assert HeaderAttr.ACTIVE_SHARD.value in _raw(store, "META")
    assert store.commit(2, header).version == 3


def test_a_header_of_the_previous_schema_is_read(store: AgentStore) -> None:
    # GIVEN a META item as runtime 0.1.0 wrote it (goal, answer, publishedStep, a lastError map)
    image = {
        "pk": {"S": agent_pk(AGENT)},
        "sk": {"S": "META"},
        "agentId": {"S": AGENT},
        "status": {"S": "COMPLETED"},
        "goal": {"S": "Book a flight"},
        "answer": {"S": "Booked."},
        "version": {"N": "5"},
        "step": {"N": "5"},
        "publishedStep": {"N": "5"},
        "messageCount": {"N": "6"},
        "pendingToolUseIds": {"L": []},
        "lastError": {"M": {"errorType": {"S": "ModelThrottled"}}},
        "usage": {"M": {"inputTokens": {"N": "10"}}},
        "runtimeVersion": {"S": "0.1.0"},
        "modelId": {"S": "m"},
        "createdAt": {"S": "2025-01-01T00:00:00+00:00"},
        "updatedAt": {"S": "2025-01-01T00:00:00+00:00"},
    }
    # WHEN this runtime reads it THEN the fields it knows are kept and the others ignored
    header = header_from_image(image)
    assert (header.status, header.version, header.message_count) == (Status.COMPLETED, 5, 6)
    assert header.usage.input_tokens == 10
    assert header.schema_version == 1
    assert header.next_step is None


def test_a_header_a_newer_runtime_wrote_is_read(store: AgentStore, created: AgentHeader) -> None:
    # GIVEN a META carrying fields (and a schema version) this runtime does not know
    store.client.update_item(
        TableName=store.table_name,
        Key={"pk": {"S": agent_pk(AGENT)}, "sk": {"S": "META"}},
        UpdateExpression="SET schemaVersion = :v, futureField = :f",
        ExpressionAttributeValues={":v": {"N": "3"}, ":f": {"M": {"x": {"S": "y"}}}},
    )
    # WHEN it is read THEN it parses, and a commit writes only what this runtime knows
    header = store.get_header(AGENT)
    assert header.schema_version == 3
    assert store.commit(0, header).version == 1


# --- tool claims and announcements --------------------------------------------------------------


def _claim(**changes: Any) -> ToolClaim:
    fields: dict[str, Any] = {
        "agent_id": AGENT,
        "turn_seq": 1,
        "tool_use_id": "tooluse_a",
        "name": "book_flight",
        "result_seq": 2,
        "lease_until": state.utcnow() + timedelta(seconds=60),
    }
    return ToolClaim(**(fields | changes))


def test_a_claim_is_taken_once_and_an_approved_call_can_be_taken(
    store: AgentStore, created: AgentHeader
) -> None:
    # GIVEN one claim WHEN the same call is claimed again THEN it is refused
    assert store.claim_tool(_claim(), ttl=TTL) is not None
    assert store.claim_tool(_claim(), ttl=TTL) is None
    assert store.get_claim(AGENT, 1, "tooluse_a").status == ClaimStatus.IN_PROGRESS  # type: ignore[union-attr]
    # AND a call a person approved is taken by its claim, a rejected one is not
    approved = _claim(tool_use_id="tooluse_b", status=ClaimStatus.APPROVED, decided_by="me")
    rejected = _claim(tool_use_id="tooluse_c", status=ClaimStatus.REJECTED, decided_by="me")
    assert store.record_decision(approved, ttl=TTL)
    assert store.record_decision(rejected, ttl=TTL)
    assert not store.record_decision(rejected, ttl=TTL)
    assert store.claim_tool(_claim(tool_use_id="tooluse_b"), ttl=TTL) is not None
    assert store.claim_tool(_claim(tool_use_id="tooluse_c"), ttl=TTL) is None
    assert [c.tool_use_id for c in store.claims(AGENT, 1)] == [
        "tooluse_a",
        "tooluse_b",
        "tooluse_c",
    ]


def test_a_withheld_call_can_never_be_claimed_and_a_taken_one_is_not_withheld(
    store: AgentStore, created: AgentHeader
) -> None:
    # GIVEN a call nobody claimed, one a person approved, and one a worker took
    never = _claim(tool_use_id="tooluse_a", status=ClaimStatus.REJECTED, decided_by="platform")
    approved = _claim(tool_use_id="tooluse_b", status=ClaimStatus.APPROVED, decided_by="me")
    assert store.record_decision(approved, ttl=TTL)
    assert store.claim_tool(_claim(tool_use_id="tooluse_c"), ttl=TTL) is not None
    # WHEN each is withheld
    # THEN the first two become rejections no claim can take; the taken one stays as it is
    assert store.withhold(never, ttl=TTL)
    assert store.withhold(never.model_copy(update={"tool_use_id": "tooluse_b"}), ttl=TTL)
    assert not store.withhold(never.model_copy(update={"tool_use_id": "tooluse_c"}), ttl=TTL)
    for tool_use_id in ("tooluse_a", "tooluse_b"):
        assert store.claim_tool(_claim(tool_use_id=tool_use_id), ttl=TTL) is None
        assert store.get_claim(AGENT, 1, tool_use_id).status == ClaimStatus.REJECTED  # type: ignore[union-attr]
    assert store.get_claim(AGENT, 1, "tooluse_c").status == ClaimStatus.IN_PROGRESS  # type: ignore[union-attr]
    # AND a rejection is never overwritten (a person's, or an earlier withholding)
    assert not store.withhold(never, ttl=TTL)


def test_a_reused_tool_use_id_of_another_turn_does_not_collide(
    store: AgentStore, created: AgentHeader
) -> None:
    assert store.claim_tool(_claim(turn_seq=1), ttl=TTL) is not None
    assert store.claim_tool(_claim(turn_seq=3, result_seq=4), ttl=TTL) is not None


def test_an_announcement_is_claimed_once_and_taken_over_after_its_lease(
    store: AgentStore, created: AgentHeader
) -> None:
    assert store.claim_announcement(AGENT, 4, 0, lease_seconds=60, ttl=TTL) is True
    assert store.claim_announcement(AGENT, 4, 0, lease_seconds=60, ttl=TTL) is None  # held
    store.finish_announcement(AGENT, 4, 0)
    assert store.claim_announcement(AGENT, 4, 0, lease_seconds=60, ttl=TTL) is False  # done
    # A poke (a new nonce) of the same version is a new announcement; a dead claim is taken
    assert store.claim_announcement(AGENT, 4, 1, lease_seconds=-1, ttl=TTL) is True
    assert store.claim_announcement(AGENT, 4, 1, lease_seconds=60, ttl=TTL) is True


def test_a_nonce_bump_changes_neither_version_nor_step(
    store: AgentStore, created: AgentHeader
) -> None:
    poked = store.bump_nonce(AGENT, 0)
    assert poked is not None
    assert (poked.nonce, poked.version, poked.step) == (1, 0, 0)
    assert store.bump_nonce(AGENT, 7) is None  # the agent moved on: nothing happens


def test_stale_agents_come_from_the_active_index(store: AgentStore, created: AgentHeader) -> None:
    later = state.utcnow() + timedelta(minutes=1)
    found = [h.agent_id for h in store.stale_agents(created.shard, updated_before=later)]
    assert found == [AGENT]
    assert list(store.stale_agents(created.shard, updated_before=created.updated_at)) == []


def _owned(store: AgentStore, agent_id: str, owner: str, minute: int, **changes: Any) -> None:
    created = datetime(2025, 6, 1, 12, minute, tzinfo=UTC)
    header = AgentHeader(
        agent_id=agent_id, agent="flights", owner=owner, created_at=created, **changes
    )
    info = AgentInfo(
        agent_id=agent_id, agent="flights", goal="g", model_id="m", runtime_version="0"
    )
    store.create(header, info, _text(0, step=0))


def test_owned_agents_come_newest_first_page_by_page(store: AgentStore) -> None:
    # GIVEN three agents of one caller (one of them completed) and one of another
    for minute, agent_id in enumerate(["a-old", "a-mid", "a-new"]):
        _owned(store, agent_id, "alice", minute)
    _owned(store, "b-1", "bob", 5)
    done = store.get_header("a-mid")
    store.commit(done.version, done.model_copy(update={"status": Status.COMPLETED}))
    # WHEN the caller's agents are read two at a time
    first, cursor = store.owned_agents("alice", limit=2, cursor=None)
    assert cursor is not None
    second, last = store.owned_agents("alice", limit=2, cursor=cursor)
    # THEN they come newest first, each once, and only the caller's
    assert [h.agent_id for h in first + second] == ["a-new", "a-mid", "a-old"]
    assert last is None
    # AND a status filter keeps only the agents in it
    running, _ = store.owned_agents("alice", limit=5, cursor=None, status=Status.INITIATED)
    assert [h.agent_id for h in running] == ["a-new", "a-old"]


def test_active_agents_are_counted_up_to_the_cap(store: AgentStore) -> None:
    # GIVEN three running agents of a caller and one that ended
    for minute, agent_id in enumerate(["a-1", "a-2", "a-3", "a-4"]):
        _owned(store, agent_id, "alice", minute)
    ended = store.get_header("a-4")
    store.commit(ended.version, ended.model_copy(update={"status": Status.CANCELLED}))
    # WHEN they are counted THEN only the running ones count, and never past the cap
    assert store.count_active("alice", up_to=10) == 3
    assert store.count_active("alice", up_to=2) == 2
    assert store.count_active("nobody", up_to=10) == 0


def test_a_person_s_commit_writes_header_messages_and_info_or_nothing(
    store: AgentStore, created: AgentHeader
) -> None:
    # GIVEN an agent at version 0 WHEN a person's message is committed with info attributes
    written = store.commit_with_messages(
        0,
        created.model_copy(update={"message_count": 2, "step": 1}),
        [_text(1, "go on", step=1)],
        info={"cancelledBy": "me", "cancelledAt": "2025-06-01T12:00:00+00:00"},
    )
    # THEN all of it is stored
    assert store.get_header(AGENT) == written
    assert store.get_message(AGENT, 1, consistent=True).text() == "go on"  # type: ignore[union-attr]
    assert store.get_info(AGENT).cancelled_by == "me"
    # AND a commit from a stale version writes none of its parts
    with pytest.raises(StaleStepError):
        store.commit_with_messages(
            0,
            created.model_copy(update={"message_count": 3, "step": 2}),
            [_text(2, "late", step=2)],
            info={"cancelledBy": "someone else"},
        )
    assert store.get_message(AGENT, 2, consistent=True) is None
    assert store.get_info(AGENT).cancelled_by == "me"
    assert store.get_header(AGENT) == written


# --- lifetime ------------------------------------------------------------------------------------


def test_renew_expiry_and_delete_reach_every_item(store: AgentStore, created: AgentHeader) -> None:
    store.put_step_message(AGENT, _text(1, step=1), TTL)
    store.claim_tool(_claim(), ttl=TTL)
    assert store.renew_expiry(AGENT, TTL + 100) == 5  # META, INFO, two messages, a claim
    assert _raw(store, message_sk(1))["ttl"] == {"N": str(TTL + 100)}
    assert store.delete_agent(AGENT) == 5
    assert store.find_header(AGENT) is None
    assert sum(store.item_count(AGENT).values()) == 0


# --- errors, sizes, construction ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        ("ProvisionedThroughputExceededException", 400, StoreThrottledError),
        ("ThrottlingException", 400, StoreThrottledError),
        ("InternalServerError", 500, StoreUnavailableError),
        ("ValidationException", 400, StoreError),
    ],
)
def test_dynamodb_errors_are_translated_once(code: str, status: int, error: type) -> None:
    class Failing:
        def get_item(self, **_: Any) -> Any:
            raise ClientError(
                {
                    "Error": {"Code": code, "Message": "no"},
                    "ResponseMetadata": {"HTTPStatusCode": status},
                },
                "GetItem",
            )

    with pytest.raises(error):
        AgentStore("t", client=Failing()).find_header(AGENT)


def test_item_size_counts_names_and_values() -> None:
    assert item_size({"ab": {"S": "héllo"}}) == 2 + 6
    assert item_size({"n": {"N": "12345"}}) == 1 + 4
    assert item_size({"f": {"BOOL": True}, "z": {"NULL": True}}) == 4
    assert item_size({"m": {"M": {"k": {"S": "v"}}}}) == 1 + 3 + 1 + 1 + 1
    assert item_size({"l": {"L": [{"S": "ab"}, {"N": "1"}]}}) == 1 + 3 + (1 + 2) + (1 + 2)


def test_store_refuses_limits_it_cannot_honour() -> None:
    with pytest.raises(ValueError, match=r"^max_item_bytes: "):
        AgentStore("t", max_item_bytes=500_000)


def test_default_client_is_created_lazily(aws: None) -> None:
    store = AgentStore("t")
    assert store._client is None
    assert store.client.meta.service_model.service_name == "dynamodb"


def test_a_corrupt_message_item_is_named(store: AgentStore, created: AgentHeader) -> None:
    store.client.put_item(
        TableName=store.table_name,
        Item={"pk": {"S": agent_pk(AGENT)}, "sk": {"S": message_sk(1)}, "content": {"S": "{"}},
    )
    with pytest.raises(CorruptItemError, match="MSG#00000001"):
        store.get_message(AGENT, 1)


def test_header_items_do_not_grow_with_the_conversation(
    store: AgentStore, created: AgentHeader
) -> None:
    small = item_size(_raw(store, "META"))
    store.commit(
        0, created.model_copy(update={"message_count": 300, "step": 299, "tool_call_count": 150})
    )
    assert abs(item_size(_raw(store, "META")) - small) < 16


def test_tool_names_in_the_header_round_trip_as_the_toolset_spelled_them(
    store: AgentStore, created: AgentHeader
) -> None:
    # GIVEN counts of tools whose names have underscores and capitals, and held calls
    uses = {"book_flight": 1, "getOrder": 2, "issue_refund_v2": 3}
    header = created.model_copy(
        update={"tool_uses": uses, "awaiting_tools": ["book_flight"], "awaiting_calls": ["t_1"]}
    )
    # WHEN committed and read back THEN the names are exactly the toolset's
    store.commit(created.version, header)
    read = store.get_header(AGENT)
    assert read.tool_uses == uses
    assert (read.awaiting_tools, read.awaiting_calls) == (["book_flight"], ["t_1"])
