"""Policy documents and the IAM database: parsing, proxies, wildcard expansion."""

from __future__ import annotations

import json
from types import MappingProxyType
from typing import Any

import pytest
from policy_graphs import PACK_CONFIG, bedrock_statements, function, statement
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from agentry_policies import ALL_POLICIES, iam_db
from agentry_policies._props import UNKNOWN
from agentry_policies.documents import (
    Decision,
    PolicyDocumentError,
    Request,
    UndecidableError,
    evaluate,
    is_public,
    parse_document,
)


def _frozen(value: Any) -> Any:
    """Deep read-only proxies, the way the engine hands props to a rule (numbers as floats)."""
    if isinstance(value, dict):
        return MappingProxyType({k: _frozen(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _validate(policy_name: str, type_: str, props: dict[str, Any]) -> list[str]:
    policy = next(p for p in ALL_POLICIES if p.name == policy_name)
    assert isinstance(policy, ResourceValidationPolicy)
    found: list[str] = []
    options = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])
    config = PACK_CONFIG.get(policy_name)
    args = ResourceValidationArgs(type_, _frozen(props), "urn:x", "subject", options, None, config)

    def report(message: str, urn: str | None = None) -> None:
        found.append(message)

    policy.validate(args, report)
    return found


def test_statement_fields_are_normalised_to_tuples() -> None:
    document = parse_document(
        json.dumps({"Statement": {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}}),
        "policy",
    )
    (only,) = document.statements
    assert only.actions == ("s3:GetObject",)
    assert only.resources == ("*",)


def test_a_proxied_document_parses_like_a_json_string() -> None:
    raw = {"Statement": [statement(["s3:GetObject"], ["arn:aws:s3:::b/*"])]}
    assert parse_document(_frozen(raw), "p") == parse_document(json.dumps(raw), "p")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("{nope", "not valid JSON"),
        ("[]", "expected a JSON object"),
        ('{"Statement": [{"Effect": "Maybe"}]}', "Statement[0].Effect"),
        ('{"Statement": [{"Effect": "Allow", "Action": 3}]}', "Statement[0].Action"),
    ],
)
def test_invalid_documents_name_the_input_and_reason(raw: str, reason: str) -> None:
    with pytest.raises(PolicyDocumentError, match=r"inlinePolicies\[0\]") as info:
        parse_document(raw, "inlinePolicies[0].policy")
    assert reason in str(info.value)


def test_iam_database_expands_wildcards_and_knows_resource_level_support() -> None:
    invoke = iam_db.model_invocation_actions()
    assert {"bedrock:invokemodel", "bedrock:invokemodelwithresponsestream"} <= invoke
    for pattern in ("bedrock:*", "bedrock:Invoke*", "*", "bedrock:*Model*"):
        assert invoke <= iam_db.expand(pattern), pattern
    assert iam_db.is_service_wide("S3:*")
    assert not iam_db.is_service_wide("s3:Get*")
    assert not iam_db.supports_resource_level("xray:PutTraceSegments")
    assert iam_db.supports_resource_level("dynamodb:GetItem")


def test_rules_read_mapping_proxy_props_with_float_numbers() -> None:
    # GIVEN props as read-only proxies with float numbers, as in the engine
    policy = json.dumps({"Statement": [*bedrock_statements(), statement("bedrock:*", "*")]})
    # WHEN the Bedrock and Lambda rules validate them THEN they work and still find problems
    assert _validate("bedrock-invoke-scoped", "aws:iam/rolePolicy:RolePolicy", {"policy": policy})
    assert _validate("lambda-timeout-bounded", function()["type"], function(timeout=901)["inputs"])
    assert not _validate("lambda-timeout-bounded", function()["type"], function()["inputs"])
    assert not _validate("bedrock-model-allowlist", function()["type"], function()["inputs"])


# --- the shared parser and evaluator ----------------------------------------------------------


_BUS = "arn:aws:events:us-east-1:123456789012:event-bus/b"
_ROLE = "arn:aws:iam::123456789012:role/platform"
_OUTSIDER = "arn:aws:iam::123456789012:role/outsider"
_RULE = "arn:aws:events:r:1:rule/x"


