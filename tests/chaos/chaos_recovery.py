"""The recovery state machine, interpreted from its own definition (Amazon States Language).

moto's Step Functions interpreter really waits and cannot be interleaved call by call, so the
chaos runs ``recovery_definition(...)`` through this small interpreter instead: ``Task``
(``dynamodb:getItem``/``updateItem`` through a DynamoDB client, ``sns:publish`` to the humans),
``Choice``, ``Pass``, ``Wait`` (virtual time), ``Succeed`` and ``Fail``, with ``Parameters``
(``.$`` paths and the intrinsics the definition uses), ``ResultPath``, ``Retry`` and ``Catch``
as Step Functions applies them. The definition is the platform's, unchanged: what it decides,
the chaos does. Anything it cannot interpret fails loudly.

The integration's DynamoDB errors are named as Step Functions names them (``DynamoDB.<Code>``;
a server error is ``DynamoDB.InternalServerErrorException``), so the definition's own
``Retry``/``Catch`` lists decide what is retried and where a failure goes.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

_FORMAT = re.compile(r"^States\.Format\('(?P<template>[^']*)',\s*(?P<args>.+)\)$")
_CALL = re.compile(r"^(?P<name>States\.\w+)\((?P<arg>.+)\)$")


class TaskFailed(Exception):  # noqa: N818 - named as Step Functions names task errors
    """A task ended in an error named ``name`` (``DynamoDB.ConditionalCheckFailedException``)."""

    def __init__(self, name: str, cause: str) -> None:
        super().__init__(f"{name}: {cause}")
        self.name = name
        self.cause = cause


class RecoveryExecution:
    """One execution of the definition for one ``Agent Error`` event."""

    def __init__(
        self,
        definition: dict[str, Any],
        *,
        dynamodb: Any,
        notify: Callable[[dict[str, Any]], None],
        sleep: Callable[[float], None],
        entered_time: Callable[[], str],
        execution_id: str = "arn:aws:states:us-east-1:123456789012:execution:recovery:chaos",
    ) -> None:
        self.definition = definition
        self.execution_id = execution_id
        self.dynamodb = dynamodb
        self.notify = notify
        self.sleep = sleep
        self.entered_time = entered_time
        #: The states visited, in order (for traces).
        self.path: list[str] = []

    def run(self, event: dict[str, Any]) -> str:
        """Run to the end; ``"Succeeded"`` or ``"Failed"``."""
        states = self.definition["States"]
        name = self.definition["StartAt"]
        document = copy.deepcopy(event)
        for _ in range(200):
            self.path.append(name)
            state = states[name]
            kind = state["Type"]
            if kind == "Succeed":
                return "Succeeded"
            if kind == "Fail":
                return "Failed"
            if kind == "Choice":
                name = self._choose(state, document)
                continue
            if kind == "Wait":
                self.sleep(float(state["Seconds"]))
            elif kind == "Pass":
                result = self._parameters(state.get("Parameters"), document)
                document = _with_result(document, state.get("ResultPath", "$"), result)
            elif kind == "Task":
                next_name = self._task(state, document)
                if isinstance(next_name, tuple):
                    name, document = next_name
                    continue
                document = next_name
            else:
                raise ValueError(f"recovery definition: unsupported state type {kind!r}")
            if state.get("End"):
                return "Succeeded"
            name = state["Next"]
        raise RuntimeError("recovery execution did not end in 200 states")

    # --- tasks ------------------------------------------------------------------------------

    def _task(self, state: dict[str, Any], document: dict[str, Any]) -> Any:
        """Run a task with its retries: the new document, or ``(next state, document)``."""
        parameters = self._parameters(state.get("Parameters"), document)
        attempts: dict[int, int] = {}
        while True:
            try:
                result = self._call(state["Resource"], parameters)
            except TaskFailed as failure:
                retrier = _matching(state.get("Retry", []), failure.name)
                if retrier is not None:
                    index, rule = retrier
                    done = attempts.get(index, 0)
                    if done < rule.get("MaxAttempts", 3):
                        attempts[index] = done + 1
                        delay = (
                            rule.get("IntervalSeconds", 1) * rule.get("BackoffRate", 2.0) ** done
                        )
                        delay = min(delay, rule.get("MaxDelaySeconds", delay))
                        # FULL jitter draws from 0..delay: the middle keeps runs repeatable.
                        full = rule.get("JitterStrategy") == "FULL"
                        self.sleep(delay / 2 if full else delay)
                        continue
                catcher = _matching(state.get("Catch", []), failure.name)
                if catcher is None:
                    raise RuntimeError(f"uncaught {failure.name} in a recovery task") from failure
                _, rule = catcher
                error = {"Error": failure.name, "Cause": failure.cause}
                return rule["Next"], _with_result(document, rule.get("ResultPath", "$"), error)
            return _with_result(document, state.get("ResultPath", "$"), result)

    def _call(self, resource: str, parameters: dict[str, Any]) -> Any:
        if resource.endswith(":sns:publish"):
            message = json.loads(parameters["Message"])
            self.notify(message)
            return {"MessageId": "chaos"}
        service, _, action = resource.rpartition(":")
        if not service.endswith(":dynamodb"):
            raise ValueError(f"recovery definition: unsupported resource {resource!r}")
        operation = {"getItem": "get_item", "updateItem": "update_item"}[action]
        try:
            response = getattr(self.dynamodb, operation)(**parameters)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", "Unknown"))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            if status >= 500:
                code = "InternalServerErrorException"
            raise TaskFailed(f"DynamoDB.{code}", str(exc)) from exc
        except BotoCoreError as exc:
            raise TaskFailed("States.TaskFailed", str(exc)) from exc
        response.pop("ResponseMetadata", None)
        return response

    # --- choices and parameters ------------------------------------------------------------

    def _choose(self, state: dict[str, Any], document: dict[str, Any]) -> str:
        for rule in state["Choices"]:
            if _holds(rule, document):
                return str(rule["Next"])
        if "Default" not in state:
            raise RuntimeError("States.NoChoiceMatched")
        return str(state["Default"])

    def _parameters(self, template: Any, document: dict[str, Any]) -> Any:
        if template is None:
            return document
        if isinstance(template, list):
            return [self._parameters(item, document) for item in template]
        if not isinstance(template, dict):
            return template
        resolved: dict[str, Any] = {}
        for key, value in template.items():
            if key.endswith(".$"):
                resolved[key[:-2]] = self._expression(value, document)
            else:
                resolved[key] = self._parameters(value, document)
        return resolved

    def _expression(self, expression: str, document: dict[str, Any]) -> Any:
        if expression == "$$.State.EnteredTime":
            return self.entered_time()
        if expression == "$$.Execution.Id":
            return self.execution_id
        if match := _FORMAT.match(expression):
            args = [self._expression(a.strip(), document) for a in match["args"].split(",")]
            text = match["template"]
            for arg in args:
                text = text.replace("{}", str(arg), 1)
            return text
        if match := _CALL.match(expression):
            value = self._expression(match["arg"].strip(), document)
            if match["name"] == "States.StringToJson":
                return json.loads(value)
            if match["name"] == "States.JsonToString":
                return json.dumps(value, separators=(",", ":"))
            raise ValueError(f"recovery definition: unsupported intrinsic {match['name']}")
        if expression.startswith("$."):
            value = _path(document, expression)
            if value is _MISSING:
                raise RuntimeError(f"States.Runtime: {expression} is not in the input")
            return value
        raise ValueError(f"recovery definition: unsupported expression {expression!r}")


def _matching(rules: list[dict[str, Any]], error: str) -> tuple[int, dict[str, Any]] | None:
    for index, rule in enumerate(rules):
        names = rule["ErrorEquals"]
        # States.ALL matches every error; States.TaskFailed every error of a task.
        if error in names or "States.ALL" in names or "States.TaskFailed" in names:
            return index, rule
    return None


_MISSING = object()


def _path(document: Any, path: str) -> Any:
    value = document
    for part in path.removeprefix("$.").split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _holds(rule: dict[str, Any], document: dict[str, Any]) -> bool:
    if "And" in rule:
        return all(_holds(r, document) for r in rule["And"])
    if "Or" in rule:
        return any(_holds(r, document) for r in rule["Or"])
    if "Not" in rule:
        return not _holds(rule["Not"], document)
    value = _path(document, rule["Variable"])
    if "IsPresent" in rule:
        return (value is not _MISSING) == rule["IsPresent"]
    if value is _MISSING:
        raise RuntimeError(f"States.Runtime: {rule['Variable']} is not in the input")
    if "StringEquals" in rule:
        return bool(value == rule["StringEquals"])
    if "NumericEquals" in rule:
        return bool(value == rule["NumericEquals"])
    if "NumericEqualsPath" in rule:
        return bool(value == _path(document, rule["NumericEqualsPath"]))
    raise ValueError(f"recovery definition: unsupported choice rule {sorted(rule)}")


def _with_result(document: dict[str, Any], result_path: str | None, result: Any) -> dict[str, Any]:
    if result_path is None:
        return document
    if result_path == "$":
        return copy.deepcopy(result) if isinstance(result, dict) else {"value": result}
    updated = copy.deepcopy(document)
    node = updated
    parts = result_path.removeprefix("$.").split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = result
    return updated
