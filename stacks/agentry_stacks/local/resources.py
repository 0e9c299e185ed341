"""Create the graph's data-plane resources in moto, with the graph's names, ARNs and settings.

Three departures from the graph, each because moto or a laptop cannot do otherwise:

- **Time scale.** Queue visibility timeouts become ``LOCAL_VISIBILITY_TIMEOUT`` seconds and
  the state machine's ``Wait`` states wait at most ``MAX_WAIT_SECONDS``: a failed record comes
  back, and a recovery backs off, at once instead of minutes later. Nothing else is scaled.
- **Step Functions targets.** moto's ``put_events`` raises ``NotImplementedError`` for a Step
  Functions target, so a rule that targets a state machine gets a *bridge queue* as its target
  instead; :mod:`agentry_stacks.local.bridge` starts the execution from it.
- **Notifications.** Email subscriptions cannot deliver here, so every topic also gets an SQS
  subscription of the local environment's own (a *recorder queue*) that keeps its deliveries.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from agentry_runtime.contract import Env
from agentry_stacks.offline.graph import (
    BUS,
    EVENT_SOURCE_MAPPING,
    FUNCTION,
    QUEUE,
    ROLE,
    RULE,
    STATE_MACHINE,
    SUBSCRIPTION,
    TABLE,
    TABLE_ITEM,
    TARGET,
    TOPIC,
    LocalGraph,
    LocalGraphError,
    Resource,
    arn_of,
    json_input,
    name_of,
)

__all__ = [
    "LOCAL_STALE_AFTER_SECONDS",
    "LOCAL_VISIBILITY_TIMEOUT",
    "MAX_WAIT_SECONDS",
    "Bridge",
    "LocalResources",
    "QueueMapping",
    "Scheduled",
    "StreamMapping",
    "build_resources",
    "compress_waits",
]

#: Seconds a received message stays invisible locally (the graph's value is minutes).
LOCAL_VISIBILITY_TIMEOUT = 0
#: How long an agent must stall before the reconciler pokes it, locally (the graph's is minutes).
LOCAL_STALE_AFTER_SECONDS = 0
#: Longest wait of a ``Wait`` state locally (the graph's backoff is seconds to minutes).
MAX_WAIT_SECONDS = 0

# Terraform-style queue inputs -> SQS attribute names.
_QUEUE_ATTRIBUTES = {
    "delaySeconds": "DelaySeconds",
    "maxMessageSize": "MaximumMessageSize",
    "messageRetentionSeconds": "MessageRetentionPeriod",
    "receiveWaitTimeSeconds": "ReceiveMessageWaitTimeSeconds",
    "visibilityTimeoutSeconds": "VisibilityTimeout",
    "redrivePolicy": "RedrivePolicy",
    "fifoQueue": "FifoQueue",
    "contentBasedDeduplication": "ContentBasedDeduplication",
    "sqsManagedSseEnabled": "SqsManagedSseEnabled",
}


@dataclass(frozen=True)
class Bridge:
    """A rule target that moto cannot deliver: a state machine, fed from a bridge queue."""

    rule: str
    queue_url: str
    state_machine_arn: str


@dataclass(frozen=True)
class TopicBridge:
    """A rule target that moto cannot deliver: an SNS topic, fed from a bridge queue."""

    rule: str
    queue_url: str
    topic_arn: str
    #: The target's input transformer ``(paths, template)``, applied by the bridge.
    transform: tuple[dict[str, str], str] | None = None


@dataclass(frozen=True)
class QueueMapping:
    """An SQS event source mapping of the graph: queue, function and batch settings."""

    queue_url: str
    queue_arn: str
    function_arn: str
    batch_size: int
    report_batch_item_failures: bool


@dataclass(frozen=True)
class StreamMapping:
    """A DynamoDB stream event source mapping of the graph.

    ``stream_arn`` is the stream moto made for the table (the graph's is a placeholder).
    """

    stream_arn: str
    graph_stream_arn: str
    function_arn: str
    batch_size: int
    max_retries: int
    filters: tuple[dict[str, Any], ...]
    failure_queue_url: str | None
    report_batch_item_failures: bool


@dataclass(frozen=True)
class Scheduled:
    """A function the graph runs on a schedule (the environment runs it when asked)."""

    rule: str
    function_arn: str
    schedule_expression: str


@dataclass
class LocalResources:
    """What ``build_resources`` created: the handles the environment drives."""

    table_name: str
    queue_urls: dict[str, str] = field(default_factory=dict)  # arn -> url
    dead_letter_queues: dict[str, str] = field(default_factory=dict)  # source url -> dlq url
    bridges: list[Bridge] = field(default_factory=list)
    topic_bridges: list[TopicBridge] = field(default_factory=list)
    recorders: dict[str, str] = field(default_factory=dict)  # topic arn -> recorder queue url
    mappings: list[QueueMapping] = field(default_factory=list)
    stream_mappings: list[StreamMapping] = field(default_factory=list)
    schedules: list[Scheduled] = field(default_factory=list)
    state_machines: list[str] = field(default_factory=list)
    streams: dict[str, str] = field(default_factory=dict)  # the graph's stream arn -> moto's


def build_resources(graph: LocalGraph, clients: dict[str, Any]) -> LocalResources:
    """Create table, queues, topics, bus, rules and state machines of ``graph`` in moto."""
    tables = {arn_of(table): _table(table, clients["dynamodb"]) for table in graph.of_type(TABLE)}
    created = LocalResources(table_name=_agents_table(graph, set(tables.values())))
    for table in graph.of_type(TABLE):
        graph_stream = table.get("outputs", {}).get("streamArn")
        if graph_stream and table["inputs"].get("streamEnabled"):
            described = clients["dynamodb"].describe_table(TableName=name_of(table))["Table"]
            created.streams[str(graph_stream)] = described["LatestStreamArn"]
    for item in graph.of_type(TABLE_ITEM):
        _table_item(item, clients["dynamodb"])
    _queues(graph, clients["sqs"], created)
    _roles(graph, clients["iam"])
    _topics(graph, clients, created)
    for machine in graph.of_type(STATE_MACHINE):
        created.state_machines.append(_state_machine(machine, clients["stepfunctions"]))
    for bus in graph.of_type(BUS):
        clients["events"].create_event_bus(Name=name_of(bus))
    _rules(graph, clients, created)
    for mapping in graph.of_type(EVENT_SOURCE_MAPPING):
        source = str(mapping["inputs"]["eventSourceArn"])
        if source in created.streams:
            created.stream_mappings.append(_stream_mapping(mapping, created))
        else:
            created.mappings.append(_mapping(mapping, created))
    return created


def compress_waits(
    definition: dict[str, Any], max_seconds: int = MAX_WAIT_SECONDS
) -> dict[str, Any]:
    """The definition with every ``Wait`` state's ``Seconds`` capped (the local time scale)."""
    states = {}
    for name, state in definition.get("States", {}).items():
        if state.get("Type") == "Wait" and isinstance(state.get("Seconds"), int | float):
            state = {**state, "Seconds": min(state["Seconds"], max_seconds)}
        elif state.get("Type") in ("Map", "Parallel"):
            state = _compress_nested(state, max_seconds)
        states[name] = state
    return {**definition, "States": states}


def _compress_nested(state: dict[str, Any], max_seconds: int) -> dict[str, Any]:
    state = dict(state)
    if "Branches" in state:
        state["Branches"] = [compress_waits(b, max_seconds) for b in state["Branches"]]
    for key in ("Iterator", "ItemProcessor"):
        if key in state:
            state[key] = compress_waits(state[key], max_seconds)
    return state


def _agents_table(graph: LocalGraph, tables: set[str]) -> str:
    """The agents table: the one the functions' environment names."""
    named = {graph.environment(f).get(Env.TABLE_NAME.value) for f in graph.of_type(FUNCTION)}
    if len(named) != 1 or not named <= tables:
        raise LocalGraphError(
            f"functions: {Env.TABLE_NAME.value} must name one table of the graph, got {named}"
        )
    return str(next(iter(named)))


def _table_item(item: Resource, dynamodb: Any) -> None:
    inputs = item["inputs"]
    document = json_input(item, "item")
    if not isinstance(document, dict):
        raise LocalGraphError(f"{item['name']}.item: not a DynamoDB item document")
    dynamodb.put_item(TableName=inputs["tableName"], Item=document)


def _table(table: Resource, dynamodb: Any) -> str:
    """Create one table of the graph (keys, indexes, stream, TTL); its name."""
    inputs = table["inputs"]
    name = name_of(table)
    keys = [{"AttributeName": inputs["hashKey"], "KeyType": "HASH"}]
    if inputs.get("rangeKey"):
        keys.append({"AttributeName": inputs["rangeKey"], "KeyType": "RANGE"})
    kwargs: dict[str, Any] = {
        "TableName": name,
        "KeySchema": keys,
        "AttributeDefinitions": [
            {"AttributeName": a["name"], "AttributeType": a["type"]} for a in inputs["attributes"]
        ],
        "BillingMode": inputs.get("billingMode", "PAY_PER_REQUEST"),
    }
    if kwargs["BillingMode"] == "PROVISIONED":
        kwargs["ProvisionedThroughput"] = {
            "ReadCapacityUnits": int(inputs.get("readCapacity", 1)),
            "WriteCapacityUnits": int(inputs.get("writeCapacity", 1)),
        }
    if indexes := inputs.get("globalSecondaryIndexes"):
        kwargs["GlobalSecondaryIndexes"] = [_index(index) for index in indexes]
    if inputs.get("streamEnabled"):
        kwargs["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": inputs.get("streamViewType", "NEW_AND_OLD_IMAGES"),
        }
    dynamodb.create_table(**kwargs)
    ttl = inputs.get("ttl") or {}
    if ttl.get("enabled"):
        dynamodb.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["attributeName"]},
        )
    return name


