"""The recovery definition really runs in moto's Step Functions interpreter.

It trusts only the event's ids: what it does follows from the agent's header, so forged, stale
or duplicate ``Agent Error`` events change nothing and notify nobody.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from support.harness import REGION, aws_session, create_agents_table, moto_account

from agentry_platform.lib.recovery_definition import (
    NOTIFICATION_SUBJECT,
    NOTIFICATION_TEXT,
    recovery_definition,
)
from agentry_runtime.contract import (
    EVENT_SOURCE,
    DetailType,
    ErrorType,
    Status,
    agent_pk,
)

MAX_ATTEMPTS = 2


@dataclass
class Sandbox:
    """The AWS resources the state machine talks to, in moto."""

    ddb: Any
    sfn: Any
    sqs: Any
    table: str
    machine_arn: str
    step_queue_url: str
    human_queue_url: str


def _queue_arn(sqs: Any, url: str) -> str:
    return str(
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
    )


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    with moto_account(monkeypatch, config={"stepfunctions": {"execute_state_machine": True}}):
        session = aws_session()
        ddb = session.client("dynamodb")
        events = session.client("events")
        sqs = session.client("sqs")
        sns = session.client("sns")
        sfn = session.client("stepfunctions")
        iam = session.client("iam")

        table = create_agents_table(ddb, "agentry-test-agents")
        bus = "agentry-test-bus"
        events.create_event_bus(Name=bus)
        step_queue_url = sqs.create_queue(QueueName="steps")["QueueUrl"]
        events.put_rule(
            Name="steps",
            EventBusName=bus,
            EventPattern=json.dumps({"detail-type": [DetailType.STEP_REQUESTED.value]}),
        )
        events.put_targets(
            Rule="steps",
            EventBusName=bus,
            Targets=[{"Id": "q", "Arn": _queue_arn(sqs, step_queue_url)}],
        )
        topic_arn = sns.create_topic(Name="humans")["TopicArn"]
        human_queue_url = sqs.create_queue(QueueName="humans")["QueueUrl"]
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=_queue_arn(sqs, human_queue_url))
        role_arn = iam.create_role(
            RoleName="recovery",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]
        definition = recovery_definition(
            table_name=table,
            topic_arn=topic_arn,
            max_attempts=MAX_ATTEMPTS,
            delay_seconds=0,
        )
        machine_arn = sfn.create_state_machine(
            name="recovery", definition=json.dumps(definition), roleArn=role_arn
        )["stateMachineArn"]
        yield Sandbox(ddb, sfn, sqs, table, machine_arn, step_queue_url, human_queue_url)


def _put_agent(
    box: Sandbox,
    agent_id: str,
    *,
    step: int,
    attempts: int,
    status: Status = Status.TOOL_EXECUTION_FAILED,
    error: ErrorType = ErrorType.TOOL_EXECUTION_FAILED,
) -> None:
    box.ddb.put_item(
        TableName=box.table,
        Item={
            "pk": {"S": agent_pk(agent_id)},
            "sk": {"S": "META"},
            "status": {"S": status.value},
            "step": {"N": str(step)},
            "version": {"N": "7"},
            "recoveryAttempts": {"N": str(attempts)},
            "lastErrorType": {"S": error.value},
            "lastErrorStep": {"N": str(step)},
            "shard": {"S": "3"},
            "activeShard": {"S": "3"},
            "runnerUntil": {"N": "1"},
            "updatedAt": {"S": "2024-01-01T00:00:00+00:00"},
        },
    )


def _header(box: Sandbox, agent_id: str) -> dict[str, Any]:
    item = box.ddb.get_item(
        TableName=box.table, Key={"pk": {"S": agent_pk(agent_id)}, "sk": {"S": "META"}}
    )["Item"]
    return {name: next(iter(value.values())) for name, value in item.items()}


def _run(
    box: Sandbox, agent_id: str, *, step: int, error: ErrorType, execution_name: str = ""
) -> str:
    event = {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": DetailType.AGENT_ERROR.value,
        "source": EVENT_SOURCE,
        "account": "123456789012",
        "time": "2024-01-01T00:00:00Z",
        "region": REGION,
        "resources": [],
        "detail": {
            "schemaVersion": 2,
            "agentId": agent_id,
            "step": step,
            "errorType": error.value,
            "retryable": True,
        },
    }
    execution = box.sfn.start_execution(
        stateMachineArn=box.machine_arn,
        name=execution_name or f"{agent_id}-{step}",
        input=json.dumps(event),
    )["executionArn"]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        status = str(box.sfn.describe_execution(executionArn=execution)["status"])
        if status != "RUNNING":
            return status
        time.sleep(0.05)
    raise AssertionError(f"execution {execution} still RUNNING after 20 s")


def _messages(box: Sandbox, url: str) -> list[dict[str, Any]]:
    received = box.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in received.get("Messages", [])]


def test_retryable_error_records_attempt_and_requests_plan_in_the_header(
    sandbox: Sandbox,
) -> None:
    # GIVEN an agent whose tool round failed at step 4, with no recovery attempt yet
    _put_agent(sandbox, "a1", step=4, attempts=0, error=ErrorType.TOOL_EXECUTION_FAILED)
    # WHEN its error event runs through recovery
    status = _run(sandbox, "a1", step=4, error=ErrorType.TOOL_EXECUTION_FAILED)
    # THEN the header records the attempt and asks for a new plan step (the announcer
    # publishes it from this commit): the machine itself publishes nothing
    assert status == "SUCCEEDED"
    header = _header(sandbox, "a1")
    assert header["status"] == Status.RECOVERING
    assert header["recoveryAttempts"] == "1"
    assert (header["step"], header["version"], header["nextStep"]) == ("5", "8", "plan")
    assert header["activeShard"] == header["shard"]
    assert "runnerUntil" not in header
    assert _messages(sandbox, sandbox.step_queue_url) == []
    assert _messages(sandbox, sandbox.human_queue_url) == []


def test_the_error_type_comes_from_the_header_not_the_event(sandbox: Sandbox) -> None:
    # GIVEN an agent whose header says the model rejected the request (not retryable)
    _put_agent(sandbox, "a0", step=2, attempts=0, error=ErrorType.MODEL_REJECTED)
    # WHEN an event claiming a retryable error arrives for it
    _run(sandbox, "a0", step=2, error=ErrorType.MODEL_THROTTLED)
    # THEN recovery went by the header: straight to a human, no attempt spent
    header = _header(sandbox, "a0")
    assert header["status"] == Status.NEEDS_HUMAN
    assert header["recoveryAttempts"] == "0"
    [notification] = _messages(sandbox, sandbox.human_queue_url)
    assert json.loads(notification["Message"])["errorType"] == ErrorType.MODEL_REJECTED.value


def test_exhausted_attempts_ask_a_human(sandbox: Sandbox) -> None:
    # GIVEN an agent that already used every recovery attempt
    _put_agent(sandbox, "a2", step=3, attempts=MAX_ATTEMPTS, error=ErrorType.INTERNAL)
    # WHEN another retryable error arrives for its current step
    status = _run(sandbox, "a2", step=3, error=ErrorType.INTERNAL)
    # THEN the agent waits for a human (out of the active index) and the topic names it
    assert status == "SUCCEEDED"
    header = _header(sandbox, "a2")
    assert header["status"] == Status.NEEDS_HUMAN
    assert (header["step"], header["version"]) == ("3", "8")
    assert "activeShard" not in header
    [notification] = _messages(sandbox, sandbox.human_queue_url)
    assert notification["Subject"] == NOTIFICATION_SUBJECT
    # Typed fields only: no goal, no raw error text
    assert json.loads(notification["Message"]) == {
        "agentId": "a2",
        "step": 3,
        "errorType": ErrorType.INTERNAL.value,
        "message": NOTIFICATION_TEXT,
        "status": Status.NEEDS_HUMAN.value,
    }


def test_stale_step_changes_nothing(sandbox: Sandbox) -> None:
    # GIVEN an agent that already moved on to step 6
    _put_agent(sandbox, "a4", step=6, attempts=0)
    before = _header(sandbox, "a4")
    # WHEN an error of its old step 5 arrives late
    status = _run(sandbox, "a4", step=5, error=ErrorType.MODEL_THROTTLED)
    # THEN the execution ends quietly and nothing changed or was published
    assert status == "SUCCEEDED"
    assert _header(sandbox, "a4") == before
    assert _messages(sandbox, sandbox.human_queue_url) == []


@pytest.mark.parametrize("status", [Status.CANCELLED, Status.COMPLETED, Status.RECOVERING])
def test_a_forged_error_for_an_agent_not_in_that_failure_changes_nothing(
    sandbox: Sandbox, status: Status
) -> None:
    # GIVEN an agent that is cancelled, completed, or already recovering at step 2
    _put_agent(sandbox, "a6", step=2, attempts=0, status=status)
    before = _header(sandbox, "a6")
    # WHEN an Agent Error for its current step arrives (forged, or a stale duplicate)
    result = _run(sandbox, "a6", step=2, error=ErrorType.MODEL_REJECTED)
    # THEN nothing is brought back to life or parked, and nobody is notified
    assert result == "SUCCEEDED"
    assert _header(sandbox, "a6") == before
    assert _messages(sandbox, sandbox.human_queue_url) == []


def test_a_duplicate_error_event_notifies_the_humans_once(sandbox: Sandbox) -> None:
    # GIVEN an agent out of attempts, and its error event delivered twice
    _put_agent(sandbox, "a5", step=2, attempts=MAX_ATTEMPTS)
    _run(sandbox, "a5", step=2, error=ErrorType.TOOL_EXECUTION_FAILED)
    parked = _header(sandbox, "a5")
    # WHEN the duplicate runs through recovery
    status = _run(
        sandbox, "a5", step=2, error=ErrorType.TOOL_EXECUTION_FAILED, execution_name="a5-again"
    )
    # THEN it ends quietly: the agent is parked once and the humans hear about it once
    assert status == "SUCCEEDED"
    assert _header(sandbox, "a5") == parked
    assert len(_messages(sandbox, sandbox.human_queue_url)) == 1


def test_a_missing_agent_ends_quietly(sandbox: Sandbox) -> None:
    assert _run(sandbox, "ghost", step=0, error=ErrorType.INTERNAL) == "SUCCEEDED"
    assert _messages(sandbox, sandbox.human_queue_url) == []


def test_a_recovery_whose_step_request_fails_ends_with_a_human_notified(
    sandbox: Sandbox,
) -> None:
    # GIVEN an agent whose header the retry's update cannot apply (no shard to copy into the
    # active index: a ValidationException, not a failed condition)
    _put_agent(sandbox, "a7", step=2, attempts=0, error=ErrorType.MODEL_THROTTLED)
    sandbox.ddb.update_item(
        TableName=sandbox.table,
        Key={"pk": {"S": agent_pk("a7")}, "sk": {"S": "META"}},
        UpdateExpression="REMOVE #shard",
        ExpressionAttributeNames={"#shard": "shard"},
    )
    # WHEN its retryable error runs through recovery
    status = _run(sandbox, "a7", step=2, error=ErrorType.MODEL_THROTTLED)
    # THEN the failed step request does not leave it stranded: it is parked and a human told
    header = _header(sandbox, "a7")
    assert status == "SUCCEEDED", status
    assert header["status"] == Status.NEEDS_HUMAN
    assert len(_messages(sandbox, sandbox.human_queue_url)) == 1
