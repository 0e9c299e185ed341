"""Minimal reproductions of what the chaos suite found, each written out by hand.

The seeded schedules that found these bugs change whenever the schedule does; each test here is
the smallest sequence that broke an invariant, so the bug stays fixed. Each one fails on the
runtime as it was before its fix.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from chaos_recovery import RecoveryExecution
from chaos_world import ACCOUNT, REGION
from moto.dynamodb.models import dynamodb_backends
from support.agents import flights_agent

from agentry_platform.lib.recovery_definition import recovery_definition
from agentry_runtime.agents import AgentCatalog
from agentry_runtime.announcer import Announcer, StreamRecord
from agentry_runtime.contract import META_SK, DetailType, ErrorType, Status, table_schema
from agentry_runtime.errors import StoreUnavailableError
from agentry_runtime.events import Publisher
from agentry_runtime.service import AgentService
from agentry_runtime.state import AgentHeader, AgentInfo, Message, TextBlock
from agentry_runtime.store import AgentStore

TABLE = "findings"
GOAL = "Book a flight from Boston to Miami for tomorrow"


@pytest.fixture
def client(aws: Any) -> Any:
    """A DynamoDB client over a fresh agents table."""
    dynamodb = aws.client("dynamodb", region_name=REGION)
    dynamodb.create_table(**table_schema(TABLE))
    return dynamodb


def _created(store: AgentStore) -> AgentHeader:
    """Agent ``a1``, just created."""
    header = AgentHeader(agent_id="a1", message_count=1)
    first = Message(seq=0, role="user", content=[TextBlock(text="Do it.")])
    info = AgentInfo(agent_id="a1", agent="", goal="Do it.", model_id="m", runtime_version="x")
    store.create(header, info, first)
    return header


class _Bus:
    """A PutEvents client that fails every entry until it is up, and keeps what it accepts."""

    def __init__(self) -> None:
        self.up = False
        self.accepted: list[dict[str, Any]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        if not self.up:
            failed = [{"ErrorCode": "InternalFailure"} for _ in Entries]
            return {"FailedEntryCount": len(Entries), "Entries": failed}
        self.accepted.extend(Entries)
        return {"FailedEntryCount": 0, "Entries": [{"EventId": "e"} for _ in Entries]}


def _last_header_record() -> StreamRecord:
    """The last header write of the table's stream, as Lambda hands it to the announcer."""
    records = [
        r.to_json() for r in dynamodb_backends[ACCOUNT][REGION].tables[TABLE].stream_shard.items
    ]
    headers = [r for r in records if r["dynamodb"]["Keys"]["sk"]["S"] == META_SK]
    return StreamRecord.from_lambda(headers[-1])


def test_a_claim_left_by_a_failed_delivery_does_not_block_the_records_retry(client: Any) -> None:
    """Found as: "the stream mapping gave up records while the announcer was up".

    A delivery of a record claims its lifecycle announcement, then fails before marking it
    done (its PutEvents entries failed, it died, or the claim's own answer was lost and the
    claim's retry met the claim). The claim held for its whole lease (120 s); the stream mapping
    retries a record promptly, so each retry found it "held by another announcer" until the
    mapping's retries ran out and the batch, with the completion in it, was given up.
    """
    # GIVEN an agent whose header just completed, and a bus that fails every entry
    store = AgentStore(TABLE, client=client)
    header = _created(store)
    done = header.model_copy(update={"status": Status.COMPLETED, "step": 1, "next_step": None})
    store.commit(header.version, done)
    record = _last_header_record()
    bus = _Bus()
    publisher = Publisher("bus", client=bus, attempts=1, sleep=lambda _: None)
    announcer = Announcer(store=store, publisher=publisher)
    # WHEN the record's first delivery fails to publish, and the bus is back for its retry
    assert announcer.announce([record]) == record.sequence_number
    bus.up = True
    retried = announcer.announce([record])
    # THEN the retry of the same record publishes the completion at once, exactly once
    assert retried is None
    assert [e["DetailType"] for e in bus.accepted] == [DetailType.AGENT_COMPLETED.value]
    assert json.loads(bus.accepted[0]["Detail"])["agentId"] == "a1"
    # AND a later delivery of the record (a replay) announces it no more
    assert announcer.announce([record]) is None
    assert len(bus.accepted) == 1


def test_the_calls_of_each_tool_keep_their_tool_names(client: Any) -> None:
    """Found as: "toolUses disagree with toolCallCount".

    The header's per-tool counts (what tool budgets count) are keyed by tool name, but the store
    camel-cased every map key it wrote, as if the names were field names: ``get_flight_info``
    came back as ``getFlightInfo``, the next act step counted ``get_flight_info`` from 1 again,
    and the write collapsed both keys into one, losing calls.
    """
    # GIVEN an agent whose header counts calls of tools with underscores in their names
    store = AgentStore(TABLE, client=client)
    header = _created(store)
    uses = {"get_flight_info": 2, "book_flight": 1, "x-y": 1}
    written = store.commit(header.version, header.model_copy(update={"tool_uses": uses}))
    # WHEN the header is read back, counted on, and committed again
    read = store.get_header("a1")
    counted = {**read.tool_uses, "get_flight_info": read.tool_uses.get("get_flight_info", 0) + 1}
    store.commit(written.version, read.model_copy(update={"tool_uses": counted}))
    # THEN every tool kept its own name and its count
    assert read.tool_uses == uses
    assert store.get_header("a1").tool_uses == {**uses, "get_flight_info": 3}


