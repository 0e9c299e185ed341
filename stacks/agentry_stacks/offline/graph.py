"""Read the offline plan's resource graph: the one description the local environment builds from.

``plan_stack(stack)`` returns ``{"stack", "project", "resources": [...]}``, each resource with
its Pulumi ``type``, ``name``, engine-cased ``inputs`` and mocked ``outputs``. ``LocalGraph``
answers the few questions the local environment asks of it, and raises
:class:`LocalGraphError` naming the resource and the reason when the graph cannot be run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["LocalGraph", "LocalGraphError", "Resource", "arn_of", "json_input", "name_of"]

#: Pulumi types the local environment reads.
TABLE = "aws:dynamodb/table:Table"
TABLE_ITEM = "aws:dynamodb/tableItem:TableItem"
BUS = "aws:cloudwatch/eventBus:EventBus"
RULE = "aws:cloudwatch/eventRule:EventRule"
TARGET = "aws:cloudwatch/eventTarget:EventTarget"
QUEUE = "aws:sqs/queue:Queue"
TOPIC = "aws:sns/topic:Topic"
SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
STATE_MACHINE = "aws:sfn/stateMachine:StateMachine"
ROLE = "aws:iam/role:Role"
FUNCTION = "aws:lambda/function:Function"
EVENT_SOURCE_MAPPING = "aws:lambda/eventSourceMapping:EventSourceMapping"
INTEGRATION = "aws:apigatewayv2/integration:Integration"
ROUTE = "aws:apigatewayv2/route:Route"

Resource = Mapping[str, Any]


class LocalGraphError(ValueError):
    """The graph cannot be run locally; the message names the resource and the reason."""


class LocalGraph:
    """Typed questions over one plan graph document."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        resources = document.get("resources")
        if not isinstance(resources, list):
            raise LocalGraphError("resources: the graph document has no resource list")
        self.stack = str(document.get("stack", ""))
        self.resources: list[Resource] = resources

    def of_type(self, type_: str) -> Iterator[Resource]:
        """The resources of one Pulumi type, in graph order."""
        return (r for r in self.resources if r.get("type") == type_)

    def one(self, type_: str) -> Resource:
        """The single resource of ``type_``; raises unless there is exactly one."""
        found = list(self.of_type(type_))
        if len(found) != 1:
            raise LocalGraphError(f"{type_}: expected exactly one resource, found {len(found)}")
        return found[0]

    def by_arn(self, arn: str) -> Resource | None:
        """The resource whose output ``arn`` is ``arn``, if any."""
        return next((r for r in self.resources if r.get("outputs", {}).get("arn") == arn), None)

    def region(self) -> str:
        """The region of the stack, read from its event bus's ARN."""
        return arn_of(self.one(BUS)).split(":")[3]

    def code_archive(self, function: Resource) -> str:
        """The path of a function's code archive (the bundle), as the graph records it."""
        code = function.get("inputs", {}).get("code")
        archive = code.get("archive") if isinstance(code, Mapping) else None
        if not isinstance(archive, str):
            raise LocalGraphError(f"{function.get('name')}.code: no archive path")
        return archive

    def environment(self, function: Resource) -> dict[str, str]:
        """A function's environment variables."""
        environment = function.get("inputs", {}).get("environment") or {}
        return {str(k): str(v) for k, v in (environment.get("variables") or {}).items()}

    def function(self, arn: str) -> Resource:
        """The Lambda function with ``arn`` (a function ARN, or an invoke ARN that embeds it)."""
        for resource in self.of_type(FUNCTION):
            if arn_of(resource) in arn:
                return resource
        raise LocalGraphError(f"{arn}: no Lambda function of the graph has this ARN")

    def api_function(self) -> Resource:
        """The function behind the HTTP API's integration."""
        integration = self.one(INTEGRATION)
        return self.function(str(integration["inputs"]["integrationUri"]))

    def route_keys(self) -> set[str]:
        """The HTTP API's route keys, e.g. ``GET /agents/{id}``."""
        return {str(r["inputs"]["routeKey"]) for r in self.of_type(ROUTE)}


def arn_of(resource: Resource) -> str:
    """The resource's ARN from its (mocked) outputs; raises naming the resource."""
    arn = resource.get("outputs", {}).get("arn")
    if not isinstance(arn, str):
        raise LocalGraphError(f"{resource.get('name')}: the graph gives this resource no arn")
    return arn


def name_of(resource: Resource) -> str:
    """The physical name of a resource (its ``name`` input, else its output ``name``)."""
    name = resource.get("inputs", {}).get("name") or resource.get("outputs", {}).get("name")
    if not isinstance(name, str):
        raise LocalGraphError(f"{resource.get('name')}: the graph gives this resource no name")
    return name


def json_input(resource: Resource, key: str) -> Any:
    """An input that holds a JSON document (event pattern, definition, redrive policy)."""
    raw = resource.get("inputs", {}).get(key)
    if raw is None:
        return None
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise LocalGraphError(f"{resource.get('name')}.{key}: not JSON ({exc})") from exc
