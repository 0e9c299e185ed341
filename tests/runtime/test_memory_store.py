"""The in-memory DynamoDB fake answers raw requests as moto does: same results, same errors.

``test_store.py`` runs the store on both backends; this file goes below the store, to the
requests themselves, including the ones the store never makes on purpose (a reserved word, an
unused placeholder, a second write to one item in a transaction): each scenario runs on a
fresh moto table and a fresh fake table, and what each call returned or raised is compared.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError
from support.memory_store import MemoryDynamoDB, UnsupportedExpression, memory_table

from agentry_runtime.contract import table_schema

TABLE = "agentry-diff-agents"
Call = tuple[str, dict[str, Any]]


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _item(pk: str, sk: str, **attributes: Any) -> dict[str, Any]:
    return {**_key(pk, sk), **attributes}


def _put(item: dict[str, Any], **params: Any) -> Call:
    return ("put_item", {"TableName": TABLE, "Item": item, **params})


def _update(key: dict[str, Any], expression: str, **params: Any) -> Call:
    return (
        "update_item",
        {"TableName": TABLE, "Key": key, "UpdateExpression": expression, **params},
    )


def _query(condition: str, values: dict[str, Any], **params: Any) -> Call:
    return (
        "query",
        {
            "TableName": TABLE,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            **params,
        },
    )


_SEED = [
    _put(_item("A", "MSG#1", step={"N": "1"}, body={"S": "one"})),
    _put(_item("A", "MSG#2", step={"N": "2"}, body={"S": "two"})),
    _put(_item("A", "TOOL#1", status={"S": "CLAIMED"})),
    _put(_item("B", "META", owner={"S": "alice"}, createdAt={"S": "2025-01-02"})),
    _put(_item("C", "META", owner={"S": "alice"}, createdAt={"S": "2025-01-01"})),
    _put(_item("D", "META", owner={"S": "alice"}, createdAt={"S": "2025-01-03"})),
]
_NAMES = {"#s": "step"}

SCENARIOS: dict[str, list[Call]] = {
    "a failed condition returns the old item when asked": [
        _put(
            _item("A", "MSG#1", step={"N": "1"}),
            ConditionExpression="attribute_not_exists(#sk) OR #s < :s",
            ExpressionAttributeNames={"#sk": "sk", **_NAMES},
            ExpressionAttributeValues={":s": {"N": "1"}},
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        ),
        _put(
            _item("A", "MSG#1"),
            ConditionExpression="attribute_not_exists(sk)",
        ),
    ],
    "a newer step overwrites, an update creates and counts": [
        _put(
            _item("A", "MSG#2", step={"N": "3"}),
            ConditionExpression="attribute_not_exists(#sk) OR #s < :s",
            ExpressionAttributeNames={"#sk": "sk", **_NAMES},
            ExpressionAttributeValues={":s": {"N": "3"}},
        ),
        _update(
            _key("A", "META"),
            "SET #n = if_not_exists(#n, :zero) + :one, #u = :now",
            ExpressionAttributeNames={"#n": "nonce", "#u": "updatedAt"},
            ExpressionAttributeValues={":zero": {"N": "0"}, ":one": {"N": "1"}, ":now": {"S": "t"}},
            ReturnValues="ALL_NEW",
        ),
        _update(
            _key("A", "META"),
            "SET #n = if_not_exists(#n, :zero) + :one ADD #r :one REMOVE #u",
            ExpressionAttributeNames={"#n": "nonce", "#u": "updatedAt", "#r": "attempts"},
            ExpressionAttributeValues={":zero": {"N": "0"}, ":one": {"N": "1"}},
            ReturnValues="ALL_NEW",
        ),
        ("get_item", {"TableName": TABLE, "Key": _key("A", "MSG#2")}),
    ],
    "copies an attribute, refuses a missing one and a key": [
        _update(
            _key("A", "TOOL#1"),
            "SET #a = #s",
            ExpressionAttributeNames={"#a": "copy", "#s": "status"},
            ReturnValues="ALL_NEW",
        ),
        _update(
            _key("A", "TOOL#1"), "SET #a = #m", ExpressionAttributeNames={"#a": "x", "#m": "m"}
        ),
        _update(
            _key("A", "TOOL#1"),
            "SET #k = :v",
            ExpressionAttributeNames={"#k": "sk"},
            ExpressionAttributeValues={":v": {"S": "x"}},
        ),
    ],
    "placeholders must be defined, used, and not reserved words": [
        _update(_key("A", "X"), "SET a = :v", ExpressionAttributeValues={}),
        _update(
            _key("A", "X"),
            "SET a = :v",
            ExpressionAttributeNames={"#unused": "b"},
            ExpressionAttributeValues={":v": {"S": "x"}},
        ),
        _update(
            _key("A", "X"),
            "SET a = :v",
            ExpressionAttributeValues={":v": {"S": "x"}, ":unused": {"S": "y"}},
        ),
        _update(_key("A", "X"), "SET status = :v", ExpressionAttributeValues={":v": {"S": "x"}}),
        (
            "get_item",
            {"TableName": TABLE, "Key": _key("A", "X"), "ExpressionAttributeNames": {"#a": "a"}},
        ),
    ],
    "a transaction writes all or nothing, with its reasons": [
        (
            "transact_write_items",
            {
                "TransactItems": [
                    {"Put": {"TableName": TABLE, "Item": _item("A", "MSG#3")}},
                    {
                        "Update": {
                            "TableName": TABLE,
                            "Key": _key("A", "MSG#1"),
                            "UpdateExpression": "SET body = :b",
                            "ConditionExpression": "#s = :s",
                            "ExpressionAttributeNames": _NAMES,
                            "ExpressionAttributeValues": {":b": {"S": "x"}, ":s": {"N": "9"}},
                            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                        }
                    },
                ]
            },
        ),
        ("get_item", {"TableName": TABLE, "Key": _key("A", "MSG#3")}),
        (
            "transact_write_items",
            {
                "TransactItems": [
                    {"Put": {"TableName": TABLE, "Item": _item("A", "MSG#3")}},
                    {
                        "Update": {
                            "TableName": TABLE,
                            "Key": _key("A", "MSG#1"),
                            "UpdateExpression": "SET body = :b",
                            "ConditionExpression": "#s = :s",
                            "ExpressionAttributeNames": _NAMES,
                            "ExpressionAttributeValues": {":b": {"S": "x"}, ":s": {"N": "1"}},
                        }
                    },
                ]
            },
        ),
        ("get_item", {"TableName": TABLE, "Key": _key("A", "MSG#1")}),
        (
            "transact_write_items",
            {
                "TransactItems": [
                    {"Put": {"TableName": TABLE, "Item": _item("A", "MSG#4")}},
                    {"Put": {"TableName": TABLE, "Item": _item("A", "MSG#4")}},
                ]
            },
        ),
    ],
    "batches refuse duplicates and read what exists": [
        (
            "batch_get_item",
            {"RequestItems": {TABLE: {"Keys": [_key("A", "MSG#1"), _key("A", "NONE")]}}},
        ),
        (
            "batch_get_item",
            {"RequestItems": {TABLE: {"Keys": [_key("A", "MSG#1"), _key("A", "MSG#1")]}}},
        ),
        (
            "batch_write_item",
            {
                "RequestItems": {
                    TABLE: [
                        {"DeleteRequest": {"Key": _key("A", "MSG#1")}},
                        {"DeleteRequest": {"Key": _key("A", "MSG#1")}},
                    ]
                }
            },
        ),
        (
            "batch_write_item",
            {
                "RequestItems": {
                    TABLE: [
                        {"DeleteRequest": {"Key": _key("A", "MSG#1")}},
                        {"PutRequest": {"Item": _item("A", "MSG#9")}},
                    ]
                }
            },
        ),
        _query("pk = :pk", {":pk": {"S": "A"}}, ProjectionExpression="sk"),
    ],
    "queries follow key order, ranges, prefixes and directions": [
        _query(
            "#pk = :pk AND #sk BETWEEN :a AND :b",
            {":pk": {"S": "A"}, ":a": {"S": "MSG#1"}, ":b": {"S": "MSG#~"}},
            ExpressionAttributeNames={"#pk": "pk", "#sk": "sk"},
            ScanIndexForward=False,
        ),
        _query(
            "pk = :pk AND begins_with(sk, :p)",
            {":pk": {"S": "A"}, ":p": {"S": "TOOL#"}},
        ),
        _query("pk = :pk", {":pk": {"S": "A"}}, Select="COUNT"),
        _query(
            "pk = :pk",
            {":pk": {"S": "A"}},
            ExclusiveStartKey=_key("A", "MSG#1"),
        ),
    ],
    "index queries page by their keys, never consistently": [
        _query(
            "#o = :o",
            {":o": {"S": "alice"}},
            IndexName="owner",
            ExpressionAttributeNames={"#o": "owner"},
            ScanIndexForward=False,
        ),
        _query(
            "#o = :o",
            {":o": {"S": "alice"}},
            IndexName="owner",
            ExpressionAttributeNames={"#o": "owner"},
            Limit=1,
            ExclusiveStartKey={
                **_key("C", "META"),
                "owner": {"S": "alice"},
                "createdAt": {"S": "2025-01-01"},
            },
        ),
        _query(
            "#o = :o",
            {":o": {"S": "alice"}},
            IndexName="owner",
            ExpressionAttributeNames={"#o": "owner"},
            ConsistentRead=True,
        ),
    ],
    "items are checked: keys, index keys, sizes": [
        _put({"pk": {"S": "A"}}),
        _put(_item("A", "")),
        _put(_item("A", "E", owner={"S": ""}, createdAt={"S": "t"})),
        _put(_item("A", "BIG", blob={"S": "x" * 410_000})),
        ("get_item", {"TableName": TABLE, "Key": {"pk": {"S": "A"}}}),
        ("get_item", {"TableName": "no-such-table", "Key": _key("A", "B")}),
    ],
}


#: What moto adds to answers although no request asks for it (AWS sends it only when asked).
_UNASKED = ("ResponseMetadata", "ConsumedCapacity", "ItemCollectionMetrics")


def _outcome(client: Any, method: str, params: dict[str, Any]) -> Any:
    """What a call returned (without metadata) or raised: its class, code and modeled fields.

    Error messages are free text, worded differently by moto and AWS: they are not compared.
    """
    try:
        response = getattr(client, method)(**params)
    except ClientError as exc:
        fields = {k: v for k, v in exc.response.items() if k not in ("ResponseMetadata", "Message")}
        fields["Error"] = {"Code": exc.response["Error"]["Code"]}
        fields.pop("message", None)
        return type(exc).__name__, fields
    answer = {k: v for k, v in response.items() if k not in _UNASKED}
    if method == "update_item" and "Attributes" in answer:
        answer["Attributes"] = dict(sorted(answer["Attributes"].items()))
    return answer


def _run(client: Any, scenario: list[Call]) -> list[Any]:
    for method, params in _SEED:
        getattr(client, method)(**params)
    return [_outcome(client, method, params) for method, params in scenario]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_the_fake_answers_as_moto_does(name: str, dynamodb_client: Any) -> None:
    # GIVEN the same seeded table on moto and on the fake
    dynamodb_client.create_table(**table_schema(TABLE))
    fake = memory_table(TABLE)
    # WHEN the scenario's requests run on each
    on_moto = _run(dynamodb_client, SCENARIOS[name])
    on_fake = _run(fake, SCENARIOS[name])
    # THEN each request returned, or failed with, the same thing
    for index, (expected, found) in enumerate(zip(on_moto, on_fake, strict=True)):
        assert found == expected, (name, index, SCENARIOS[name][index])


@pytest.mark.parametrize(
    "call",
    [
        _query("pk = :pk", {":pk": {"S": "A"}}, FilterExpression="x = :pk"),
        _update(_key("A", "X"), "SET a = a - :v", ExpressionAttributeValues={":v": {"N": "1"}}),
        _update(_key("A", "X"), "SET a.b = :v", ExpressionAttributeValues={":v": {"N": "1"}}),
        _update(_key("A", "X"), "DELETE s :v", ExpressionAttributeValues={":v": {"SS": ["a"]}}),
        ("scan", {"TableName": TABLE}),
    ],
    ids=["filter", "minus", "nested path", "delete clause", "scan"],
)
def test_what_the_fake_does_not_model_fails_loudly(call: Call) -> None:
    # GIVEN the fake WHEN a request uses what it does not model THEN it refuses, plainly
    method, params = call
    with pytest.raises(
        UnsupportedExpression, match=r"MemoryDynamoDB|expected|cannot read|not model|clause"
    ):
        getattr(memory_table(TABLE), method)(**params)


def test_parameters_botocore_refuses_are_refused_by_the_fake_too(dynamodb_client: Any) -> None:
    # GIVEN a fake client WHEN botocore's own checks see bad parameters THEN they fail the same
    fake: Callable[..., Any] = MemoryDynamoDB().get_item
    with pytest.raises(Exception, match="Parameter validation failed") as on_fake:
        fake(TableName=TABLE, Key={"pk": "not an attribute value"})
    with pytest.raises(Exception, match="Parameter validation failed") as on_moto:
        dynamodb_client.get_item(TableName=TABLE, Key={"pk": "not an attribute value"})
    assert type(on_fake.value) is type(on_moto.value)


# --- where moto is laxer than DynamoDB, the fake follows DynamoDB --------------------------------


def _client_error(call: Call) -> ClientError:
    method, params = call
    fake = memory_table(TABLE)
    for seed_method, seed_params in _SEED:
        getattr(fake, seed_method)(**seed_params)
    with pytest.raises(ClientError) as raised:
        getattr(fake, method)(**params)
    return raised.value


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            _update(_key("A", "X"), "SET #a = :v", ExpressionAttributeValues={":v": {"S": "x"}}),
            "attribute name used in the document path is not defined; attribute name: #a",
        ),
        (
            _put(_item("A", "E", owner={"N": "1"}, createdAt={"S": "t"})),
            "Type mismatch for Index Key owner Expected: S Actual: N IndexName: owner",
        ),
    ],
    ids=["undefined name", "index key of the wrong type"],
)
def test_what_dynamodb_refuses_and_moto_lets_through_is_refused(call: Call, message: str) -> None:
    # GIVEN the fake WHEN a request DynamoDB refuses arrives (moto raises KeyError for the
    # first, and stores the second) THEN it is a ValidationException, worded as DynamoDB does
    error = _client_error(call)
    assert error.response["Error"]["Code"] == "ValidationException"
    assert message in error.response["Error"]["Message"]


def test_a_page_that_stops_at_its_limit_always_says_where() -> None:
    # GIVEN two messages WHEN a query's Limit ends exactly at the last one
    fake = memory_table(TABLE)
    for method, params in _SEED:
        getattr(fake, method)(**params)
    method, params = _query(
        "pk = :pk AND begins_with(sk, :p)", {":pk": {"S": "A"}, ":p": {"S": "MSG#"}}, Limit=2
    )
    page = fake.query(**params)
    # THEN the page still carries a LastEvaluatedKey (DynamoDB does not look ahead; moto does),
    # and the page after it is empty and final
    assert [item["sk"]["S"] for item in page["Items"]] == ["MSG#1", "MSG#2"]
    after = fake.query(**params, ExclusiveStartKey=page["LastEvaluatedKey"])
    assert (after["Items"], "LastEvaluatedKey" in after) == ([], False)
