"""Realistic misconfigurations of the prod graph, one per gap of issues #13 and #11.

Each mutation edits a deep copy of a planned graph the way a careless change to the program
would, and names the rule and the resource that must then report a mandatory violation. The
shipped-stack tests run them through ``agentry check prod --graph`` and the gRPC test through
the pack as the Pulumi CLI runs it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any, NamedTuple

Graph = dict[str, Any]
ACCOUNT = "123456789012"
_UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


class Mutation(NamedTuple):
    """A named edit of a graph and the (rule, resource name) it must trip."""

    id: str
    edit: Callable[[Graph], None]
    policy: str
    resource: str


def find(graph: Graph, name: str) -> dict[str, Any]:
    """The graph resource with logical name ``name``."""
    return next(r for r in graph["resources"] if r["name"] == name)


def documents_of(resource: dict[str, Any], key: str = "policy") -> dict[str, Any]:
    """The parsed policy document held in ``resource``'s input ``key``."""
    return dict(json.loads(resource["inputs"][key]))


def _edit_document(
    name: str, edit: Callable[[list[dict[str, Any]]], None]
) -> Callable[[Graph], None]:
    def apply(graph: Graph) -> None:
        resource = find(graph, name)
        document = documents_of(resource)
        edit(document["Statement"])
        resource["inputs"]["policy"] = json.dumps(document)

    return apply


def _add(
    type_: str, name: str, inputs: dict[str, Any], outputs: dict[str, Any] | None = None
) -> Callable[[Graph], None]:
    def apply(graph: Graph) -> None:
        graph["resources"].append(
            {
                "type": type_,
                "name": name,
                "urn": f"urn:pulumi:{graph['stack']}::agentry::{type_}::{name}",
                "parent": None,
                "custom": True,
                "dependencies": [],
                "propertyDependencies": {},
                "inputs": inputs,
                "outputs": outputs or {},
            }
        )

    return apply


def _set(name: str, **inputs: Any) -> Callable[[Graph], None]:
    def apply(graph: Graph) -> None:
        resource = find(graph, name)
        for key, value in inputs.items():
            if value is None:
                resource["inputs"].pop(key, None)
            else:
                resource["inputs"][key] = value

    return apply


def _env(**variables: str) -> Callable[[Graph], None]:
    def apply(graph: Graph) -> None:
        find(graph, "worker-function")["inputs"]["environment"]["variables"].update(variables)

    return apply


def _remove(name: str) -> Callable[[Graph], None]:
    def apply(graph: Graph) -> None:
        graph["resources"] = [r for r in graph["resources"] if r["name"] != name]

    return apply


def _public(action: str, **extra: Any) -> Callable[[list[dict[str, Any]]], None]:
    def edit(statements: list[dict[str, Any]]) -> None:
        statements.append(
            {"Effect": "Allow", "Principal": "*", "Action": action, "Resource": "*", **extra}
        )

    return edit


def _widen_topic_publishers(statements: list[dict[str, Any]]) -> None:
    # Lets every role of the account through the "deny other publishers" statement.
    for statement in statements:
        if statement.get("Sid") == "DenyOtherPublishers":
            statement["Condition"]["ArnNotLike"] = {
                "aws:PrincipalArn": [f"arn:aws:iam::{ACCOUNT}:role/*"]
            }
            statement["Condition"].pop("ArnNotEquals", None)


def _drop_tls(statements: list[dict[str, Any]]) -> None:
    statements[:] = [s for s in statements if s.get("Sid") != "DenyInsecureTransport"]


def _admin_trust(graph: Graph) -> None:
    role = find(graph, "worker-role")
    trust = json.loads(role["inputs"]["assumeRolePolicy"])
    trust["Statement"].append(
        {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}
    )
    role["inputs"]["assumeRolePolicy"] = json.dumps(trust)


_AWS_POLICY = "arn:aws:iam::aws:policy/"
_PUBLIC_ACL_BUCKET = {"bucket": "agentry-prod-exports", "acl": "public-read"}