def _doc(*statements: dict[str, Any]) -> Any:
    return parse_document({"Statement": list(statements)}, "policy", "resource")


def _deny(condition: dict[str, Any], **extra: Any) -> dict[str, Any]:
    body = {"Effect": "Deny", "Principal": "*", "Action": "events:PutEvents", "Resource": _BUS}
    return {**body, "Condition": condition, **extra}


@pytest.mark.parametrize(
    ("principal", "expected"),
    [
        ("*", ("*",)),
        ({"AWS": "*"}, ("*",)),
        ({"AWS": [_ROLE], "Service": "events.amazonaws.com"}, (_ROLE, "events.amazonaws.com")),
    ],
)
def test_principal_shapes_are_read_alike(principal: Any, expected: tuple[str, ...]) -> None:
    (only,) = _doc({"Effect": "Allow", "Principal": principal, "Action": "x:Y"}).statements
    assert only.principal_values == expected
    assert only.everyone == ("*" in expected)


def test_not_principal_counts_as_everyone_and_principal_with_it_is_invalid() -> None:
    (only,) = _doc({"Effect": "Allow", "NotPrincipal": {"AWS": _ROLE}, "Action": "x:Y"}).statements
    assert only.everyone
    with pytest.raises(PolicyDocumentError, match="exclusive"):
        _doc({"Effect": "Allow", "Principal": "*", "NotPrincipal": "*", "Action": "x:Y"})


def test_explicit_deny_wins_over_allow() -> None:
    allow = {"Effect": "Allow", "Principal": "*", "Action": "events:*", "Resource": "*"}
    deny = _deny({"StringLike": {"events:source": "agentry.*"}})
    request = Request(_ROLE, "events:PutEvents", _BUS, {"events:source": "agentry.runtime"})
    assert evaluate([_doc(allow, deny)], request) is Decision.EXPLICIT_DENY
    other = Request(_ROLE, "events:PutEvents", _BUS, {"events:source": "someone.else"})
    assert evaluate([_doc(allow, deny)], other) is Decision.ALLOW
    assert evaluate([_doc(deny)], other) is Decision.IMPLICIT_DENY


@pytest.mark.parametrize(
    ("condition", "context", "denied"),
    [
        ({"StringEquals": {"k:a": "x"}}, {"k:a": "x"}, True),
        ({"StringEquals": {"k:a": "x"}}, {}, False),  # absent key: positive operator is false
        ({"StringNotEquals": {"k:a": "x"}}, {}, True),  # ... a negated one is true
        ({"StringNotLike": {"k:a": "a*"}}, {"k:a": "abc"}, False),
        ({"ArnEquals": {"aws:PrincipalArn": _ROLE}}, {}, True),  # filled from the principal
        ({"ArnNotEquals": {"aws:PrincipalArn": [_ROLE]}}, {}, False),
        ({"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/plat*"}}, {}, False),
        ({"ArnLike": {"aws:SourceArn": "arn:aws:events:*:rule/*"}}, {"aws:SourceArn": _RULE}, True),
        ({"Bool": {"aws:SecureTransport": "false"}}, {"aws:SecureTransport": False}, True),
        ({"Bool": {"aws:SecureTransport": "false"}}, {"aws:SecureTransport": "true"}, False),
        ({"BoolIfExists": {"aws:SecureTransport": "false"}}, {}, True),
        ({"StringEqualsIfExists": {"k:a": "x"}}, {"k:a": "y"}, False),
        ({"ForAnyValue:StringLike": {"k:tags": "a*"}}, {"k:tags": ["b", "ab"]}, True),
        ({"ForAnyValue:StringLike": {"k:tags": "a*"}}, {}, False),
        ({"ForAllValues:StringEquals": {"k:tags": ["a", "b"]}}, {"k:tags": ["a", "c"]}, False),
        ({"ForAllValues:StringEquals": {"k:tags": ["a", "b"]}}, {}, True),
        ({"Null": {"k:a": "true"}}, {}, True),
        ({"StringEqualsIgnoreCase": {"k:a": "ABC"}}, {"k:a": "abc"}, True),
    ],
)  # fmt: skip
def test_condition_operators(
    condition: dict[str, Any], context: dict[str, Any], denied: bool
) -> None:
    request = Request(_ROLE, "events:PutEvents", _BUS, context)
    decision = evaluate([_doc(_deny(condition))], request)
    assert (decision is Decision.EXPLICIT_DENY) is denied