def _index(index: dict[str, Any]) -> dict[str, Any]:
    keys = index.get("keySchemas") or [
        {"attributeName": index["hashKey"], "keyType": "HASH"},
        *(
            [{"attributeName": index["rangeKey"], "keyType": "RANGE"}]
            if index.get("rangeKey")
            else []
        ),
    ]
    projection: dict[str, Any] = {"ProjectionType": index.get("projectionType", "ALL")}
    if index.get("nonKeyAttributes"):
        projection["NonKeyAttributes"] = index["nonKeyAttributes"]
    return {
        "IndexName": index["name"],
        "KeySchema": [{"AttributeName": k["attributeName"], "KeyType": k["keyType"]} for k in keys],
        "Projection": projection,
    }


def _queues(graph: LocalGraph, sqs: Any, created: LocalResources) -> None:
    # Dead-letter queues first: moto checks that a redrive target exists.
    queues = sorted(graph.of_type(QUEUE), key=lambda q: "redrivePolicy" in q["inputs"])
    for queue in queues:
        attributes = {
            attribute: _attribute(value)
            for key, attribute in _QUEUE_ATTRIBUTES.items()
            if (value := queue["inputs"].get(key)) is not None
        }
        attributes["VisibilityTimeout"] = str(LOCAL_VISIBILITY_TIMEOUT)
        url = sqs.create_queue(QueueName=name_of(queue), Attributes=attributes)["QueueUrl"]
        created.queue_urls[_created_arn(sqs, url, queue)] = url
    for queue in queues:
        policy = json_input(queue, "redrivePolicy")
        if policy:
            source = created.queue_urls[arn_of(queue)]
            created.dead_letter_queues[source] = created.queue_urls[policy["deadLetterTargetArn"]]


