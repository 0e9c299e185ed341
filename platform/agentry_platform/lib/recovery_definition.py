"""The recovery state machine's definition (Amazon States Language) as a pure function.

Input is the ``Agent Error`` EventBridge event itself (``$.detail.agentId``, ``.step``,
``.errorType``, ``.message``). Only direct service integrations are used, so the recovery path
has no code of its own to fail: ``dynamodb:getItem``/``updateItem``, ``events:putEvents`` and
``sns:publish``.
"""

from __future__ import annotations

from typing import Any

from agentry_runtime.contract import (
    META_SK,
    NEEDS_HUMAN_STATUS,
    PARTITION_KEY,
    RECOVERING_STATUS,
    RECOVERY_SOURCE,
    RETRYABLE_ERRORS,
    SCHEMA_VERSION,
    SORT_KEY,
    DetailType,
    HeaderAttr,
    StepKind,
)

__all__ = ["MAX_BACKOFF_SECONDS", "NOTIFICATION_SUBJECT", "backoff_delays", "recovery_definition"]

NOTIFICATION_SUBJECT = "Agentry: an agent needs a human"
#: Longest single recovery wait.
MAX_BACKOFF_SECONDS = 3600

_GET_ITEM = "arn:aws:states:::dynamodb:getItem"
_UPDATE_ITEM = "arn:aws:states:::dynamodb:updateItem"
_PUT_EVENTS = "arn:aws:states:::events:putEvents"
_PUBLISH = "arn:aws:states:::sns:publish"

_STALE = "DynamoDB.ConditionalCheckFailedException"
# Throttling and server-side errors of each integration, as Step Functions names them
# ("<Service>.<ErrorCode>"); a failed PutEvents entry (throttled or internal) is
# EventBridge.FailedEntry. Client errors such as a failed condition are never retried.
_TRANSIENT: dict[str, list[str]] = {
    "dynamodb": [
        "DynamoDB.ProvisionedThroughputExceededException",
        "DynamoDB.ThrottlingException",
        "DynamoDB.RequestLimitExceeded",
        "DynamoDB.InternalServerErrorException",
        "DynamoDB.AmazonDynamoDBException",
    ],
    "events": [
        "EventBridge.FailedEntry",
        "EventBridge.InternalException",
        "EventBridge.ThrottlingException",
    ],
    "sns": [
        "SNS.ThrottledException",
        "SNS.InternalErrorException",
        "SNS.KMSThrottlingException",
    ],
}
_RETRY_ATTEMPTS = 4


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


def _step_condition() -> dict[str, Any]:
    # The item stores numbers as DynamoDB N (a decimal string); the event carries a JSON number.
    return {":step": {"N.$": "States.Format('{}', $.detail.step)"}}


def _load_agent(table_name: str) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Comment": "Read the agent's header to learn its current step and recovery attempts.",
        "Resource": _GET_ITEM,
        "Parameters": {"TableName": table_name, "Key": _key(), "ConsistentRead": True},
        "ResultPath": "$.agent",
        "Retry": _retry("dynamodb"),
        "Catch": _catch(stale=False, fallback="MarkNeedsHuman"),
        "Next": "AgentExists",
    }


def _read_header(attempts: str | int) -> dict[str, Any]:
    attempts_field = (
        {"attempts.$": attempts} if isinstance(attempts, str) else {"attempts": attempts}
    )
    return {
        "Type": "Pass",
        "Comment": "Turn the item's DynamoDB numbers into JSON numbers.",
        "Parameters": {
            "step.$": f"States.StringToJson($.agent.Item.{HeaderAttr.STEP.value}.N)",
            **attempts_field,
        },
        "ResultPath": "$.header",
        "Next": "SameStep",
    }


def _record_attempt(table_name: str) -> dict[str, Any]:
    attrs = (
        HeaderAttr.STATUS,
        HeaderAttr.STEP,
        HeaderAttr.VERSION,
        HeaderAttr.NEXT_STEP,
        HeaderAttr.UPDATED_AT,
        HeaderAttr.RECOVERY_ATTEMPTS,
        HeaderAttr.LAST_ERROR_TYPE,
    )
    return {
        "Type": "Task",
        "Comment": "Count the attempt and move the agent to a fresh plan step, if nothing moved.",
        "Resource": _UPDATE_ITEM,
        "Parameters": {
            "TableName": table_name,
            "Key": _key(),
            "UpdateExpression": (
                "SET #status = :recovering, #step = #step + :one, #version = #version + :one, "
                "#nextStep = :plan, #updatedAt = :now, #lastErrorType = :errorType "
                "ADD #recoveryAttempts :one"
            ),
            "ConditionExpression": "#step = :step",
            "ExpressionAttributeNames": _names(*attrs),
            "ExpressionAttributeValues": {
                ":recovering": {"S": RECOVERING_STATUS},
                ":one": {"N": "1"},
                ":plan": {"S": StepKind.PLAN.value},
                ":now": {"S.$": "$$.State.EnteredTime"},
                ":errorType": {"S.$": "$.detail.errorType"},
                **_step_condition(),
            },
            "ReturnValues": "UPDATED_NEW",
        },
        "ResultSelector": {
            "step.$": f"States.StringToJson($.Attributes.{HeaderAttr.STEP.value}.N)",
        },
        "ResultPath": "$.updated",
        "Retry": _retry("dynamodb"),
        "Catch": _catch(stale=True, fallback="MarkNeedsHuman"),
        "Next": "RequestStep",
    }