def test_principals_accounts_services_and_not_action() -> None:
    root = {
        "Effect": "Allow",
        "Principal": {"AWS": "123456789012"},
        "Action": "sqs:*",
        "Resource": "*",
    }
    assert evaluate([_doc(root)], Request(_OUTSIDER, "SQS:SendMessage", "q")) is Decision.ALLOW
    foreign = Request("arn:aws:iam::999999999999:role/x", "sqs:SendMessage", "q")
    assert evaluate([_doc(root)], foreign) is Decision.IMPLICIT_DENY
    service = {
        "Effect": "Allow",
        "Principal": {"Service": "events.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Resource": "q",
    }
    assert (
        evaluate([_doc(service)], Request("events.amazonaws.com", "sqs:SendMessage", "q"))
        is Decision.ALLOW
    )
    assert (
        evaluate([_doc(service)], Request(_ROLE, "sqs:SendMessage", "q")) is Decision.IMPLICIT_DENY
    )
    not_action = {
        "Effect": "Deny",
        "Principal": "*",
        "NotAction": "sqs:Get*",
        "NotResource": "other",
    }
    assert (
        evaluate([_doc(not_action)], Request(_ROLE, "sqs:SendMessage", "q"))
        is Decision.EXPLICIT_DENY
    )
    assert (
        evaluate([_doc(not_action)], Request(_ROLE, "sqs:GetQueueUrl", "q"))
        is Decision.IMPLICIT_DENY
    )


def test_unknown_parts_are_judged_only_when_they_matter() -> None:
    # GIVEN a document (as a first preview shows it) whose Deny resource is not known yet
    unknown_deny = {"Effect": "Deny", "Principal": "*", "Action": "sqs:*", "Resource": UNKNOWN}
    allow = {"Effect": "Allow", "Principal": "*", "Action": "sqs:SendMessage", "Resource": "q"}
    document = _doc(unknown_deny, allow)
    # THEN a request the Deny may cover is undecidable, one its known action excludes is not
    with pytest.raises(UndecidableError):
        evaluate([document], Request(_ROLE, "sqs:SendMessage", "q"))
    assert evaluate([document], Request(_ROLE, "sns:Publish", "q")) is Decision.IMPLICIT_DENY
    # AND a statement whose principal and action are known is judged without its resource
    public = _doc({"Effect": "Allow", "Principal": "*", "Action": "sqs:*", "Resource": UNKNOWN})
    assert is_public(public.statements[0], ["aws:SourceArn"]) is True


@pytest.mark.parametrize(
    ("condition", "public"),
    [
        (None, True),
        ({"StringEquals": {"aws:SourceAccount": "123456789012"}}, False),
        ({"StringEquals": {"aws:SourceAccount": "*"}}, True),  # a condition whose value is *
        ({"ArnLike": {"aws:SourceArn": "arn:aws:events:us-east-1:*:rule/x"}}, True),
        ({"StringNotEquals": {"aws:SourceAccount": "123456789012"}}, True),
        ({"StringEqualsIfExists": {"aws:SourceAccount": "123456789012"}}, True),
        ({"Bool": {"aws:SecureTransport": "true"}}, True),
        ({"StringEquals": {"aws:PrincipalOrgID": UNKNOWN}}, None),
    ],
)
def test_public_means_everyone_without_a_concrete_restriction(
    condition: dict[str, Any] | None, public: bool | None
) -> None:
    body: dict[str, Any] = {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sns:Publish"}
    if condition:
        body["Condition"] = condition
    (only,) = _doc(body).statements
    assert is_public(only, ["aws:SourceAccount", "aws:SourceArn", "aws:PrincipalOrgID"]) is public


def test_unsupported_operators_are_undecidable_not_guessed() -> None:
    deny = _deny({"NumericLessThan": {"k:n": "3"}})
    with pytest.raises(UndecidableError, match="NumericLessThan"):
        evaluate([_doc(deny)], Request(_ROLE, "events:PutEvents", _BUS, {"k:n": "1"}))