def _attribute(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return value if isinstance(value, str) else json.dumps(value)


def _created_arn(sqs: Any, url: str, queue: Resource) -> str:
    arn = str(
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
    )
    if arn != arn_of(queue):
        raise LocalGraphError(
            f"{queue['name']}: moto created {arn}, the graph says {arn_of(queue)}"
        )
    return arn


def _roles(graph: LocalGraph, iam: Any) -> None:
    for role in graph.of_type(ROLE):
        iam.create_role(
            RoleName=name_of(role),
            AssumeRolePolicyDocument=role["inputs"].get("assumeRolePolicy") or "{}",
        )


def _topics(graph: LocalGraph, clients: dict[str, Any], created: LocalResources) -> None:
    sns, sqs = clients["sns"], clients["sqs"]
    for topic in graph.of_type(TOPIC):
        arn = sns.create_topic(Name=name_of(topic))["TopicArn"]
        if arn != arn_of(topic):
            raise LocalGraphError(
                f"{topic['name']}: moto created {arn}, the graph says {arn_of(topic)}"
            )
        url = sqs.create_queue(QueueName=f"{name_of(topic)}-local-deliveries")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn)
        created.recorders[arn] = url
    for subscription in graph.of_type(SUBSCRIPTION):
        inputs = subscription["inputs"]
        sns.subscribe(
            TopicArn=inputs["topic"], Protocol=inputs["protocol"], Endpoint=inputs["endpoint"]
        )


def _state_machine(machine: Resource, sfn: Any) -> str:
    definition = json_input(machine, "definition")
    if not isinstance(definition, dict):
        raise LocalGraphError(f"{machine['name']}.definition: missing")
    arn = str(
        sfn.create_state_machine(
            name=name_of(machine),
            definition=json.dumps(compress_waits(definition)),
            roleArn=machine["inputs"]["roleArn"],
            type=machine["inputs"].get("type", "STANDARD"),
        )["stateMachineArn"]
    )
    if arn != arn_of(machine):
        raise LocalGraphError(
            f"{machine['name']}: moto created {arn}, the graph says {arn_of(machine)}"
        )
    return arn