#: One mutation per gap the issues list; each must fail `agentry check prod --graph`.
MUTATIONS = [
    Mutation(
        "admin-role-attachment",
        _add(
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
            "worker-admin",
            {"role": "agentry-prod-worker-role", "policyArn": _AWS_POLICY + "AdministratorAccess"},
        ),
        "iam-no-privileged-managed-policy",
        "worker-admin",
    ),
    Mutation(
        "managed-policy-arns",
        _set("worker-role", managedPolicyArns=[_AWS_POLICY + "AdministratorAccess"]),
        "iam-no-privileged-managed-policy",
        "worker-role",
    ),
    Mutation(
        "policy-attachment",
        _add(
            "aws:iam/policyAttachment:PolicyAttachment",
            "power-users",
            {"roles": ["agentry-prod-api-role"], "policyArn": _AWS_POLICY + "PowerUserAccess"},
        ),
        "iam-no-privileged-managed-policy",
        "power-users",
    ),
    Mutation(
        "iam-user",
        _add("aws:iam/user:User", "ci-user", {"name": "agentry-ci"}),
        "iam-no-users",
        "ci-user",
    ),
    Mutation(
        "access-key",
        _add("aws:iam/accessKey:AccessKey", "ci-key", {"user": "agentry-ci"}),
        "iam-no-users",
        "ci-key",
    ),
    Mutation("trust-open-to-star", _admin_trust, "iam-trust-policy-restricted", "worker-role"),
    Mutation(
        "lambda-permission-star",
        _set("http-invoke-permission", principal="*", sourceArn=None),
        "lambda-permission-restricted",
        "http-invoke-permission",
    ),
    Mutation(
        "lambda-permission-no-source",
        _set("http-invoke-permission", sourceArn=None),
        "lambda-permission-restricted",
        "http-invoke-permission",
    ),
    Mutation(
        "function-url-no-auth",
        _add(
            "aws:lambda/functionUrl:FunctionUrl",
            "api-url",
            {"functionName": "agentry-prod-api", "authorizationType": "NONE"},
        ),
        "lambda-function-url-auth",
        "api-url",
    ),
    Mutation(
        "queue-policy-star",
        _edit_document("steps-policy", _public("sqs:SendMessage")),
        "sqs-no-public-access",
        "steps-policy",
    ),
    Mutation(
        "topic-policy-star-subscribe",
        _edit_document("recovery-topic-policy", _public("sns:Subscribe")),
        "sns-no-public-access",
        "recovery-topic-policy",
    ),
    Mutation(
        "topic-policy-not-principal",
        _edit_document(
            "alarms-topic-policy",
            lambda s: s.append(
                {
                    "Effect": "Allow",
                    "NotPrincipal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                    "Action": "sns:Publish",
                    "Resource": "*",
                }
            ),
        ),
        "sns-no-public-access",
        "alarms-topic-policy",
    ),
    Mutation(
        "topic-policy-star-condition",
        _edit_document(
            "alarms-topic-policy",
            _public("sns:Publish", Condition={"StringEquals": {"aws:SourceAccount": "*"}}),
        ),
        "sns-no-public-access",
        "alarms-topic-policy",
    ),
    Mutation(
        "key-policy-star",
        _edit_document("key-key", _public("kms:*")),
        "kms-key-no-public-access",
        "key-key",
    ),
    Mutation(
        "key-rotation-off", _set("key-key", enableKeyRotation=False), "kms-key-rotation", "key-key"
    ),
    Mutation(
        "route-without-auth",
        _set("http-route-post-agents", authorizationType="NONE"),
        "apigw-route-authorization",
        "http-route-post-agents",
    ),
    Mutation(
        "stage-without-access-logs",
        _set("http-stage", accessLogSettings=None),
        "apigw-stage-access-logs",
        "http-stage",
    ),
    Mutation(
        "bus-policy-star",
        _edit_document("events-policy", _public("events:PutEvents")),
        "eventbridge-bus-no-public-access",
        "events-policy",
    ),
    Mutation(
        "secret-in-environment",
        _env(PAYMENTS_API_KEY="sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
        "lambda-no-secrets-in-environment",
        "worker-function",
    ),
    Mutation(
        "log-group-no-retention",
        _set("worker-logs", retentionInDays=None),
        "log-group-retention",
        "worker-logs",
    ),
    Mutation(
        "log-group-no-encryption",
        _set("worker-logs", kmsKeyId=None),
        "log-group-encryption",
        "worker-logs",
    ),
    Mutation(
        "public-bucket-acl",
        _add("aws:s3/bucket:Bucket", "exports", _PUBLIC_ACL_BUCKET),
        "s3-no-public-acl",
        "exports",
    ),
    Mutation(
        "bucket-without-access-block",
        _add("aws:s3/bucket:Bucket", "exports", {"bucket": "agentry-prod-exports"}),
        "s3-public-access-block",
        "exports",
    ),
    Mutation(
        "public-bucket-policy",
        _add(
            "aws:s3/bucketPolicy:BucketPolicy",
            "exports-policy",
            {
                "bucket": "agentry-prod-exports",
                "policy": json.dumps(
                    {
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": "*",
                                "Action": "s3:GetObject",
                                "Resource": "arn:aws:s3:::agentry-prod-exports/*",
                            }
                        ]
                    }
                ),
            },
        ),
        "s3-no-public-policy",
        "exports-policy",
    ),
    # Issue #11: the bus and topics trust only the platform.
    Mutation(
        "bus-policy-removed",
        _remove("events-policy"),
        "eventbridge-bus-platform-only",
        "events-bus",
    ),
    Mutation(
        "topic-publishers-widened",
        _edit_document("recovery-topic-policy", _widen_topic_publishers),
        "sns-topic-publishers-restricted",
        "humans-topic",
    ),
    Mutation(
        "topic-tls-dropped",
        _edit_document("alarms-topic-policy", _drop_tls),
        "resource-policy-tls-only",
        "alarms-topic-topic",
    ),
    Mutation(
        "queue-tls-dropped",
        _edit_document("steps-policy", _drop_tls),
        "resource-policy-tls-only",
        "steps-queue",
    ),
    Mutation(
        "dlq-policy-removed", _remove("steps-dlq-policy"), "resource-policy-tls-only", "steps-dlq"
    ),
    Mutation(
        "endpoint-override",
        _env(AWS_ENDPOINT_URL_EVENTS="https://events.example.net"),
        "lambda-no-endpoint-override",
        "worker-function",
    ),
]

