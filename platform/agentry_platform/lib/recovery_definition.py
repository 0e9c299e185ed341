"""The recovery state machine's definition (Amazon States Language) as a pure function.

Started by an ``Agent Error`` event, it trusts only the event's ids: it reads the failure from
the agent's header (status, step, error type, attempts: only those attributes, so the goal never
enters the execution history) and acts only if the header is still in the failure the event
names. A forged, stale or duplicate event therefore changes nothing and notifies nobody.

- a retryable error with attempts left: wait (exponential backoff), then request a new plan by
  updating the header (status ``RECOVERING``, step + 1, next step ``plan``); the announcer turns
  that commit into the step event, like any other;
- otherwise, or if that update fails: park the agent (``NEEDS_HUMAN``) and notify the human
  topic with typed fields only; if even parking fails, a human is still notified, and the
  execution fails (an alarm watches failed executions).

Only direct service integrations are used (``dynamodb:getItem``/``updateItem``,
``sns:publish``), so the recovery path has no code of its own to fail.
"""

from __future__ import annotations

from typing import Any

from agentry_runtime.contract import (
    FAILURES,
    META_SK,
    PARTITION_KEY,
    RETRYABLE_ERRORS,
    SORT_KEY,
    HeaderAttr,
    Status,
    StepKind,
)

__all__ = [
    "MAX_BACKOFF_SECONDS",
    "NOTIFICATION_SUBJECT",
    "NOTIFICATION_TEXT",
    "PARKED_BY",
    "backoff_delays",
    "recovery_definition",
]

NOTIFICATION_SUBJECT = "Agentry: an agent needs a human"
#: What the notification says besides its typed fields; the error's public message and the
#: conversation are read through the API by someone allowed to.
NOTIFICATION_TEXT = "An agent needs a human: read it with GET /agents/{agentId}, then resume it."
#: Longest single recovery wait.
MAX_BACKOFF_SECONDS = 3600

_GET_ITEM = "arn:aws:states:::dynamodb:getItem"
_UPDATE_ITEM = "arn:aws:states:::dynamodb:updateItem"
_PUBLISH = "arn:aws:states:::sns:publish"

_STALE = "DynamoDB.ConditionalCheckFailedException"
# Throttling and server-side errors of each integration, as Step Functions names them
# ("<Service>.<ErrorCode>"). Client errors such as a failed condition are never retried.
_TRANSIENT: dict[str, list[str]] = {
    "dynamodb": [
        "DynamoDB.ProvisionedThroughputExceededException",
        "DynamoDB.ThrottlingException",
        "DynamoDB.RequestLimitExceeded",
        "DynamoDB.InternalServerErrorException",
        "DynamoDB.AmazonDynamoDBException",
    ],
    "sns": [
        "SNS.ThrottledException",
        "SNS.InternalErrorException",
        "SNS.KMSThrottlingException",
    ],
}
_RETRY_ATTEMPTS = 4
#: The header attributes the machine reads; nothing else of the agent enters its history.
_READ = (
    HeaderAttr.STATUS,
    HeaderAttr.STEP,
    HeaderAttr.RECOVERY_ATTEMPTS,
    HeaderAttr.LAST_ERROR_TYPE,
)


def _retry(service: str) -> list[dict[str, Any]]:
    return [
        {
            "ErrorEquals": _TRANSIENT[service],
            "IntervalSeconds": 1,
            "MaxAttempts": _RETRY_ATTEMPTS,
            "BackoffRate": 2.0,
            "MaxDelaySeconds": 30,
            "JitterStrategy": "FULL",
        }
    ]


def _catch(*, stale: bool, fallback: str) -> list[dict[str, Any]]:
    catchers: list[dict[str, Any]] = []
    if stale:
        # The agent moved on while we waited: another event owns it now, so stop quietly.
        catchers.append({"ErrorEquals": [_STALE], "Next": "AgentMovedOn", "ResultPath": None})
    catchers.append({"ErrorEquals": ["States.ALL"], "Next": fallback, "ResultPath": "$.failure"})
    return catchers