def _rules(graph: LocalGraph, clients: dict[str, Any], created: LocalResources) -> None:
    events, sqs = clients["events"], clients["sqs"]
    for rule in graph.of_type(RULE):
        inputs = rule["inputs"]
        kwargs: dict[str, Any] = {
            "Name": name_of(rule),
            "EventBusName": inputs.get("eventBusName", "default"),
            "State": inputs.get("state", "ENABLED"),
        }
        if "eventPattern" in inputs:
            kwargs["EventPattern"] = inputs["eventPattern"]
        if "scheduleExpression" in inputs:
            kwargs["ScheduleExpression"] = inputs["scheduleExpression"]
        events.put_rule(**kwargs)
    for target in graph.of_type(TARGET):
        inputs = target["inputs"]
        arn = str(inputs["arn"])
        if ":states:" in arn and ":stateMachine:" in arn:
            url = sqs.create_queue(QueueName=f"{inputs['rule']}-local-bridge")["QueueUrl"]
            created.bridges.append(Bridge(inputs["rule"], url, arn))
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
        elif ":sns:" in arn:
            # moto's EventBridge delivers to SQS, not SNS: a bridge queue stands in, and the
            # environment publishes what it receives to the topic (as the rule target would).
            url = sqs.create_queue(QueueName=f"{inputs['rule']}-local-sns-bridge")["QueueUrl"]
            transformer = inputs.get("inputTransformer")
            transform = (
                (dict(transformer.get("inputPaths", {})), str(transformer["inputTemplate"]))
                if transformer
                else None
            )
            created.topic_bridges.append(TopicBridge(inputs["rule"], url, arn, transform))
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            # The bridge applies the transformer (moto's does not quote strings).
            inputs = {k: v for k, v in inputs.items() if k != "inputTransformer"}
        elif ":lambda:" in arn and ":function:" in arn:
            # A scheduled function: the environment runs it when asked (time is compressed).
            rule = next(r for r in graph.of_type(RULE) if name_of(r) == inputs["rule"])
            created.schedules.append(
                Scheduled(inputs["rule"], arn, str(rule["inputs"].get("scheduleExpression")))
            )
            continue
        elif ":sqs:" not in arn:
            raise LocalGraphError(
                f"{target['name']}.arn: the local environment delivers rule targets to SQS "
                f"queues, SNS topics and state machines only, not {arn}"
            )
        events.put_targets(
            Rule=inputs["rule"],
            EventBusName=inputs.get("eventBusName", "default"),
            Targets=[_target(inputs, arn)],
        )


def _target(inputs: dict[str, Any], arn: str) -> dict[str, Any]:
    target: dict[str, Any] = {"Id": inputs.get("targetId") or "target", "Arn": arn}
    if "input" in inputs:
        target["Input"] = inputs["input"]
    if "inputPath" in inputs:
        target["InputPath"] = inputs["inputPath"]
    if transformer := inputs.get("inputTransformer"):
        target["InputTransformer"] = {
            "InputPathsMap": transformer.get("inputPaths", {}),
            "InputTemplate": transformer["inputTemplate"],
        }
    return target


def _stream_mapping(mapping: Resource, created: LocalResources) -> StreamMapping:
    inputs = mapping["inputs"]
    source = str(inputs["eventSourceArn"])
    destination = ((inputs.get("destinationConfig") or {}).get("onFailure") or {}).get(
        "destinationArn"
    )
    if destination and destination not in created.queue_urls:
        raise LocalGraphError(
            f"{mapping['name']}.destinationConfig: {destination} is not a queue of the graph"
        )
    filters = tuple(
        json.loads(item["pattern"])
        for item in (inputs.get("filterCriteria") or {}).get("filters", [])
    )
    return StreamMapping(
        stream_arn=created.streams[source],
        graph_stream_arn=source,
        function_arn=str(inputs["functionName"]),
        batch_size=int(inputs.get("batchSize", 100)),
        max_retries=int(inputs.get("maximumRetryAttempts", -1)),
        filters=filters,
        failure_queue_url=created.queue_urls[destination] if destination else None,
        report_batch_item_failures="ReportBatchItemFailures"
        in inputs.get("functionResponseTypes", []),
    )


def _mapping(mapping: Resource, created: LocalResources) -> QueueMapping:
    inputs = mapping["inputs"]
    source = str(inputs["eventSourceArn"])
    if source not in created.queue_urls:
        raise LocalGraphError(
            f"{mapping['name']}.eventSourceArn: {source} is not a queue of the graph"
        )
    return QueueMapping(
        queue_url=created.queue_urls[source],
        queue_arn=source,
        function_arn=str(inputs["functionName"]),
        batch_size=int(inputs.get("batchSize", 10)),
        report_batch_item_failures="ReportBatchItemFailures"
        in inputs.get("functionResponseTypes", []),
    )
