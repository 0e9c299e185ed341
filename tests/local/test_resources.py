"""The local resources come from the graph: names, ARNs and settings, with the time scale."""

from __future__ import annotations

import json
import os
from typing import Any

import boto3
import pytest
from local_graphs import RULE, resource

from agentry_runtime.contract import Handler
from agentry_stacks.local import LocalEnvironment, LocalEnvironmentError
from agentry_stacks.local.resources import MAX_WAIT_SECONDS, compress_waits


def test_resources_carry_the_graphs_names_and_settings(dev_graph: dict[str, Any]) -> None:
    # GIVEN the dev graph
    with LocalEnvironment(graph=dev_graph) as env:
        # WHEN the environment is built
        sqs, events, ddb = boto3.client("sqs"), boto3.client("events"), boto3.client("dynamodb")
        # THEN the step queue has the graph's name and redrive policy, scaled visibility
        queue = resource(dev_graph, "aws:sqs/queue:Queue", "steps-queue")
        url = sqs.get_queue_url(QueueName=queue["inputs"]["name"])["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert json.loads(attributes["RedrivePolicy"]) == json.loads(
            queue["inputs"]["redrivePolicy"]
        )
        assert attributes["QueueArn"] == queue["outputs"]["arn"]
        assert attributes["VisibilityTimeout"] == "0"
        # AND every pattern rule has the graph's event pattern on the graph's bus
        rules = [r for r in dev_graph["resources"] if r["type"] == RULE]
        assert any("scheduleExpression" in r["inputs"] for r in rules)  # the reconciler's
        for rule in (r for r in rules if "eventPattern" in r["inputs"]):
            described = events.describe_rule(
                Name=rule["inputs"]["name"], EventBusName=rule["inputs"]["eventBusName"]
            )
            assert json.loads(described["EventPattern"]) == json.loads(
                rule["inputs"]["eventPattern"]
            )
        # AND the table has the graph's keys, indexes, stream and TTL
        table = resource(dev_graph, "aws:dynamodb/table:Table", "table-table")
        ttl = ddb.describe_time_to_live(TableName=table["inputs"]["name"])
        assert (
            ttl["TimeToLiveDescription"]["AttributeName"] == table["inputs"]["ttl"]["attributeName"]
        )
        described_table = ddb.describe_table(TableName=table["inputs"]["name"])["Table"]
        assert {i["IndexName"] for i in described_table["GlobalSecondaryIndexes"]} == {
            i["name"] for i in table["inputs"]["globalSecondaryIndexes"]
        }
        assert (
            described_table["StreamSpecification"]["StreamViewType"]
            == table["inputs"]["streamViewType"]
        )
        # AND the functions use the graph's handlers and environment
        assert {f.entry_point for f in env.functions.values()} == {
            Handler.API,
            Handler.WORKER,
            Handler.ANNOUNCER,
            Handler.RECONCILER,
        }
        assert (
            env.api.environment
            == resource(dev_graph, "aws:lambda/function:Function", "api-function")["inputs"][
                "environment"
            ]["variables"]
        )


def test_the_bedrock_endpoint_is_restored_on_exit(
    dev_graph: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a previous endpoint setting
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "http://previous.invalid")
    with LocalEnvironment(graph=dev_graph):
        # WHEN the environment is open THEN the functions reach the local model
        assert os.environ["AWS_ENDPOINT_URL_BEDROCK_RUNTIME"].startswith("http://127.0.0.1:")
    # AND on exit the previous value is back
    assert os.environ["AWS_ENDPOINT_URL_BEDROCK_RUNTIME"] == "http://previous.invalid"


def test_unknown_routes_get_api_gateways_404(dev_graph: dict[str, Any]) -> None:
    # GIVEN the graph's routes
    with LocalEnvironment(graph=dev_graph) as env:
        # WHEN a request matches no route key of the graph
        status, body = env.call("PATCH", "/agents/agent-" + "0" * 32)
        # THEN API Gateway answers, not the function
        assert (status, body) == (404, {"message": "Not Found"})


def test_wait_states_are_capped_and_nothing_else() -> None:
    # GIVEN a definition with a long Wait and a Task
    definition: dict[str, Any] = {
        "StartAt": "W",
        "States": {
            "W": {"Type": "Wait", "Seconds": 300, "Next": "T"},
            "T": {"Type": "Task", "Resource": "x", "TimeoutSeconds": 60, "End": True},
        },
    }
    # WHEN it is compressed to the local time scale
    compressed = compress_waits(definition)
    # THEN only the Wait's seconds changed
    assert compressed["States"]["W"]["Seconds"] == MAX_WAIT_SECONDS
    assert compressed["States"]["T"] == definition["States"]["T"]
    assert definition["States"]["W"]["Seconds"] == 300


def test_unknown_tool_names_are_refused(dev_graph: dict[str, Any]) -> None:
    # WHEN a fault names a tool none of the stack's agents has THEN the option is named
    environment = LocalEnvironment(graph=dev_graph, fail_tools=["nope"])
    with pytest.raises(LocalEnvironmentError, match="fail_tools: unknown tool 'nope'; tools: "):
        environment.open()
    # AND the tools of every agent of the stack are known
    with LocalEnvironment(graph=dev_graph, fail_once_tools=["issue_refund", "book_flight"]):
        pass