def _request_step(bus_name: str) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Comment": "Ask the worker for a new plan step (the step is a JSON number).",
        "Resource": _PUT_EVENTS,
        "Parameters": {
            "Entries": [
                {
                    "EventBusName": bus_name,
                    "Source": RECOVERY_SOURCE,
                    "DetailType": DetailType.STEP_REQUESTED.value,
                    "Detail": {
                        "schemaVersion": SCHEMA_VERSION,
                        "agentId.$": "$.detail.agentId",
                        "step.$": "$.updated.step",
                        "kind": StepKind.PLAN.value,
                        "reason": "recovery",
                    },
                }
            ]
        },
        "ResultPath": None,
        "Retry": _retry("events"),
        "Catch": _catch(stale=False, fallback="MarkNeedsHuman"),
        "End": True,
    }


def _mark_needs_human(table_name: str) -> dict[str, Any]:
    attrs = (
        HeaderAttr.STATUS,
        HeaderAttr.STEP,
        HeaderAttr.VERSION,
        HeaderAttr.UPDATED_AT,
        HeaderAttr.LAST_ERROR_TYPE,
    )
    return {
        "Type": "Task",
        "Comment": "Park the agent for a human, if it is still at the failed step.",
        "Resource": _UPDATE_ITEM,
        "Parameters": {
            "TableName": table_name,
            "Key": _key(),
            "UpdateExpression": (
                "SET #status = :needsHuman, #version = #version + :one, #updatedAt = :now, "
                "#lastErrorType = :errorType"
            ),
            # A duplicate error event finds the agent already parked and stops quietly, so the
            # humans hear about each stuck agent once.
            "ConditionExpression": "#step = :step AND #status <> :needsHuman",
            "ExpressionAttributeNames": _names(*attrs),
            "ExpressionAttributeValues": {
                ":needsHuman": {"S": NEEDS_HUMAN_STATUS},
                ":one": {"N": "1"},
                ":now": {"S.$": "$$.State.EnteredTime"},
                ":errorType": {"S.$": "$.detail.errorType"},
                **_step_condition(),
            },
        },
        "ResultPath": None,
        "Retry": _retry("dynamodb"),
        # Even if the header cannot be written, a human must still hear about the agent.
        "Catch": _catch(stale=True, fallback="DescribeProblem"),
        "Next": "DescribeProblem",
    }


def _describe_problem() -> dict[str, Any]:
    return {
        "Type": "Pass",
        "Comment": "The notification a human reads.",
        "Parameters": {
            "agentId.$": "$.detail.agentId",
            "step.$": "$.detail.step",
            "errorType.$": "$.detail.errorType",
            "message.$": "$.detail.message",
            "status": NEEDS_HUMAN_STATUS,
        },
        "ResultPath": "$.notification",
        "Next": "NotifyHuman",
    }


def _notify_human(topic_arn: str) -> dict[str, Any]:
    return {
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
        "Catch": _catch(stale=False, fallback="NotificationFailed"),
        "Next": "AnnounceNeedsHuman",
    }


def _announce_needs_human(bus_name: str) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Comment": "Publish Agent Needs Human for any other listener.",
        "Resource": _PUT_EVENTS,
        "Parameters": {
            "Entries": [
                {
                    "EventBusName": bus_name,
                    "Source": RECOVERY_SOURCE,
                    "DetailType": DetailType.AGENT_NEEDS_HUMAN.value,
                    "Detail": {
                        "schemaVersion": SCHEMA_VERSION,
                        "agentId.$": "$.detail.agentId",
                        "step.$": "$.detail.step",
                        "errorType.$": "$.detail.errorType",
                        "message.$": "$.detail.message",
                    },
                }
            ]
        },
        "ResultPath": None,
        "Retry": _retry("events"),
        "Catch": _catch(stale=False, fallback="NotificationFailed"),
        "End": True,
    }


def backoff_delays(delay_seconds: int, backoff_rate: float, max_attempts: int) -> list[int]:
    """The wait before each recovery attempt: ``delay * rate**n``, capped at an hour."""
    return [
        min(MAX_BACKOFF_SECONDS, round(delay_seconds * backoff_rate**attempt))
        for attempt in range(max_attempts)
    ]


def recovery_definition(
    *,
    table_name: str,
    bus_name: str,
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
            "RequestStep": _request_step(bus_name),
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
                    {"Variable": attempts_path, "IsPresent": True, "Next": "ReadHeader"},
                ],
                "Default": "ReadFirstHeader",
            },
            "ReadHeader": _read_header(f"States.StringToJson({attempts_path})"),
            "ReadFirstHeader": _read_header(0),
            "SameStep": {
                "Type": "Choice",
                "Comment": "A header past the failed step means a later event already won.",
                "Choices": [
                    {
                        "Variable": "$.header.step",
                        "NumericEqualsPath": "$.detail.step",
                        "Next": "IsRetryable",
                    }
                ],
                "Default": "AgentMovedOn",
            },
            "IsRetryable": {
                "Type": "Choice",
                "Comment": "Choose on the typed error, never on its message.",
                "Choices": [
                    {
                        "Or": [
                            {"Variable": "$.detail.errorType", "StringEquals": error.value}
                            for error in RETRYABLE_ERRORS
                        ],
                        "Next": "HasAttemptsLeft" if backoffs else "MarkNeedsHuman",
                    }
                ],
                "Default": "MarkNeedsHuman",
            },
            **retry_path,
            "MarkNeedsHuman": _mark_needs_human(table_name),
            "DescribeProblem": _describe_problem(),
            "NotifyHuman": _notify_human(topic_arn),
            "AnnounceNeedsHuman": _announce_needs_human(bus_name),
            "AgentMovedOn": {
                "Type": "Succeed",
                "Comment": "The agent is gone or already past the failed step: nothing to do.",
            },
            "NotificationFailed": {
                "Type": "Fail",
                "Error": "Agentry.NotificationFailed",
                "Cause": "Could not notify a human about an agent that needs one.",
            },
        },
    }