def _key() -> dict[str, Any]:
    return {
        PARTITION_KEY: {"S.$": "States.Format('AGENT#{}', $.detail.agentId)"},
        SORT_KEY: {"S": META_SK},
    }


def _names(*attrs: HeaderAttr) -> dict[str, str]:
    return {f"#{attr.value}": attr.value for attr in attrs}


def _still_failed() -> tuple[str, dict[str, Any]]:
    """The condition that the header is still in the failure this execution acts on."""
    # The item stores numbers as DynamoDB N (a decimal string); the event carries a JSON number.
    return (
        "#step = :step AND #status = :failed",
        {
            ":step": {"N.$": "States.Format('{}', $.detail.step)"},
            ":failed": {"S.$": "$.header.status"},
        },
    )


def _load_agent(table_name: str) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Comment": "Read only what recovery needs of the agent's header.",
        "Resource": _GET_ITEM,
        "Parameters": {
            "TableName": table_name,
            "Key": _key(),
            "ConsistentRead": True,
            "ProjectionExpression": ", ".join(f"#{attr.value}" for attr in _READ),
            "ExpressionAttributeNames": _names(*_READ),
        },
        "ResultPath": "$.agent",
        "Retry": _retry("dynamodb"),
        # Nothing is known of the agent: stop (the execution fails, an alarm watches failures).
        "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "RecoveryFailed", "ResultPath": None}],
        "Next": "AgentExists",
    }


def _read_header(attempts: str | int) -> dict[str, Any]:
    attempts_field = (
        {"attempts.$": attempts} if isinstance(attempts, str) else {"attempts": attempts}
    )
    return {
        "Type": "Pass",
        "Comment": "The header's failure, as JSON values (DynamoDB numbers are strings).",
        "Parameters": {
            "step.$": f"States.StringToJson($.agent.Item.{HeaderAttr.STEP.value}.N)",
            "status.$": f"$.agent.Item.{HeaderAttr.STATUS.value}.S",
            "errorType.$": f"$.agent.Item.{HeaderAttr.LAST_ERROR_TYPE.value}.S",
            **attempts_field,
        },
        "ResultPath": "$.header",
        "Next": "StillFailed",
    }


def _record_attempt(table_name: str) -> dict[str, Any]:
    attrs = (
        HeaderAttr.STATUS,
        HeaderAttr.STEP,
        HeaderAttr.VERSION,
        HeaderAttr.NEXT_STEP,
        HeaderAttr.UPDATED_AT,
        HeaderAttr.RECOVERY_ATTEMPTS,
        HeaderAttr.ACTIVE_SHARD,
        HeaderAttr.SHARD,
        HeaderAttr.RUNNER_UNTIL,
    )
    condition, values = _still_failed()
    return {
        "Type": "Task",
        "Comment": "Request a new plan: the announcer publishes the step of this commit.",
        "Resource": _UPDATE_ITEM,
        "Parameters": {
            "TableName": table_name,
            "Key": _key(),
            "UpdateExpression": (
                "SET #status = :recovering, #step = #step + :one, #version = #version + :one, "
                "#nextStep = :plan, #updatedAt = :now, #activeShard = #shard "
                "ADD #recoveryAttempts :one REMOVE #runnerUntil"
            ),
            "ConditionExpression": condition,
            "ExpressionAttributeNames": _names(*attrs),
            "ExpressionAttributeValues": {
                ":recovering": {"S": Status.RECOVERING.value},
                ":one": {"N": "1"},
                ":plan": {"S": StepKind.PLAN.value},
                ":now": {"S.$": "$$.State.EnteredTime"},
                **values,
            },
        },
        "ResultPath": None,
        "Retry": _retry("dynamodb"),
        "Catch": _catch(stale=True, fallback="MarkNeedsHuman"),
        "End": True,
    }


#: Set by the execution that parked the agent: its own retry recognises its write.
PARKED_BY = "parkedBy"


