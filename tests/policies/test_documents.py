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
from agentry_policies.documents import PolicyDocumentError, parse_document


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
