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

__all__ = ["Execution", "StepFunctionsBridge", "transform_input"]

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


_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.-]+)>")


def transform_input(paths: dict[str, str], template: str, event: dict[str, Any]) -> str:
    """What a rule target with an input transformer receives, as EventBridge builds it.

    moto applies transformers without quoting string values, so the local environment does
    it here for the targets it bridges. EventBridge's rules (the InputTransformer API reference
    and "Amazon EventBridge input transformation" in the user guide): in a JSON template a
    placeholder outside a string becomes the value as JSON (a string is quoted), inside a
    string its text; in a plain-text template, the text. Paths use dot notation only.
    """
    values = {name: _lookup(event, path) for name, path in paths.items()}
    is_json = template.lstrip().startswith("{")
    out: list[str] = []
    in_string = escaped = False
    index = 0
    while index < len(template):
        char = template[index]
        match = _PLACEHOLDER.match(template, index) if char == "<" else None
        if match and match.group(1) in values:
            value = values[match.group(1)]
            if is_json and not in_string:
                out.append(json.dumps(value))
            elif is_json:
                text = value if isinstance(value, str) else json.dumps(value)
                out.append(json.dumps(text)[1:-1])
            else:
                out.append(value if isinstance(value, str) else json.dumps(value))
            index = match.end()
            continue
        if is_json:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = not in_string
        out.append(char)
        index += 1
    return "".join(out)


def _lookup(event: Any, path: str) -> Any:
    value = event
    for part in path.removeprefix("$").strip(".").split("."):
        if not part:
            continue
        value = value.get(part) if isinstance(value, dict) else None
    return value