def _mark_needs_human(table_name: str) -> dict[str, Any]:
    attrs = (
        HeaderAttr.STATUS,
        HeaderAttr.STEP,
        HeaderAttr.VERSION,
        HeaderAttr.UPDATED_AT,
        HeaderAttr.ACTIVE_SHARD,
        HeaderAttr.RUNNER_UNTIL,
    )
    condition, values = _still_failed()
    return {
        "Type": "Task",
        "Comment": "Park the agent for a human, if it is still in the failure of this event.",
        "Resource": _UPDATE_ITEM,
        "Parameters": {
            "TableName": table_name,
            "Key": _key(),
            "UpdateExpression": (
                "SET #status = :needsHuman, #version = #version + :one, #updatedAt = :now, "
                "#parkedBy = :execution REMOVE #activeShard, #runnerUntil"
            ),
            # A duplicate, stale or forged event finds the agent elsewhere and stops quietly,
            # so humans hear about each stuck agent once. This execution's own retry (its
            # first attempt landed but answered an error) finds its mark and goes on to notify.
            "ConditionExpression": f"({condition}) OR #parkedBy = :execution",
            "ExpressionAttributeNames": {**_names(*attrs), "#parkedBy": PARKED_BY},
            "ExpressionAttributeValues": {
                ":needsHuman": {"S": Status.NEEDS_HUMAN.value},
                ":one": {"N": "1"},
                ":now": {"S.$": "$$.State.EnteredTime"},
                ":execution": {"S.$": "$$.Execution.Id"},
                **values,
            },
        },
        "ResultPath": None,
        "Retry": _retry("dynamodb"),
        # Even if the header cannot be written, a human must still hear about the agent.
        "Catch": _catch(stale=True, fallback="NotifyUnparked"),
        "Next": "DescribeProblem",
    }


def _describe() -> dict[str, Any]:
    return {
        "Type": "Pass",
        "Comment": "The notification a human reads: ids and typed fields only (no payloads).",
        "Parameters": {
            "agentId.$": "$.detail.agentId",
            "step.$": "$.header.step",
            "errorType.$": "$.header.errorType",
            "status": Status.NEEDS_HUMAN.value,
            "message": NOTIFICATION_TEXT,
        },
        "ResultPath": "$.notification",
        "Next": "NotifyHuman",
    }


def _notify(topic_arn: str, next_state: str | None) -> dict[str, Any]:
    state: dict[str, Any] = {
        "Type": "Task",
        "Comment": "Tell the humans subscribed to the topic.",
        "Resource": _PUBLISH,
        "Parameters": {
            "TopicArn": topic_arn,
            "Subject": NOTIFICATION_SUBJECT,
            "Message.$": "States.JsonToString($.notification)",
        },
        "ResultPath": None,
        "Retry": _retry("sns"),
        "Catch": _catch(stale=False, fallback="RecoveryFailed"),
    }
    if next_state is None:
        state["End"] = True
    else:
        state["Next"] = next_state
    return state


def backoff_delays(delay_seconds: int, backoff_rate: float, max_attempts: int) -> list[int]:
    """The wait before each recovery attempt: ``delay * rate**n``, capped at an hour."""
    return [
        min(MAX_BACKOFF_SECONDS, round(delay_seconds * backoff_rate**attempt))
        for attempt in range(max_attempts)
    ]


