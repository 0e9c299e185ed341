"""Every rule: one violating and one compliant fixture, run the way the engine runs it."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import pytest
from policy_graphs import (
    ACCOUNT,
    PACK_CONFIG,
    PROFILE_ARN,
    TAGS,
    arn,
    bedrock_statements,
    document,
    function,
    graph,
    log_group,
    model_arn,
    queue,
    queue_policy,
    resource,
    role,
    role_policy,
    statement,
    table,
    tls_deny,
)

from agentry_policies import ALL_POLICIES
from agentry_stacks.offline.check import CheckReport, run_check

pytestmark = pytest.mark.unit

_TABLE_ARN = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/agentry-test-state"
_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/agentry-test-worker"
_MACHINE = "aws:sfn/stateMachine:StateMachine"
_TARGET = "aws:cloudwatch/eventTarget:EventTarget"
_TOPIC = "aws:sns/topic:Topic"


def _topic_policy(name: str, condition: dict[str, Any] | None) -> dict[str, Any]:
    publish = statement("sns:Publish", "arn:aws:sns:us-east-1:1:t", Principal={"AWS": "*"})
    if condition:
        publish["Condition"] = condition
    document = json.dumps({"Version": "2012-10-17", "Statement": [publish]})
    return resource("aws:sns/topicPolicy:TopicPolicy", name, {"arn": "t", "policy": document})


def _machine(**overrides: Any) -> dict[str, Any]:
    inputs: dict[str, Any] = {
        "name": "agentry-test-recovery",
        "loggingConfiguration": {"level": "ERROR", "logDestination": "arn:aws:logs:x:1:g:*"},
        "tracingConfiguration": {"enabled": True},
        "tags": TAGS,
    }
    inputs.update(overrides)
    return resource(_MACHINE, "recovery", inputs)


def _target(**overrides: Any) -> dict[str, Any]:
    inputs: dict[str, Any] = {
        "rule": "r",
        "arn": "arn:aws:sqs:us-east-1:1:agentry-test-steps",
        "deadLetterConfig": {"arn": "arn:aws:sqs:us-east-1:1:agentry-test-steps-dlq"},
        "retryPolicy": {"maximumRetryAttempts": 3, "maximumEventAgeInSeconds": 3600},
    }
    inputs.update(overrides)
    return resource(_TARGET, "step-target", {k: v for k, v in inputs.items() if v is not None})


_TOPIC_POLICY = "aws:sns/topicPolicy:TopicPolicy"
_QUEUE_POLICY = "aws:sqs/queuePolicy:QueuePolicy"
_BUS_POLICY = "aws:cloudwatch/eventBusPolicy:EventBusPolicy"
_BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
_EVENT_PERMISSION = "aws:cloudwatch/eventPermission:EventPermission"
_ROLE_ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
_PERMISSION = "aws:lambda/permission:Permission"
_FUNCTION_URL = "aws:lambda/functionUrl:FunctionUrl"
_ROUTE = "aws:apigatewayv2/route:Route"
_STAGE = "aws:apigatewayv2/stage:Stage"
_AWS_POLICY = "arn:aws:iam::aws:policy/"
_BUS_ARN = arn("events", "event-bus/agentry-test-bus")
_TOPIC_ARN = arn("sns", "agentry-test-needs-human")
_DLQ_ARN = arn("sqs", "agentry-test-steps-dlq")
_RECOVERY_ARN = f"arn:aws:iam::{ACCOUNT}:role/agentry-test-recovery"


def _with_inputs(item: dict[str, Any], **inputs: Any) -> dict[str, Any]:
    item["inputs"].update(inputs)
    return item


def _resource_policy(
    type_: str, name: str, action: Any, principal: Any, **extra: Any
) -> dict[str, Any]:
    body = statement(action, "*", Principal=principal, **extra)
    return resource(type_, name, {"policy": document(body)})


def _events_send() -> dict[str, Any]:
    return statement(
        "sqs:SendMessage",
        _DLQ_ARN,
        Principal={"Service": "events.amazonaws.com"},
        Condition={"ArnLike": {"aws:SourceArn": arn("events", "rule/agentry-test-bus/*")}},
    )


def _root_key_statement() -> dict[str, Any]:
    return statement("kms:*", "*", Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:root"})


def _public_key_statement() -> dict[str, Any]:
    return statement("kms:*", "*", Principal={"AWS": "*"})


def _key(*statements: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    inputs = {"policy": document(*statements), "enableKeyRotation": True, "tags": TAGS}
    inputs.update(overrides)
    return resource("aws:kms/key:Key", "key", inputs)


def _trust(principal: Any, **extra: Any) -> str:
    return document(statement("sts:AssumeRole", None, Principal=principal, **extra))


def _bus() -> dict[str, Any]:
    return resource(
        "aws:cloudwatch/eventBus:EventBus",
        "bus",
        {"name": "agentry-test-bus", "tags": TAGS},
        {"arn": _BUS_ARN, "name": "agentry-test-bus"},
    )


def _publisher_policy() -> dict[str, Any]:
    return role_policy("worker-policy", [statement("events:PutEvents", _BUS_ARN)])


def _bus_policy(publishers: list[str]) -> dict[str, Any]:
    deny = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "events:PutEvents",
        "Resource": _BUS_ARN,
        "Condition": {
            "StringLike": {"events:source": "agentry.*"},
            "ArnNotEquals": {"aws:PrincipalArn": publishers},
        },
    }
    return resource(
        _BUS_POLICY, "bus-policy", {"eventBusName": "agentry-test-bus", "policy": document(deny)}
    )


def _topic_world() -> list[dict[str, Any]]:
    """The human topic, the recovery role that publishes to it, and a worker role that does not."""
    topic = resource(
        _TOPIC,
        "human",
        {"name": "agentry-test-needs-human", "kmsMasterKeyId": "alias/k"},
        {"arn": _TOPIC_ARN},
    )
    recovery = role("recovery-role", "agentry-test-recovery")
    grant = resource(
        "aws:iam/rolePolicy:RolePolicy",
        "recovery-policy",
        {"role": "agentry-test-recovery", "policy": document(statement("sns:Publish", _TOPIC_ARN))},
    )
    return [topic, recovery, grant, role()]


def _human_policy(*, deny_others: bool) -> dict[str, Any]:
    statements = [
        statement("sns:Publish", _TOPIC_ARN, Principal={"AWS": [_RECOVERY_ARN]}),
        tls_deny(["sns:Publish", "sns:Subscribe"], _TOPIC_ARN),
    ]
    if deny_others:
        statements.append(
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "sns:Publish",
                "Resource": _TOPIC_ARN,
                "Condition": {"ArnNotEquals": {"aws:PrincipalArn": [_RECOVERY_ARN]}},
            }
        )
    return resource(
        _TOPIC_POLICY, "human-policy", {"arn": _TOPIC_ARN, "policy": document(*statements)}
    )


def _bucket(**overrides: Any) -> dict[str, Any]:
    inputs = {"bucket": "agentry-test-artifacts", "tags": TAGS, **overrides}
    return resource("aws:s3/bucket:Bucket", "bucket", inputs, {"id": "agentry-test-artifacts"})


def _access_block(**overrides: Any) -> dict[str, Any]:
    inputs: dict[str, Any] = {
        "bucket": "agentry-test-artifacts",
        "blockPublicAcls": True,
        "blockPublicPolicy": True,
        "ignorePublicAcls": True,
        "restrictPublicBuckets": True,
    }
    inputs.update(overrides)
    return resource("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "block", inputs)


class Case(NamedTuple):
    """A rule, a graph that violates it (naming ``offender``) and one that complies."""

    policy: str
    violating: list[dict[str, Any]]
    compliant: list[dict[str, Any]]
    offender: str


_GOOD_POLICY = role_policy("worker-policy", bedrock_statements())
CASES = [
    Case(
        "bedrock-invoke-scoped",
        [role_policy("worker-policy", [statement("bedrock:Invoke*", "*", "Wide")])],
        [_GOOD_POLICY],
        "worker-policy",
    ),
    Case(
        "bedrock-model-allowlist",
        [
            role_policy(
                "worker-policy",
                [statement("bedrock:InvokeModel", model_arn(model="meta.llama3-70b-v1:0"))],
            )
        ],
        [_GOOD_POLICY, function()],
        "worker-policy",
    ),
    Case(
        "bedrock-model-allowlist",
        [
            function(
                environment={
                    "variables": {"AGENTRY_AGENTS": '{"a": {"model": "amazon.titan-text-v1"}}'}
                }
            )
        ],
        [function()],
        "worker",
    ),
    Case(
        "bedrock-inference-profile-grants",
        [role_policy("worker-policy", bedrock_statements()[:2])],
        [_GOOD_POLICY],
        "worker-policy",
    ),
    Case(
        "iam-policy-document-valid",
        [resource("aws:iam/rolePolicy:RolePolicy", "broken", {"role": "r", "policy": "{nope"})],
        [_GOOD_POLICY],
        "broken",
    ),
    Case(
        "iam-no-wildcard-action",
        [role_policy("p", [statement("*", _TABLE_ARN)])],
        [role_policy("p", [statement("dynamodb:GetItem", _TABLE_ARN)])],
        "p",
    ),
    Case(
        "iam-no-service-wildcard",
        [role_policy("p", [statement("dynamodb:*", _TABLE_ARN)])],
        [role_policy("p", [statement(["dynamodb:GetItem", "dynamodb:Query"], _TABLE_ARN)])],
        "p",
    ),
    Case(
        "iam-no-wildcard-resource",
        [role_policy("p", [statement("dynamodb:GetItem", "*")])],
        [role_policy("p", [statement(["xray:PutTraceSegments", "xray:PutTelemetryRecords"], "*")])],
        "p",
    ),
    Case(
        "iam-no-not-action-allow",
        [role_policy("p", [statement(None, "*", NotAction=["iam:*"])])],
        [role_policy("p", [statement(None, "*", Effect="Deny", NotAction=["s3:GetObject"])])],
        "p",
    ),
    Case(
        "iam-no-pass-role-wildcard",
        [role_policy("p", [statement("iam:PassRole", "*")])],
        [role_policy("p", [statement("iam:PassRole", _ROLE_ARN)])],
        "p",
    ),
    Case(
        "lambda-tracing-active",
        [function(tracingConfig={"mode": "PassThrough"})],
        [function()],
        "worker",
    ),
    Case(
        "lambda-reserved-concurrency",
        [function(reservedConcurrentExecutions=None)],
        [function()],
        "worker",
    ),
    Case("lambda-timeout-bounded", [function(timeout=900)], [function()], "worker"),
    Case("lambda-runtime-supported", [function(runtime="python3.8")], [function()], "worker"),
    Case(
        "lambda-log-retention",
        [function(), log_group("worker", retention=None)],
        [function(), log_group("worker")],
        "worker",
    ),
    Case("dynamodb-pitr", [table(pointInTimeRecovery={"enabled": False})], [table()], "state"),
    Case("dynamodb-encryption", [table(serverSideEncryption=None)], [table()], "state"),
    Case(
        "dynamodb-deletion-protection",
        [table(deletionProtectionEnabled=False)],
        [table()],
        "state",
    ),
    Case("sqs-encryption", [queue("steps", sqsManagedSseEnabled=None)], [queue("steps")], "steps"),
    Case(
        "sqs-redrive",
        [queue("steps"), queue("steps-dlq")],
        [queue("steps", dlq="steps-dlq"), queue("steps-dlq")],
        "steps",
    ),
    Case(
        "stack-dlq-declared",
        [queue("steps", dlq="elsewhere")],
        [queue("steps", dlq="steps-dlq"), queue("steps-dlq")],
        "steps",
    ),
    Case(
        "sns-encryption",
        [resource(_TOPIC, "human", {"name": "t", "tags": TAGS})],
        [resource(_TOPIC, "human", {"name": "t", "kmsMasterKeyId": "alias/k", "tags": TAGS})],
        "human",
    ),
    Case(
        "sns-no-public-access",
        [_topic_policy("human-policy", None)],
        [_topic_policy("human-policy", {"StringEquals": {"aws:SourceAccount": ACCOUNT}})],
        "human-policy",
    ),
    Case(
        "sns-no-public-access",
        [_topic_policy("human-policy", {"StringEquals": {"aws:SourceAccount": "*"}})],
        [_topic_policy("human-policy", {"ArnLike": {"aws:SourceArn": arn("events", "rule/r")}})],
        "human-policy",
    ),
    Case(
        "sns-no-public-access",
        [_resource_policy(_TOPIC_POLICY, "p", "sns:Subscribe", {"AWS": "*"})],
        [_resource_policy(_TOPIC_POLICY, "p", "sns:Subscribe", {"AWS": _ROLE_ARN})],
        "p",
    ),
    Case(
        "sns-no-public-access",
        [
            _resource_policy(
                _TOPIC_POLICY, "p", "sns:Publish", None, NotPrincipal={"AWS": _ROLE_ARN}
            )
        ],
        [
            _resource_policy(
                _TOPIC_POLICY,
                "p",
                "sns:Publish",
                {"Service": "cloudwatch.amazonaws.com"},
                Condition={"StringEquals": {"aws:SourceAccount": ACCOUNT}},
            )
        ],
        "p",
    ),
    Case(
        "sqs-no-public-access",
        [_resource_policy(_QUEUE_POLICY, "p", "sqs:SendMessage", "*")],
        [queue_policy("steps", _events_send())],
        "p",
    ),
    Case(
        "sqs-no-public-access",
        [_resource_policy(_QUEUE_POLICY, "p", "sqs:*", {"AWS": _ROLE_ARN})],
        [_resource_policy(_QUEUE_POLICY, "p", ["sqs:SendMessage"], {"AWS": _ROLE_ARN})],
        "p",
    ),
    Case(
        "kms-key-no-public-access",
        [_key(_public_key_statement())],
        [_key(_root_key_statement())],
        "key",
    ),
    Case(
        "kms-key-rotation",
        [_key(_root_key_statement(), enableKeyRotation=False)],
        [_key(_root_key_statement())],
        "key",
    ),
    Case(
        "eventbridge-bus-no-public-access",
        [_resource_policy(_BUS_POLICY, "bus-policy", "events:PutEvents", "*")],
        [_resource_policy(_BUS_POLICY, "bus-policy", "events:PutEvents", {"AWS": _ROLE_ARN})],
        "bus-policy",
    ),
    Case(
        "eventbridge-bus-no-public-access",
        [resource(_EVENT_PERMISSION, "perm", {"principal": "*", "statementId": "all"})],
        [resource(_EVENT_PERMISSION, "perm", {"principal": "111122223333", "statementId": "one"})],
        "perm",
    ),
    Case(
        "eventbridge-bus-platform-only",
        [_bus(), role(), _publisher_policy()],
        [_bus(), role(), _publisher_policy(), _bus_policy([_ROLE_ARN])],
        "bus",
    ),
    Case(
        "eventbridge-bus-platform-only",
        [_bus(), role(), _publisher_policy(), _bus_policy([arn("iam", "role/other", "")])],
        [_bus(), role(), _publisher_policy(), _bus_policy([_ROLE_ARN])],
        "bus",
    ),
    Case(
        "sns-topic-publishers-restricted",
        [*_topic_world(), _human_policy(deny_others=False)],
        [*_topic_world(), _human_policy(deny_others=True)],
        "human",
    ),
    Case(
        "resource-policy-tls-only",
        [queue("steps-dlq")],
        [queue("steps-dlq"), queue_policy("steps-dlq")],
        "steps-dlq",
    ),
    Case(
        "resource-policy-tls-only",
        [queue("steps-dlq"), queue_policy("steps-dlq", _events_send())],
        [
            queue("steps-dlq"),
            queue_policy("steps-dlq", _events_send(), tls_deny("sqs:*", _DLQ_ARN)),
        ],
        "steps-dlq",
    ),
    Case(
        "iam-no-privileged-managed-policy",
        [
            resource(
                _ROLE_ATTACHMENT,
                "admin",
                {"role": "r", "policyArn": _AWS_POLICY + "AdministratorAccess"},
            )
        ],
        [
            resource(
                _ROLE_ATTACHMENT, "admin", {"role": "r", "policyArn": arn("iam", "policy/mine", "")}
            )
        ],
        "admin",
    ),
    Case(
        "iam-no-privileged-managed-policy",
        [_with_inputs(role(), managedPolicyArns=[_AWS_POLICY + "PowerUserAccess"])],
        [
            _with_inputs(
                role(), managedPolicyArns=[_AWS_POLICY + "service-role/AWSLambdaBasicExecutionRole"]
            )
        ],
        "worker-role",
    ),
    Case(
        "iam-no-users",
        [resource("aws:iam/accessKey:AccessKey", "ci-key", {"user": "ci"})],
        [
            resource(
                "aws:iam/policyAttachment:PolicyAttachment",
                "ci-key",
                {"roles": ["r"], "policyArn": "p"},
            )
        ],
        "ci-key",
    ),
    Case(
        "iam-trust-policy-restricted",
        [_with_inputs(role(), assumeRolePolicy=_trust({"AWS": "*"}))],
        [_with_inputs(role(), assumeRolePolicy=_trust({"Service": "lambda.amazonaws.com"}))],
        "worker-role",
    ),
    Case(
        "iam-trust-policy-restricted",
        [_with_inputs(role(), assumeRolePolicy=_trust(None, NotPrincipal={"AWS": _ROLE_ARN}))],
        [
            _with_inputs(
                role(),
                assumeRolePolicy=_trust(
                    "*", Condition={"StringEquals": {"aws:PrincipalOrgID": "o-abc123"}}
                ),
            )
        ],
        "worker-role",
    ),
    Case(
        "lambda-permission-restricted",
        [
            resource(
                _PERMISSION,
                "invoke",
                {"function": "f", "action": "lambda:InvokeFunction", "principal": "*"},
            )
        ],
        [
            resource(
                _PERMISSION,
                "invoke",
                {"function": "f", "action": "lambda:InvokeFunction", "principal": ACCOUNT},
            )
        ],
        "invoke",
    ),
    Case(
        "lambda-permission-restricted",
        [
            resource(
                _PERMISSION, "invoke", {"function": "f", "principal": "apigateway.amazonaws.com"}
            )
        ],
        [
            resource(
                _PERMISSION,
                "invoke",
                {
                    "function": "f",
                    "principal": "apigateway.amazonaws.com",
                    "sourceArn": arn("execute-api", "abc/*/*"),
                },
            )
        ],
        "invoke",
    ),
    Case(
        "lambda-function-url-auth",
        [resource(_FUNCTION_URL, "url", {"functionName": "f", "authorizationType": "NONE"})],
        [resource(_FUNCTION_URL, "url", {"functionName": "f", "authorizationType": "AWS_IAM"})],
        "url",
    ),
    Case(
        "lambda-no-secrets-in-environment",
        [function(environment={"variables": {"DB_PASSWORD": "hunter2hunter2"}})],
        [
            function(
                environment={"variables": {"DB_PASSWORD_ARN": arn("secretsmanager", "secret:db")}}
            )
        ],
        "worker",
    ),
    Case(
        "lambda-no-secrets-in-environment",
        [function(environment={"variables": {"UPSTREAM": "AKIAIOSFODNN7EXAMPLE"}})],
        [function()],
        "worker",
    ),
    Case(
        "lambda-no-endpoint-override",
        [function(environment={"variables": {"AWS_ENDPOINT_URL_EVENTS": "http://evil"}})],
        [function()],
        "worker",
    ),
    Case(
        "apigw-route-authorization",
        [
            resource(
                _ROUTE,
                "route",
                {"apiId": "a", "routeKey": "GET /agents", "authorizationType": "NONE"},
            )
        ],
        [
            resource(
                _ROUTE,
                "route",
                {"apiId": "a", "routeKey": "GET /agents", "authorizationType": "AWS_IAM"},
            )
        ],
        "route",
    ),
    Case(
        "apigw-stage-access-logs",
        [resource(_STAGE, "stage", {"apiId": "a", "name": "$default", "tags": TAGS})],
        [
            resource(
                _STAGE,
                "stage",
                {
                    "apiId": "a",
                    "name": "$default",
                    "tags": TAGS,
                    "accessLogSettings": {
                        "destinationArn": arn("logs", "log-group:/aws/apigateway/a"),
                        "format": "{}",
                    },
                },
            )
        ],
        "stage",
    ),
    Case(
        "log-group-retention",
        [log_group("worker", retention=None)],
        [log_group("worker")],
        "worker-logs",
    ),
    Case(
        "log-group-encryption",
        [log_group("worker")],
        [_with_inputs(log_group("worker"), kmsKeyId=arn("kms", "key/k"))],
        "worker-logs",
    ),
    Case(
        "s3-no-public-acl",
        [_bucket(acl="public-read")],
        [_bucket(acl="private")],
        "bucket",
    ),
    Case(
        "s3-no-public-acl",
        [
            resource(
                "aws:s3/bucketAcl:BucketAcl",
                "acl",
                {
                    "bucket": "b",
                    "accessControlPolicy": {
                        "grants": [
                            {
                                "grantee": {
                                    "type": "Group",
                                    "uri": "http://acs.amazonaws.com/groups/global/AllUsers",
                                },
                                "permission": "READ",
                            }
                        ],
                        "owner": {"id": "o"},
                    },
                },
            )
        ],
        [resource("aws:s3/bucketAcl:BucketAcl", "acl", {"bucket": "b", "acl": "private"})],
        "acl",
    ),
    Case(
        "s3-no-public-policy",
        [_resource_policy(_BUCKET_POLICY, "bucket-policy", "s3:GetObject", "*")],
        [_resource_policy(_BUCKET_POLICY, "bucket-policy", "s3:GetObject", {"AWS": _ROLE_ARN})],
        "bucket-policy",
    ),
    Case(
        "s3-public-access-block",
        [_bucket(), _access_block(restrictPublicBuckets=False)],
        [_bucket(), _access_block()],
        "bucket",
    ),
    Case("s3-public-access-block", [_bucket()], [_bucket(), _access_block()], "bucket"),
    Case("sfn-logging", [_machine(loggingConfiguration=None)], [_machine()], "recovery"),
    Case(
        "sfn-tracing",
        [_machine(tracingConfiguration={"enabled": False})],
        [_machine()],
        "recovery",
    ),
    Case(
        "eventbridge-target-resilience",
        [_target(deadLetterConfig=None, retryPolicy=None)],
        [_target()],
        "step-target",
    ),
    Case(
        "required-tags",
        [queue("steps", tags={"Project": "agentry", "Environment": "test"})],
        [queue("steps")],
        "steps",
    ),
    Case(
        "required-tags",
        [resource("aws:kms/key:Key", "key", {"description": "no tags input at all"})],
        [resource("aws:kms/key:Key", "key", {"tags": TAGS})],
        "key",
    ),
    Case(
        "stack-function-roles-declared",
        [function(), role(physical="someone-else")],
        [function(), role()],
        "worker",
    ),
]


def _run(policy_name: str, resources: list[dict[str, Any]]) -> CheckReport:
    policy = next(p for p in ALL_POLICIES if p.name == policy_name)
    return run_check(graph(*resources), PACK_CONFIG, policies=[policy])


def test_every_rule_has_a_case() -> None:
    # GIVEN the pack's rules WHEN the table below is compared THEN no rule is left untested.
    assert {p.name for p in ALL_POLICIES} == {case.policy for case in CASES}


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.policy}-{c.offender}")
def test_violating_fixture_is_reported_by_name(case: Case) -> None:
    # GIVEN a graph that breaks the rule WHEN the rule runs
    report = _run(case.policy, case.violating)
    # THEN it reports the offending resource, by name, in the message too
    assert report.violations, f"{case.policy} missed its violating fixture"
    offenders = {v.resource for v in report.violations}
    assert case.offender in offenders
    assert all(v.policy == case.policy for v in report.violations)
    assert any(case.offender in v.message for v in report.violations)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.policy}-{c.offender}")
def test_compliant_fixture_passes(case: Case) -> None:
    # GIVEN a graph that follows the rule WHEN it runs THEN nothing is reported
    assert _run(case.policy, case.compliant).violations == []


@pytest.mark.parametrize(
    "action",
    [
        "bedrock:*",
        "bedrock:Invoke*",
        "*",
        "bedrock:*Model*",
        "BEDROCK:invokemodel",
        "b*:Invoke?odel",
    ],
)
def test_every_wildcard_reaching_invoke_model_is_scoped(action: str) -> None:
    # GIVEN a pattern that expands to bedrock:InvokeModel, granted on '*'
    report = _run("bedrock-invoke-scoped", [role_policy("p", [statement(action, "*")])])
    # THEN the scoping rule reports it
    assert [v.resource for v in report.violations] == ["p"]


def test_not_action_that_leaves_invoke_model_is_scoped() -> None:
    # GIVEN Allow NotAction s3:* on '*' (which grants bedrock:InvokeModel implicitly)
    policy = role_policy("p", [statement(None, "*", NotAction="s3:*")])
    # THEN the Bedrock scoping rule reports it as an invoke grant on '*'
    assert _run("bedrock-invoke-scoped", [policy]).violations


def test_profile_grant_missing_one_region_names_that_region() -> None:
    # GIVEN the profile's conditioned model grant lacks us-west-2
    statements = bedrock_statements()
    statements[2]["Resource"] = [model_arn("us-east-1"), model_arn("us-east-2")]
    report = _run("bedrock-inference-profile-grants", [role_policy("p", statements)])
    # THEN exactly that region is reported
    assert len(report.violations) == 1
    assert "us-west-2" in report.violations[0].message


def test_profile_model_grant_without_condition_is_not_enough() -> None:
    # GIVEN the destination-region model grants are not scoped by bedrock:InferenceProfileArn
    statements = bedrock_statements()
    del statements[2]["Condition"]
    report = _run("bedrock-inference-profile-grants", [role_policy("p", statements)])
    # THEN the profile grant is reported for every destination region
    assert len(report.violations) == 3


def test_inline_role_policies_are_checked() -> None:
    # GIVEN a role whose inline policy grants dynamodb:* (a list of proxies, in the engine)
    document = json.dumps({"Statement": [statement("dynamodb:*", _TABLE_ARN)]})
    wide = role()
    wide["inputs"]["inlinePolicies"] = [{"name": "inline", "policy": document}]
    # THEN the service-wildcard rule names the role
    report = _run("iam-no-service-wildcard", [wide])
    assert [v.resource for v in report.violations] == ["worker-role"]


def test_profile_arn_in_condition_may_be_a_pattern() -> None:
    # GIVEN a StringLike condition on the profile ARN (a pattern, not the literal ARN)
    statements = bedrock_statements()
    statements[2]["Condition"] = {
        "StringLike": {"bedrock:InferenceProfileArn": PROFILE_ARN.replace(ACCOUNT, "*")}
    }
    # THEN the paired grants are recognised
    report = _run("bedrock-inference-profile-grants", [role_policy("p", statements)])
    assert report.violations == []
