"""Human views of a plan graph: the settings table and the event-flow diagram.

Both read only the graph document ``plan_stack`` returns, so what they show is what the
program declared: the diagram's nodes and edges come from the resources found (integrations,
event source mappings, rule targets, redrive policies, IAM statements), never from a template.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from rich.table import Table
from rich.text import Text

__all__ = ["Edge", "event_flow", "mermaid", "resource_table", "settings_of"]

Resource = dict[str, Any]
_Settings = Callable[[dict[str, Any]], list[str]]


def _on(flag: Any) -> str:
    return "on" if flag else "off"


def _function(inputs: dict[str, Any]) -> list[str]:
    reserved = inputs.get("reservedConcurrentExecutions")
    return [
        str(inputs.get("runtime")),
        "/".join(inputs.get("architectures") or ["x86_64"]),
        f"{inputs.get('memorySize', 128)} MB",
        f"timeout {inputs.get('timeout', 3)}s",
        f"tracing {(inputs.get('tracingConfig') or {}).get('mode', 'PassThrough')}",
        f"reserved {reserved}" if reserved is not None else "unreserved",
        _bytecode((inputs.get("tags") or {}).get("Bytecode"), str(inputs.get("runtime"))),
    ]


def _bytecode(tag: Any, runtime: str) -> str:
    # The bundle's bytecode, as the function's tag records it (agentry_platform.bundle).
    if tag is None:
        return "bytecode unknown"
    if tag == "none":
        return f"no bytecode (no {runtime} at build time: every cold start compiles)"
    return f"bytecode {tag}"


def _table(inputs: dict[str, Any]) -> list[str]:
    return [
        str(inputs.get("billingMode", "PROVISIONED")),
        f"PITR {_on((inputs.get('pointInTimeRecovery') or {}).get('enabled'))}",
        f"deletion protection {_on(inputs.get('deletionProtectionEnabled'))}",
        f"TTL {(inputs.get('ttl') or {}).get('attributeName', 'off')}",
        "CMK" if (inputs.get("serverSideEncryption") or {}).get("kmsKeyArn") else "AWS key",
    ]


def _queue(inputs: dict[str, Any]) -> list[str]:
    settings = []
    if redrive := inputs.get("redrivePolicy"):
        policy = json.loads(redrive) if isinstance(redrive, str) else redrive
        dlq = str(policy.get("deadLetterTargetArn", "")).rsplit(":", 1)[-1]
        settings.append(f"redrive to {dlq} after {policy.get('maxReceiveCount')}")
    if "visibilityTimeoutSeconds" in inputs:
        settings.append(f"visibility {inputs['visibilityTimeoutSeconds']}s")
    if "messageRetentionSeconds" in inputs:
        settings.append(f"retention {int(inputs['messageRetentionSeconds']) // 86400}d")
    settings.append("CMK" if inputs.get("kmsMasterKeyId") else "SSE-SQS")
    return settings


def _state_machine(inputs: dict[str, Any]) -> list[str]:
    return [
        str(inputs.get("type", "STANDARD")),
        f"tracing {_on((inputs.get('tracingConfiguration') or {}).get('enabled'))}",
        f"logging {(inputs.get('loggingConfiguration') or {}).get('level', 'OFF')}",
    ]


def _mapping(inputs: dict[str, Any]) -> list[str]:
    scaling = inputs.get("scalingConfig") or {}
    return [
        f"batch {inputs.get('batchSize')}",
        f"max concurrency {scaling.get('maximumConcurrency', '-')}",
        *inputs.get("functionResponseTypes", []),
    ]


def _rule(inputs: dict[str, Any]) -> list[str]:
    pattern = json.loads(inputs.get("eventPattern") or "{}")
    return [f"bus {inputs.get('eventBusName', 'default')}", *pattern.get("detail-type", [])]


def _stage(inputs: dict[str, Any]) -> list[str]:
    route = inputs.get("defaultRouteSettings") or {}
    return [
        f"burst {route.get('throttlingBurstLimit')}",
        f"rate {route.get('throttlingRateLimit')}/s",
        "access logs" if inputs.get("accessLogSettings") else "no access logs",
    ]


_SETTINGS: dict[str, _Settings] = {
    "aws:lambda/function:Function": _function,
    "aws:dynamodb/table:Table": _table,
    "aws:sqs/queue:Queue": _queue,
    "aws:sfn/stateMachine:StateMachine": _state_machine,
    "aws:lambda/eventSourceMapping:EventSourceMapping": _mapping,
    "aws:cloudwatch/eventRule:EventRule": _rule,
    "aws:apigatewayv2/stage:Stage": _stage,
    "aws:cloudwatch/logGroup:LogGroup": lambda i: [f"retention {i.get('retentionInDays')}d"],
    "aws:cloudwatch/eventArchive:EventArchive": lambda i: [f"retention {i.get('retentionDays')}d"],
    "aws:apigatewayv2/route:Route": lambda i: [
        str(i.get("routeKey")),
        str(i.get("authorizationType")),
    ],
    "aws:sns/topic:Topic": lambda i: ["CMK" if i.get("kmsMasterKeyId") else "unencrypted"],
    "aws:sns/topicSubscription:TopicSubscription": lambda i: [f"{i.get('protocol')} subscriber"],
    "aws:cloudwatch/eventTarget:EventTarget": lambda i: [
        f"rule {i.get('rule')} to {str(i.get('arn')).rsplit(':', 1)[-1]}"
    ],
    "aws:iam/rolePolicy:RolePolicy": lambda i: [
        f"role {i.get('role')}, {len(_statements(i.get('policy')))} statements"
    ],
    "aws:kms/key:Key": lambda i: [f"rotation {_on(i.get('enableKeyRotation'))}"],
    "aws:cloudwatch/metricAlarm:MetricAlarm": lambda i: [
        f"{i.get('namespace')} {i.get('metricName')} {i.get('comparisonOperator')} "
        f"{i.get('threshold')}"
    ],
}


def settings_of(resource: Resource) -> str:
    """The key settings of one resource, as a short comma-separated string ('' if none)."""
    describe = _SETTINGS.get(resource["type"])
    return ", ".join(describe(resource["inputs"])) if describe else ""


def _depths(resources: list[Resource]) -> dict[str, int]:
    depth: dict[str, int] = {}
    for resource in resources:  # plans list parents before children
        parent = resource.get("parent")
        depth[resource["urn"]] = depth.get(parent, -1) + 1 if parent else 0
    return depth


def resource_table(graph: dict[str, Any]) -> Table:
    """A rich table of the plan: type, name (indented under its component) and key settings."""
    resources = graph["resources"]
    table = Table(title=f"agentry plan: {graph['stack']} ({len(resources)} resources)")
    table.add_column("type", no_wrap=True)
    table.add_column("name", style="bold")
    table.add_column("key settings")
    depth = _depths(resources)
    for resource in resources:
        indent = "  " * depth[resource["urn"]]
        # Text, not markup: type tokens such as "agentry:bus:EventBus" hold emoji codes.
        style = "cyan" if resource.get("custom", True) else "magenta"
        table.add_row(
            Text(resource["type"], style=style),
            Text(f"{indent}{resource['name']}"),
            Text(settings_of(resource)),
        )
    return table


# --- event flow -----------------------------------------------------------------------------

#: Resource types that are nodes of the event flow, and the mermaid shape of each.
_NODE_KINDS: dict[str, tuple[str, tuple[str, str]]] = {
    "aws:apigatewayv2/api:Api": ("api", ("([", "])")),
    "aws:lambda/function:Function": ("function", ("[", "]")),
    "aws:dynamodb/table:Table": ("table", ("[(", ")]")),
    "aws:cloudwatch/eventBus:EventBus": ("bus", (">", "]")),
    "aws:sqs/queue:Queue": ("queue", ("[/", "/]")),
    "aws:sfn/stateMachine:StateMachine": ("stateMachine", ("{{", "}}")),
    "aws:sns/topic:Topic": ("topic", ("((", "))")),
}
_BEDROCK = "bedrock"
# Actions that move data from a principal to a resource; reads and consumes are left out so the
# diagram shows where events and state go, not every permission.
_FLOW_ACTIONS = re.compile(
    r"^(dynamodb:(PutItem|UpdateItem|TransactWriteItems|BatchWriteItem)|events:PutEvents|"
    r"sns:Publish|sqs:SendMessage|states:StartExecution|bedrock:InvokeModel.*)$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Edge:
    """One arrow of the event flow: from a node to a node, with a label and a style."""

    source: str
    target: str
    label: str
    dashed: bool = False


def _arns(resource: Resource) -> Iterator[str]:
    outputs = resource.get("outputs") or {}
    for key in ("arn", "invokeArn", "id", "name", "url"):
        if value := outputs.get(key):
            yield str(value)


def _statements(policy: Any) -> list[dict[str, Any]]:
    document = json.loads(policy) if isinstance(policy, str) else policy or {}
    statements = document.get("Statement", [])
    return statements if isinstance(statements, list) else [statements]


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


class _Flow:
    """Builds the nodes and edges of the event flow from a graph's resources."""

    def __init__(self, resources: list[Resource]) -> None:
        self.resources = resources
        self.nodes: dict[str, tuple[str, tuple[str, str]]] = {}  # id -> (label, brackets)
        self.edges: list[Edge] = []
        self._by_ref: dict[str, str] = {}  # arn / id / name -> node id
        for resource in resources:
            if kind := _NODE_KINDS.get(resource["type"]):
                node = re.sub(r"\W", "_", resource["name"])
                label = str(resource["inputs"].get("name") or resource["name"])
                self.nodes[node] = (label, kind[1])
                for ref in _arns(resource):
                    self._by_ref[ref] = node

    def node(self, ref: Any) -> str | None:
        """The node a reference (ARN, id, name, invoke URI) points at, if any."""
        text = str(ref or "")
        if text in self._by_ref:
            return self._by_ref[text]
        # Integration URIs wrap a function ARN; IAM resources may add '/index/*' and the like.
        matches = [
            node
            for key, node in self._by_ref.items()
            if key.startswith("arn:") and (text.startswith(f"{key}/") or f"/{key}/" in text)
        ]
        return matches[0] if matches else None

    def add(self, source: str | None, target: str | None, label: str, dashed: bool = False) -> None:
        if source and target and source != target:
            edge = Edge(source, target, label, dashed)
            if edge not in self.edges:
                self.edges.append(edge)

    def build(self) -> _Flow:
        roles = self._role_principals()
        for resource in self.resources:
            inputs, typ = resource["inputs"], resource["type"]
            if typ == "aws:apigatewayv2/integration:Integration":
                self.add(
                    self.node(inputs.get("apiId")), self.node(inputs.get("integrationUri")), "HTTP"
                )
            elif typ == "aws:lambda/eventSourceMapping:EventSourceMapping":
                self.add(
                    self.node(inputs.get("eventSourceArn")),
                    self.node(inputs.get("functionName")),
                    f"batch {inputs.get('batchSize')}",
                )
            elif typ == "aws:cloudwatch/eventTarget:EventTarget":
                self._rule_target(inputs)
            elif typ == "aws:sqs/queue:Queue" and inputs.get("redrivePolicy"):
                policy = json.loads(inputs["redrivePolicy"])
                self.add(
                    self.node(resource["outputs"].get("arn")),
                    self.node(policy.get("deadLetterTargetArn")),
                    f"after {policy.get('maxReceiveCount')} receives",
                    dashed=True,
                )
            elif typ == "aws:iam/rolePolicy:RolePolicy":
                for principal in roles.get(str(inputs.get("role")), []):
                    self._statements_from(principal, inputs.get("policy"))
            elif typ == "aws:sns/topicSubscription:TopicSubscription":
                topic = self.node(inputs.get("topic"))
                protocol = str(inputs.get("protocol"))
                subscribers = f"{topic}_{protocol}"
                self.nodes.setdefault(subscribers, (f"{protocol} subscribers", ("([", "])")))
                self.add(topic, subscribers, "notify")
        return self

    def _rule_target(self, inputs: dict[str, Any]) -> None:
        rule = next(
            (
                r
                for r in self.resources
                if r["type"] == "aws:cloudwatch/eventRule:EventRule"
                and r["inputs"].get("name") == inputs.get("rule")
            ),
            None,
        )
        pattern = json.loads((rule or {}).get("inputs", {}).get("eventPattern") or "{}")
        label = " / ".join(pattern.get("detail-type", [])) or str(inputs.get("rule"))
        bus = self.node(inputs.get("eventBusName"))
        self.add(bus, self.node(inputs.get("arn")), label)
        if dlq := (inputs.get("deadLetterConfig") or {}).get("arn"):
            self.add(bus, self.node(dlq), "undeliverable", dashed=True)

    def _role_principals(self) -> dict[str, list[str]]:
        """Role name -> the function or state machine nodes that run as that role."""
        roles: dict[str, list[str]] = {}
        role_names = {
            r["outputs"].get("arn"): r["inputs"].get("name") or r["outputs"].get("id")
            for r in self.resources
            if r["type"] == "aws:iam/role:Role"
        }
        for resource in self.resources:
            role_arn = resource["inputs"].get("role") or resource["inputs"].get("roleArn")
            node = self.node((resource.get("outputs") or {}).get("arn"))
            if node and role_arn in role_names:
                roles.setdefault(str(role_names[role_arn]), []).append(node)
        return roles

    def _statements_from(self, principal: str, policy: Any) -> None:
        for statement in _statements(policy):
            actions = [a for a in _as_list(statement.get("Action")) if _FLOW_ACTIONS.match(a)]
            if statement.get("Effect") != "Allow" or not actions:
                continue
            if any(action.lower().startswith("bedrock:") for action in actions):
                self.nodes.setdefault(_BEDROCK, ("Amazon Bedrock", ("((", "))")))
                self.add(principal, _BEDROCK, "Converse")
                continue
            label = ", ".join(sorted({a.split(":", 1)[1] for a in actions}))
            for resource in _as_list(statement.get("Resource")):
                self.add(principal, self.node(resource), label)


def _linked(graph: dict[str, Any]) -> tuple[_Flow, list[str]]:
    flow = _Flow(graph["resources"]).build()
    linked = {edge.source for edge in flow.edges} | {edge.target for edge in flow.edges}
    return flow, [node for node in flow.nodes if node in linked]


def event_flow(graph: dict[str, Any]) -> tuple[dict[str, str], list[Edge]]:
    """The event flow of a plan: node id -> label, and the edges between those nodes."""
    flow, nodes = _linked(graph)
    return {node: flow.nodes[node][0] for node in nodes}, flow.edges


def mermaid(graph: dict[str, Any]) -> str:
    """A mermaid flowchart of the plan's event flow (only nodes that take part in it)."""
    flow, nodes = _linked(graph)
    lines = ["flowchart LR"]
    for node in nodes:
        label, (opening, closing) = flow.nodes[node]
        lines.append(f'    {node}{opening}"{label}"{closing}')
    for edge in flow.edges:
        arrow = "-.->" if edge.dashed else "-->"
        lines.append(f'    {edge.source} {arrow}|"{edge.label}"| {edge.target}')
    return "\n".join(lines)