def recovery_definition(
    *,
    table_name: str,
    topic_arn: str,
    max_attempts: int,
    delay_seconds: int,
    backoff_rate: float = 2.0,
) -> dict[str, Any]:
    """Return the recovery workflow: retry a retryable error after a backoff, else ask a human."""
    if max_attempts < 0:
        raise ValueError(f"max_attempts: must be >= 0, got {max_attempts}")
    if delay_seconds < 0:
        raise ValueError(f"delay_seconds: must be >= 0, got {delay_seconds}")
    if backoff_rate < 1:
        raise ValueError(f"backoff_rate: must be >= 1, got {backoff_rate}")
    delays = backoff_delays(delay_seconds, backoff_rate, max_attempts)
    # Step Functions has no power function and Wait has no jitter: one Wait per attempt,
    # chosen on the attempts already recorded, gives an exact exponential backoff.
    backoffs = {
        f"Backoff{attempt + 1}": {"Type": "Wait", "Seconds": seconds, "Next": "RecordAttempt"}
        for attempt, seconds in enumerate(delays)
    }
    # With no attempt allowed the retry path is unreachable: leave it out (ASL forbids orphans).
    retry_path: dict[str, Any] = {}
    if backoffs:
        retry_path = {
            "HasAttemptsLeft": {
                "Type": "Choice",
                "Comment": "The wait of the next attempt; no attempt left: a human.",
                "Choices": [
                    {"Variable": "$.header.attempts", "NumericEquals": attempt, "Next": name}
                    for attempt, name in enumerate(backoffs)
                ],
                "Default": "MarkNeedsHuman",
            },
            **backoffs,
            "RecordAttempt": _record_attempt(table_name),
        }
    attempts_path = f"$.agent.Item.{HeaderAttr.RECOVERY_ATTEMPTS.value}.N"
    return {
        "Comment": "Agentry recovery: back off and re-plan a retryable error, else ask a human.",
        "StartAt": "LoadAgent",
        "States": {
            "LoadAgent": _load_agent(table_name),
            "AgentExists": {
                "Type": "Choice",
                "Choices": [
                    {"Variable": "$.agent.Item", "IsPresent": False, "Next": "AgentMovedOn"},
                    {
                        "Variable": f"$.agent.Item.{HeaderAttr.LAST_ERROR_TYPE.value}.S",
                        "IsPresent": False,
                        "Next": "AgentMovedOn",
                    },
                    {"Variable": attempts_path, "IsPresent": True, "Next": "ReadHeader"},
                ],
                "Default": "ReadFirstHeader",
            },
            "ReadHeader": _read_header(f"States.StringToJson({attempts_path})"),
            "ReadFirstHeader": _read_header(0),
            "StillFailed": {
                "Type": "Choice",
                "Comment": "Act only on an agent still in the failure this event names.",
                "Choices": [
                    {
                        "And": [
                            {
                                "Variable": "$.header.step",
                                "NumericEqualsPath": "$.detail.step",
                            },
                            {
                                "Or": [
                                    {"Variable": "$.header.status", "StringEquals": status.value}
                                    for status in sorted(FAILURES)
                                ]
                            },
                        ],
                        "Next": "IsRetryable",
                    }
                ],
                "Default": "AgentMovedOn",
            },
            "IsRetryable": {
                "Type": "Choice",
                "Comment": "Choose on the header's typed error, never on a message.",
                "Choices": [
                    {
                        "Or": [
                            {"Variable": "$.header.errorType", "StringEquals": error.value}
                            for error in RETRYABLE_ERRORS
                        ],
                        "Next": "HasAttemptsLeft" if backoffs else "MarkNeedsHuman",
                    }
                ],
                "Default": "MarkNeedsHuman",
            },
            **retry_path,
            "MarkNeedsHuman": _mark_needs_human(table_name),
            "DescribeProblem": _describe(),
            "NotifyHuman": _notify(topic_arn, None),
            "NotifyUnparked": {
                "Type": "Pass",
                "Comment": "Parking failed: tell a human anyway, then fail the execution.",
                "Parameters": {
                    "agentId.$": "$.detail.agentId",
                    "step.$": "$.detail.step",
                    "errorType.$": "$.header.errorType",
                    "status": "UNPARKED",
                    "message": "Recovery could not park this agent; look at it now.",
                },
                "ResultPath": "$.notification",
                "Next": "NotifyUnparkedHuman",
            },
            "NotifyUnparkedHuman": _notify(topic_arn, "RecoveryFailed"),
            "AgentMovedOn": {
                "Type": "Succeed",
                "Comment": "The agent is gone or no longer in this failure: nothing to do.",
            },
            "RecoveryFailed": {
                "Type": "Fail",
                "Error": "Agentry.RecoveryFailed",
                "Cause": "Recovery could not act on an agent, or could not tell a human.",
            },
        },
    }
