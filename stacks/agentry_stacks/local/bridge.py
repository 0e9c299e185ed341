"""EventBridge -> Step Functions, bridged: moto cannot deliver a rule's event to a state machine.

``put_events`` raises ``NotImplementedError`` for a Step Functions target, so the local
environment points such a rule at a bridge queue (see :mod:`agentry_stacks.local.resources`).
``StepFunctionsBridge`` takes each event from it and starts the execution with the event as
its input, as EventBridge does, then waits for it: moto runs executions in threads, and its
DynamoDB is not safe against the worker writing at the same time.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from agentry_stacks.local.resources import Bridge

__all__ = ["Execution", "StepFunctionsBridge"]

_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_POLL_SECONDS = 0.02


@dataclass(frozen=True)
class Execution:
    """One finished execution started by the bridge."""

    arn: str
    name: str
    status: str
    event: dict[str, Any] = field(default_factory=dict)
    output: Any = None


class StepFunctionsBridge:
    """Starts a state machine execution for every event a bridge queue received."""

    def __init__(
        self,
        bridge: Bridge,
        sqs: Any,
        sfn: Any,
        *,
        duplicate: bool = False,
        timeout_seconds: float = 60.0,
    ) -> None:
        self.bridge = bridge
        self._sqs = sqs
        self._sfn = sfn
        self._duplicate = duplicate
        self._timeout = timeout_seconds

    def pump(self) -> list[Execution]:
        """Run one execution per waiting event, each to its end; the executions, in order."""
        done: list[Execution] = []
        while True:
            messages = self._sqs.receive_message(
                QueueUrl=self.bridge.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            if not messages:
                return done
            for message in messages:
                event = json.loads(message["Body"])
                name = _execution_name(event)
                done.append(self._run(name, message["Body"], event))
                if self._duplicate:
                    done.append(self._run(f"{name}-again", message["Body"], event))
                self._sqs.delete_message(
                    QueueUrl=self.bridge.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )

    def _run(self, name: str, body: str, event: dict[str, Any]) -> Execution:
        arn = self._sfn.start_execution(
            stateMachineArn=self.bridge.state_machine_arn, name=name, input=body
        )["executionArn"]
        deadline = time.monotonic() + self._timeout
        while True:
            described = self._sfn.describe_execution(executionArn=arn)
            if described["status"] != "RUNNING":
                output = described.get("output")
                return Execution(
                    arn=arn,
                    name=name,
                    status=str(described["status"]),
                    event=event,
                    output=json.loads(output) if output else None,
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"execution {name}: still RUNNING after {self._timeout} s")
            time.sleep(_POLL_SECONDS)


def _execution_name(event: dict[str, Any]) -> str:
    """A valid, unique execution name from the event's id (Step Functions' limit: 80)."""
    raw = str(event.get("id") or uuid.uuid4())
    return _NAME_UNSAFE.sub("-", raw)[:70]