#: Mutations of a first-preview graph that mandatory rules can still decide (the documents
#: that depend on unknown ARNs cannot be judged, but these can).
PREVIEW_MUTATIONS = [
    m
    for m in MUTATIONS
    if m.id
    in {
        "admin-role-attachment",
        "iam-user",
        "trust-open-to-star",
        "function-url-no-auth",
        "key-policy-star",
        "key-rotation-off",
        "route-without-auth",
        "secret-in-environment",
        "public-bucket-acl",
        "dlq-policy-removed",
        "endpoint-override",
        "log-group-no-retention",
    }
]


def mutated(graph: Graph, mutation: Mutation) -> Graph:
    """A deep copy of ``graph`` with ``mutation`` applied."""
    copied = copy.deepcopy(graph)
    mutation.edit(copied)
    return copied


def make_unknown(graph: Graph, name: str, key: str = "policy") -> Graph:
    """A copy of ``graph`` where input ``key`` of resource ``name`` is not known yet."""
    copied = copy.deepcopy(graph)
    find(copied, name)["inputs"][key] = _UNKNOWN
    return copied


def unknown_then_violation(graph: Graph) -> Graph:
    """The api policy unknown (it is judged first), then a worker policy granting bedrock:*."""
    copied = make_unknown(graph, "api-policy")
    _edit_document("worker-policy", _public_grant("bedrock:*"))(copied)
    return copied


def _public_grant(action: str) -> Callable[[list[dict[str, Any]]], None]:
    def edit(statements: list[dict[str, Any]]) -> None:
        statements.append({"Effect": "Allow", "Action": action, "Resource": "*"})

    return edit
