"""Operations in both shipped graphs: the dashboard, the alarms, replacement order and protection.

Acceptance of issue #12 (item 4): the dashboard and alarms are in both graphs; (item 1) named
resources are deleted before their replacement and data-holding tables are protected.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from agentry_platform.lib.operations import error_alarms, stuck_after_seconds
from agentry_runtime.contract import ErrorType, Metric
from agentry_stacks.offline.plan import plan_stack

Graph = dict[str, Any]
_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


@pytest.fixture(scope="module", params=["dev", "prod"])
def graph(request: pytest.FixtureRequest) -> Graph:
    return plan_stack(request.param)


def _of(graph: Graph, type_: str) -> list[dict[str, Any]]:
    return [r for r in graph["resources"] if r["type"] == type_]


def _alarms(graph: Graph) -> dict[str, dict[str, Any]]:
    return {r["inputs"]["name"].split("-", 2)[2]: r["inputs"] for r in _of(graph, _ALARM)}


def _alarm_topic(graph: Graph) -> str:
    [topic] = [r for r in _of(graph, "aws:sns/topic:Topic") if r["name"] == "alarms-topic-topic"]
    return str(topic["outputs"]["arn"])


def test_dashboard_shows_what_an_operator_watches(graph: Graph) -> None:
    [dashboard] = _of(graph, "aws:cloudwatch/dashboard:Dashboard")
    assert dashboard["inputs"]["dashboardName"] == f"agentry-{graph['stack']}-operations"
    widgets = json.loads(dashboard["inputs"]["dashboardBody"])["widgets"]
    titles = [w["properties"]["title"] for w in widgets]
    for wanted in (
        "Steps",
        "Agent errors by type",
        "Model latency (p90)",
        "Model tokens",
        "Model cost (USD)",
        "Tool failures",
        "Step queue: depth and age of the oldest message",
        "Dead-letter queues",
        "Recoveries",
        "Approvals waiting",
        "Event deliveries",
    ):
        assert wanted in titles
    metrics = {row[1] for w in widgets for row in w["properties"]["metrics"]}
    # The runtime's metric names, from its contract, and AWS's own
    assert {m.value for m in Metric} <= metrics
    assert {"ApproximateAgeOfOldestMessage", "FailedInvocations", "ExecutionsFailed"} <= metrics
    errors = next(w for w in widgets if w["properties"]["title"] == "Agent errors by type")
    assert {row[3] for row in errors["properties"]["metrics"]} == {t.value for t in ErrorType}
    # AND each model the stack's agents call has its own latency line
    latency = next(w for w in widgets if w["properties"]["title"] == "Model latency (p90)")
    models = {row[3] for row in latency["properties"]["metrics"]}
    assert "us.anthropic.claude-haiku-4-5-20251001-v1:0" in models


def test_alarms_on_errors_by_type_and_model_access(graph: Graph) -> None:
    alarms = _alarms(graph)
    for alarm in error_alarms():
        inputs = alarms[alarm.suffix]
        assert inputs["namespace"] == "Agentry"
        assert inputs["metricName"] == Metric.AGENT_ERRORS
        assert inputs["dimensions"] == {"ErrorType": alarm.error_type.value, "service": "agentry"}
    access = alarms["model-access-errors"]
    assert access["dimensions"]["ErrorType"] == ErrorType.MODEL_NOT_AVAILABLE
    assert access["threshold"] == 0  # one refused model call pages


def test_alarms_on_stuck_agents_failed_deliveries_and_failed_records(graph: Graph) -> None:
    alarms = _alarms(graph)
    stuck = alarms["stuck-agents"]
    assert stuck["metricName"] == "ApproximateAgeOfOldestMessage"
    assert stuck["dimensions"] == {"QueueName": f"agentry-{graph['stack']}-steps"}
    worker = next(
        r for r in _of(graph, "aws:lambda/function:Function") if r["name"] == "worker-function"
    )
    assert stuck["threshold"] == stuck_after_seconds(worker["inputs"]["timeout"])
    rules = {r["inputs"]["name"] for r in _of(graph, "aws:cloudwatch/eventRule:EventRule")}
    failed = [a for key, a in alarms.items() if key.startswith("failed-invocations")]
    assert {a["dimensions"]["RuleName"] for a in failed} == rules
    assert all(a["metricName"] == "FailedInvocations" for a in failed)
    # The worker's alarm adds failed records (partial batch failures) to its errors
    worker_alarm = alarms["worker-failures"]
    queries = {q["id"]: q for q in worker_alarm["metricQueries"]}
    assert queries["records"]["metric"]["metricName"] == Metric.FAILED_RECORDS
    assert queries["errors"]["metric"]["metricName"] == "Errors"
    assert "records" in queries["failures"]["expression"]
    assert "errors" in queries["failures"]["expression"]
    assert "worker-errors" not in alarms  # superseded: function errors alone miss failed records


def test_every_alarm_notifies_the_encrypted_alarm_topic(graph: Graph) -> None:
    topic = _alarm_topic(graph)
    for name, alarm in _alarms(graph).items():
        assert alarm["alarmActions"] == [topic], name
    [topic_resource] = [
        r for r in _of(graph, "aws:sns/topic:Topic") if r["outputs"]["arn"] == topic
    ]
    assert topic_resource["inputs"]["kmsMasterKeyId"].startswith("arn:aws:kms:")


# --- item 1: replacement order and protection --------------------------------------------------

#: Resources without a physical name of their own: a replacement can coexist with them.
_COEXIST = {
    "aws:kms/key:Key",
    "aws:sns/topicSubscription:TopicSubscription",
    "aws:apigatewayv2/api:Api",  # HTTP API names need not be unique
    "aws:apigatewayv2/integration:Integration",
    "aws:lambda/permission:Permission",
}


def test_named_resources_are_deleted_before_replacement(graph: Graph) -> None:
    for resource in graph["resources"]:
        if not resource["custom"] or resource["type"] == "aws:dynamodb/table:Table":
            continue  # tables hold data: protected instead (below)
        expected = resource["type"] not in _COEXIST
        assert resource["options"]["deleteBeforeReplace"] is expected, resource["name"]
        assert resource["options"]["protect"] is False, resource["name"]


def test_tables_that_hold_data_are_protected(graph: Graph) -> None:
    tables = {r["name"]: r["options"] for r in _of(graph, "aws:dynamodb/table:Table")}
    assert tables["table-table"] == {"protect": True, "deleteBeforeReplace": False}
    if graph["stack"] == "dev":  # the support agent's orders table
        assert tables["support-orders"]["protect"] is True