class _LostAnswers:
    """A DynamoDB client whose transactions land but whose answers never arrive."""

    def __init__(self, client: Any, *, lands: bool = True) -> None:
        self._client = client
        self._lands = lands
        self.transactions = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def transact_write_items(self, **kwargs: Any) -> Any:
        self.transactions += 1
        if self._lands:
            self._client.transact_write_items(**kwargs)
        raise ReadTimeoutError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com/")


def test_a_create_whose_answer_is_lost_reports_the_agent_it_made(client: Any) -> None:
    """Found as: "one create request made 2 agents".

    Every answer to a create's transaction was lost, though its first attempt landed: the store
    raised, the api answered 500, Powertools dropped the idempotency record (the call had
    "failed"), and the client's retry with the same Idempotency-Key created a second agent with
    the same goal (and, for the flight demo, a second booking).
    """
    # GIVEN a table whose client loses the answer of every transaction
    lossy = _LostAnswers(client)
    service = AgentService(
        store=AgentStore(TABLE, client=lossy),
        agents=AgentCatalog.of(flights_agent()),
        runtime_version="x",
    )
    # WHEN an agent is created
    header = service.create(GOAL)
    # THEN the store found its own write and reported it: one agent, as created
    assert lossy.transactions == 1
    assert AgentStore(TABLE, client=client).get_header(header.agent_id).created_at == (
        header.created_at
    )
    assert client.scan(TableName=TABLE, Select="COUNT")["Count"] == 3  # header, info, goal


def test_a_create_that_did_not_land_still_fails(client: Any) -> None:
    """The other side of the same fix: a create whose request never arrived is still an error."""
    # GIVEN a table whose transactions never arrive
    service = AgentService(
        store=AgentStore(TABLE, client=_LostAnswers(client, lands=False)),
        agents=AgentCatalog.of(flights_agent()),
        runtime_version="x",
    )
    # WHEN an agent is created THEN the error stands, and nothing was stored
    with pytest.raises(StoreUnavailableError):
        service.create(GOAL)
    assert client.scan(TableName=TABLE, Select="COUNT")["Count"] == 0


class _LostFirstUpdate:
    """DynamoDB as Step Functions' integration meets it: the first update lands, answers 500."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.updates = 0

    def get_item(self, **kwargs: Any) -> Any:
        return self._client.get_item(**kwargs)

    def update_item(self, **kwargs: Any) -> Any:
        self.updates += 1
        response = self._client.update_item(**kwargs)
        if self.updates == 1:
            error = {"Code": "InternalServerError", "Message": "lost"}
            raise ClientError(
                {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 500}}, "UpdateItem"
            )
        return response


def test_recovery_that_parks_an_agent_mails_a_human_even_if_its_answer_was_lost(
    client: Any,
) -> None:
    """Found as: "parked for a human, but nobody was mailed".

    Recovery parked an agent for a human, but the park's answer was a 500 (DynamoDB may apply
    a request it answers 500): the task's retry found the agent no longer in its failure (its
    own write), took the event for a stale one and ended quietly. Nobody was mailed, and
    nothing would ever mail anyone: the agent waited for a human no one had told.
    """
    # GIVEN an agent whose plan failed for good (not retryable) at step 3
    store = AgentStore(TABLE, client=client)
    header = _created(store)
    failed = header.model_copy(
        update={
            "status": Status.PLANNING_FAILED,
            "step": 3,
            "next_step": None,
            "last_error_type": ErrorType.MODEL_REJECTED,
            "last_error_step": 3,
        }
    )
    store.commit(header.version, failed)
    # WHEN its error runs through the recovery definition, and the park's answer is lost
    mailed: list[dict[str, Any]] = []
    lossy = _LostFirstUpdate(client)
    definition = recovery_definition(
        table_name=TABLE,
        topic_arn=f"arn:aws:sns:{REGION}:{ACCOUNT}:humans",
        max_attempts=2,
        delay_seconds=0,
    )
    execution = RecoveryExecution(
        definition,
        dynamodb=lossy,
        notify=mailed.append,
        sleep=lambda _: None,
        entered_time=lambda: "2031-03-04T12:00:00Z",
    )
    result = execution.run({"detail": {"agentId": "a1", "step": 3, "errorType": "ModelRejected"}})
    # THEN the agent waits for a human, and a human was told, once
    assert store.get_header("a1").status == Status.NEEDS_HUMAN
    assert lossy.updates == 2, execution.path
    assert [(m["agentId"], m["status"]) for m in mailed] == [("a1", "NEEDS_HUMAN")], execution.path
    assert result == "Succeeded"
