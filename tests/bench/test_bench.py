"""``agentry bench``: the JSON it prints, the two ratios it must show, and how it meters writes.

Timings vary from machine to machine; only ratios and counts are asserted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from typer.testing import CliRunner

from agentry_stacks.bench.meter import AwsMeter, cost
from agentry_stacks.cli import app

REGION = "us-east-1"


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    """One quick bench run, through the CLI, as JSON."""
    result = CliRunner().invoke(app, ["bench", "--json", "--quick"])
    assert result.exit_code == 0, result.output
    # Powertools may print an EMF line before the report: the report is the last JSON object.
    return dict(json.loads(result.output[result.output.index('{\n  "schema_version"') :]))


def test_the_report_has_every_figure(report: dict[str, Any]) -> None:
    # GIVEN a quick bench run WHEN its JSON is read THEN every figure group is there
    assert report["schema_version"] == 1
    assert report["history_lengths"] == [10, 100, 300]
    lengths = {"10", "100", "300"}
    store = report["store"]
    for strategy in ("ours", "baseline"):
        assert set(store[strategy]) == lengths
        for figures in store[strategy].values():
            assert set(figures) == {"bytes_written", "write_units", "aws_calls", "steps_measured"}
            assert figures["bytes_written"] > 0
            assert figures["aws_calls"] > 0
    assert set(report["prompt"]["by_length"]) == lengths
    assert set(report["cold_start"]) == {"api_seconds", "worker_seconds", "runs"}
    assert report["bundle"]["zipped_bytes"] is None or report["bundle"]["zipped_bytes"] > 0
    assert report["throughput"]["steps"] > 0
    assert report["throughput"]["steps_per_second"] > 0


def test_bytes_per_step_do_not_grow_with_the_history(report: dict[str, Any]) -> None:
    # GIVEN the bytes written per step at 10 and 300 messages
    ours = report["store"]["ours"]
    growth = ours["300"]["bytes_written"] / ours["10"]["bytes_written"]
    # THEN the step at 300 writes at most 1.2x the step at 10, and the report says so
    assert growth <= 1.2, ours
    assert report["store"]["ours_growth"] == pytest.approx(growth, rel=0.01)


def test_the_baseline_writes_at_least_ten_times_more_at_100(report: dict[str, Any]) -> None:
    # GIVEN both strategies at 100 messages THEN rewriting the whole state costs 10x or more
    store = report["store"]
    ratio = store["baseline"]["100"]["bytes_written"] / store["ours"]["100"]["bytes_written"]
    assert ratio >= 10, store
    assert store["baseline_over_ours_bytes"]["100"] == pytest.approx(ratio, rel=0.01)


def test_compaction_bounds_the_prompt_of_a_long_history(report: dict[str, Any]) -> None:
    # GIVEN the prompt at 300 messages THEN compaction keeps it within the budget; none does not
    prompt = report["prompt"]
    at_300 = prompt["by_length"]["300"]
    assert at_300["without_compaction"] > prompt["token_budget"]
    assert at_300["with_compaction"] <= prompt["token_budget"]


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        client.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def test_the_meter_counts_one_unit_per_kb_and_double_in_transactions(dynamodb: Any) -> None:
    # GIVEN a metered client
    meter = AwsMeter(boto3.client("dynamodb", region_name=REGION))
    client = meter.attach(boto3.client("dynamodb", region_name=REGION))
    big = {"pk": {"S": "a"}, "v": {"S": "x" * 2500}}  # 2 + 1 + 1 + 2500 bytes: 3 KB started
    small = {"pk": {"S": "b"}}
    # WHEN it puts a 2.5 KB item, then a small one in a transaction, then updates the big one
    with meter.window() as put:
        client.put_item(TableName="t", Item=big)
    with meter.window() as transaction:
        client.transact_write_items(TransactItems=[{"Put": {"TableName": "t", "Item": small}}])
    with meter.window() as update:
        client.update_item(
            TableName="t",
            Key={"pk": {"S": "a"}},
            UpdateExpression="SET w = :w",
            ExpressionAttributeValues={":w": {"S": "y"}},
        )
    # THEN sizes, units and calls follow DynamoDB's rules (an update bills the whole item)
    assert cost(put) == (2504, 3, 1)
    assert cost(transaction) == (3, 2, 1)
    assert cost(update) == (2506, 3, 1)
