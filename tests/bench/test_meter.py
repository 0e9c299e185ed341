"""The meter bills DynamoDB as the developer guide says and sees every client while armed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from agentry_stacks.bench.meter import AwsMeter, read_units, write_units

REGION = "us-east-1"


@pytest.fixture
def meter(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[AwsMeter, Any]]:
    """An installed meter, and a client of a moto table keyed by ``pk`` and ``sk``."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws(), AwsMeter() as installed:
        client = boto3.client("dynamodb", region_name=REGION)
        client.create_table(
            TableName="t",
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        installed.reader = boto3.client("dynamodb", region_name=REGION)
        yield installed, client


def _item(sk: str, size: int) -> dict[str, Any]:
    # pk "a" (2 + 1 bytes), sk (2 + len), v (1 + size): sized as DynamoDB counts them
    return {"pk": {"S": "a"}, "sk": {"S": sk}, "v": {"S": "x" * size}}


def test_units_round_up_per_kb_for_writes_and_per_4_kb_for_reads() -> None:
    assert [write_units(s) for s in (0, 1, 1024, 1025, 2500)] == [1, 1, 1, 2, 3]
    assert read_units(100, consistent=True) == 1
    assert read_units(100, consistent=False) == 0.5
    assert read_units(4097, consistent=False) == 1


def test_writes_bill_the_larger_item_and_double_in_transactions(
    meter: tuple[AwsMeter, Any],
) -> None:
    installed, client = meter
    # GIVEN a 2.5 KB item WHEN it is put, then replaced by a small one THEN both bill 3 units
    with installed.window() as put:
        client.put_item(TableName="t", Item=_item("big", 2500))
    with installed.window() as replace:
        client.put_item(TableName="t", Item=_item("big", 10))
    assert (put["write_units"], put["bytes_written"]) == (3, 2509)
    assert (replace["write_units"], replace["bytes_written"]) == (3, 19)
    # AND a put in a transaction bills twice its units
    with installed.window() as transaction:
        client.transact_write_items(
            TransactItems=[{"Put": {"TableName": "t", "Item": _item("s", 1)}}]
        )
    assert transaction["write_units"] == 2
    # AND an update bills the whole item after it, not the attribute changed
    client.put_item(TableName="t", Item=_item("u", 1500))
    with installed.window() as update:
        client.update_item(
            TableName="t",
            Key={"pk": {"S": "a"}, "sk": {"S": "u"}},
            UpdateExpression="SET w = :w",
            ExpressionAttributeValues={":w": {"S": "y"}},
        )
    assert update["write_units"] == 2
    # AND a write whose condition fails still bills the item it was checked against
    with (
        installed.window() as refused,
        pytest.raises(client.exceptions.ConditionalCheckFailedException),
    ):
        client.put_item(
            TableName="t", Item=_item("u", 1), ConditionExpression="attribute_not_exists(sk)"
        )
    assert refused["write_units"] == 2
    assert refused["op.dynamodb.PutItem"] == 1


def test_reads_bill_per_item_or_per_query_and_half_when_eventual(
    meter: tuple[AwsMeter, Any],
) -> None:
    installed, client = meter
    for index in range(3):
        client.put_item(TableName="t", Item=_item(f"m{index}", 3000))
    key = {"pk": {"S": "a"}, "sk": {"S": "m0"}}
    with installed.window() as strong:
        client.get_item(TableName="t", Key=key, ConsistentRead=True)
    with installed.window() as eventual:
        client.get_item(TableName="t", Key=key)
    with installed.window() as missing:
        client.get_item(TableName="t", Key={"pk": {"S": "a"}, "sk": {"S": "none"}})
    # A query bills the sum of its items (3 x 3,008 bytes: 3 blocks of 4 KB), a projection
    # does not make it cheaper
    with installed.window() as query:
        client.query(
            TableName="t",
            KeyConditionExpression="pk = :a",
            ExpressionAttributeValues={":a": {"S": "a"}},
            ProjectionExpression="sk",
        )
    assert (strong["read_units"], eventual["read_units"], missing["read_units"]) == (1, 0.5, 0.5)
    assert query["read_units"] == 1.5
    assert query["bytes_read"] == 3 * 3008


def test_only_armed_calls_count_and_the_meters_own_reads_never_do(
    meter: tuple[AwsMeter, Any],
) -> None:
    installed, client = meter
    # GIVEN a call outside any window and one inside a disarmed block inside a window
    client.put_item(TableName="t", Item=_item("x", 1))
    with installed.window() as window:
        with installed.disarmed():
            client.get_item(TableName="t", Key={"pk": {"S": "a"}, "sk": {"S": "x"}})
        # a client made here, anywhere, is seen too (the meter wraps botocore, not clients)
        boto3.client("dynamodb", region_name=REGION).put_item(TableName="t", Item=_item("y", 1))
    # THEN only the put inside the window counts, once, though the meter sized it with reads
    assert window["calls"] == 1
    assert window["calls.dynamodb"] == 1
    assert window["op.dynamodb.PutItem"] == 1
    assert window["read_units"] == 0
