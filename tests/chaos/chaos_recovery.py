"""The recovery state machine, applied as it would run, from its own definition.

The chaos schedule cannot afford moto's Step Functions interpreter (real executions, real
waits) for thousands of errors, so this walks the same decisions (``LoadAgent`` ->
``SameStep`` -> ``IsRetryable`` -> ``HasAttemptsLeft`` -> ``RecordAttempt`` + ``RequestStep``,
else ``MarkNeedsHuman``) and sends the ``dynamodb:updateItem`` parameters *taken from*
``recovery_definition``, with their ``.$`` paths resolved. A change of the definition's
expressions therefore changes what the chaos suite applies.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from agentry_platform.lib.recovery_definition import recovery_definition
from agentry_runtime.contract import (
    META_SK,
    PARTITION_KEY,
    RETRYABLE_ERRORS,
    SORT_KEY,
    AgentErrorDetail,
    HeaderAttr,
    StepKind,
    StepRequested,
    agent_pk,
)

_FORMAT = re.compile(r"^States\.Format\('(?P<template>[^']*)', (?P<path>\$[.\w]+)\)$")


class Recovery:
    """Resolves ``Agent Error`` events the way the recovery state machine does."""

    def __init__(self, dynamodb: Any, table_name: str, *, max_attempts: int = 2) -> None:
        self.dynamodb = dynamodb
        self.table_name = table_name
        self.max_attempts = max_attempts
        states = recovery_definition(
            table_name=table_name,
            bus_name="chaos",
            topic_arn="arn:aws:sns:us-east-1:123456789012:chaos",
            max_attempts=max_attempts,
            delay_seconds=0,
        )["States"]
        self._record_attempt = states["RecordAttempt"]["Parameters"]
        self._mark_needs_human = states["MarkNeedsHuman"]["Parameters"]
        self.notified: list[str] = []

    def handle(self, error: AgentErrorDetail) -> StepRequested | None:
        """Apply one error; return the step event the machine would publish, if any."""
        item = self.dynamodb.get_item(
            TableName=self.table_name,
            Key={PARTITION_KEY: {"S": agent_pk(error.agent_id)}, SORT_KEY: {"S": META_SK}},
            ConsistentRead=True,
        ).get("Item")
        if item is None or int(item[HeaderAttr.STEP.value]["N"]) != error.step:
            return None  # AgentMovedOn
        attempts = int(item.get(HeaderAttr.RECOVERY_ATTEMPTS.value, {"N": "0"})["N"])
        document = {"detail": error.model_dump(by_alias=True, mode="json")}
        if error.error_type in RETRYABLE_ERRORS and attempts < self.max_attempts:
            params = _resolve(self._record_attempt, document)
            try:
                updated = self.dynamodb.update_item(**params)
            except ClientError as exc:
                if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                    return None
                raise
            step = int(updated["Attributes"][HeaderAttr.STEP.value]["N"])
            return StepRequested(
                agent_id=error.agent_id, step=step, kind=StepKind.PLAN, reason="recovery"
            )
        try:
            self.dynamodb.update_item(**_resolve(self._mark_needs_human, document))
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
        # DescribeProblem + NotifyHuman run even when the header could not be written.
        self.notified.append(error.agent_id)
        return None


def _resolve(value: Any, document: dict[str, Any]) -> Any:
    """A task's ``Parameters`` with every ``"key.$"`` replaced by ``"key"`` and its value."""
    if isinstance(value, list):
        return [_resolve(v, document) for v in value]
    if not isinstance(value, dict):
        return value
    resolved: dict[str, Any] = {}
    for key, inner in value.items():
        if key.endswith(".$"):
            resolved[key[:-2]] = _evaluate(inner, document)
        else:
            resolved[key] = _resolve(inner, document)
    return resolved


def _evaluate(expression: str, document: dict[str, Any]) -> Any:
    # Only the forms the definition's update parameters use; anything else fails loudly.
    if expression == "$$.State.EnteredTime":
        return datetime.now(UTC).isoformat()
    if match := _FORMAT.match(expression):
        return match["template"].replace("{}", str(_path(match["path"], document)))
    if expression.startswith("$."):
        return _path(expression, document)
    raise ValueError(f"recovery parameters: unsupported expression {expression!r}")


def _path(path: str, document: dict[str, Any]) -> Any:
    value: Any = document
    for part in path.removeprefix("$.").split("."):
        value = value[part]
    return value
