"""IAM documents as pure functions: explicit statements, every resource an ARN.

Roles get their permissions as ``aws.iam.RolePolicy`` JSON built here, never from
``iam.get_policy_document`` (it does not run under Pulumi mocks) or wildcard managed policies.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from agentry_platform.lib.kms import KeyPath, service_statements

__all__ = [
    "LOGS_DELIVERY_ACTIONS",
    "XRAY_ACTIONS",
    "Statement",
    "announcer_statements",
    "api_statements",
    "assume_role_policy",
    "bus_policy",
    "deny_insecure_transport",
    "index_arn",
    "key_policy",
    "kms_statements",
    "lambda_logs_statements",
    "log_group_arn",
    "policy_document",
    "queue_send_policy",
    "queue_tls_policy",
    "reconciler_statements",
    "recovery_statements",
    "rule_arn",
    "statement",
    "topic_publish_policy",
    "worker_statements",
    "xray_statements",
]

Statement = dict[str, Any]

#: Table actions of the api; TransactWriteItems is authorised per item action.
TABLE_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:ConditionCheckItem",
)
#: Table actions of the worker: steps need no transaction (see ``agentry_runtime.store``).
WORKER_TABLE_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
)
#: X-Ray actions have no resource-level permissions: ``*`` is the only valid resource.
XRAY_ACTIONS = (
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
)
#: CloudWatch Logs vended-delivery actions (Step Functions logging) have no resource-level
#: permissions either: AWS documents ``*`` as their only resource.
LOGS_DELIVERY_ACTIONS = (
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
)


def statement(
    sid: str,
    actions: Sequence[str],
    resources: Sequence[str],
    condition: dict[str, Any] | None = None,
) -> Statement:
    """One ``Allow`` statement; raises if ``actions`` or ``resources`` is empty."""
    if not actions:
        raise ValueError(f"{sid}.Action: at least one action is required")
    if not resources:
        raise ValueError(f"{sid}.Resource: at least one resource is required")
    stmt: Statement = {
        "Sid": sid,
        "Effect": "Allow",
        "Action": list(actions),
        "Resource": list(resources),
    }
    if condition:
        stmt["Condition"] = condition
    return stmt


def policy_document(statements: Iterable[Statement]) -> dict[str, Any]:
    """A policy document (version 2012-10-17) holding ``statements``."""
    return {"Version": "2012-10-17", "Statement": list(statements)}


def assume_role_policy(service: str, account_id: str) -> dict[str, Any]:
    """Trust policy letting ``service`` assume a role, only on behalf of ``account_id``."""
    return policy_document(
        [
            {
                "Effect": "Allow",
                "Principal": {"Service": service},
                "Action": "sts:AssumeRole",
                # Confused-deputy guard: the service acts for this account only.
                "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
            }
        ]
    )


def log_group_arn(region: str, account_id: str, name: str) -> str:
    """ARN of a CloudWatch log group (without the ``:*`` stream suffix)."""
    return f"arn:aws:logs:{region}:{account_id}:log-group:{name}"


def lambda_logs_statements(group_arn: str) -> list[Statement]:
    """Write to the function's own log group and nothing else."""
    return [
        statement("WriteOwnLogs", ["logs:CreateLogStream", "logs:PutLogEvents"], [f"{group_arn}:*"])
    ]


def xray_statements() -> list[Statement]:
    """Send traces (X-Ray supports no resource-level permissions, hence ``*``)."""
    return [statement("SendTraces", XRAY_ACTIONS, ["*"])]


def kms_statements(key_arn: str | None) -> list[Statement]:
    """Use the customer-managed key, when there is one."""
    if not key_arn:
        return []
    return [statement("UseDataKey", ["kms:Decrypt", "kms:GenerateDataKey"], [key_arn])]


def index_arn(table_arn: str, index: str) -> str:
    """ARN of a global secondary index of a table."""
    return f"{table_arn}/index/{index}"


def worker_statements(
    *,
    table_arn: str,
    queue_arn: str,
    bedrock: Sequence[Statement],
    key_arn: str | None,
) -> list[Statement]:
    """What the worker needs: its table, its queue, the allowed models, the key.

    It never publishes: its commits are announced from the table's stream.
    """
    return [
        statement("AgentTable", WORKER_TABLE_ACTIONS, [table_arn]),
        statement(
            "ConsumeSteps",
            [
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
                "sqs:ChangeMessageVisibility",
            ],
            [queue_arn],
        ),
        *bedrock,
        *kms_statements(key_arn),
    ]


def api_statements(*, table_arn: str, owner_index: str, key_arn: str | None) -> list[Statement]:
    """What the api function needs: its table (with idempotency records), the owner index."""
    return [
        # Creating an agent is one transaction (checked per item action); Powertools'
        # idempotency layer deletes its record when the handler fails, and DELETE /agents/{id}
        # removes an agent's items in batches.
        statement(
            "AgentTable",
            [*TABLE_ACTIONS, "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"],
            [table_arn],
        ),
        statement("ListOwnAgents", ["dynamodb:Query"], [index_arn(table_arn, owner_index)]),
        *kms_statements(key_arn),
    ]


def announcer_statements(
    *,
    table_arn: str,
    stream_arn: str,
    bus_arn: str,
    failure_queue_arn: str,
    key_arn: str | None,
) -> list[Statement]:
    """The announcer: read the table's stream, claim announcements, publish, record failures."""
    return [
        statement(
            "ReadStream",
            [
                "dynamodb:DescribeStream",
                "dynamodb:GetRecords",
                "dynamodb:GetShardIterator",
                "dynamodb:ListStreams",
            ],
            [stream_arn],
        ),
        statement("ClaimAnnouncements", ["dynamodb:GetItem", "dynamodb:UpdateItem"], [table_arn]),
        statement("PublishEvents", ["events:PutEvents"], [bus_arn]),
        # The event source mapping sends what it gives up on with the function's role.
        statement("RecordFailures", ["sqs:SendMessage"], [failure_queue_arn]),
        *kms_statements(key_arn),
    ]


def reconciler_statements(
    *, table_arn: str, active_index: str, dead_letter_queue_arn: str, key_arn: str | None
) -> list[Statement]:
    """The reconciler: sweep the active index, poke headers, drain the step dead letters."""
    return [
        statement("SweepActiveAgents", ["dynamodb:Query"], [index_arn(table_arn, active_index)]),
        statement(
            "PokeAgents",
            ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem"],
            [table_arn],
        ),
        statement(
            "DrainDeadLetters",
            ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"],
            [dead_letter_queue_arn],
        ),
        *kms_statements(key_arn),
    ]


def recovery_statements(*, table_arn: str, topic_arn: str, key_arn: str | None) -> list[Statement]:
    """The recovery state machine's role: read and update headers, notify, log, trace."""
    return [
        statement("AgentHeader", ["dynamodb:GetItem", "dynamodb:UpdateItem"], [table_arn]),
        statement("NotifyHumans", ["sns:Publish"], [topic_arn]),
        *kms_statements(key_arn),
        statement("DeliverLogs", LOGS_DELIVERY_ACTIONS, ["*"]),
        *xray_statements(),
    ]


def rule_arn(bus_arn: str, rule_name: str) -> str:
    """ARN of rule ``rule_name`` on the bus ``bus_arn`` (rules on a custom bus nest under it)."""
    return f"{bus_arn.replace(':event-bus/', ':rule/', 1)}/{rule_name}"


def deny_insecure_transport(actions: Sequence[str], resource_arn: str) -> Statement:
    """Deny ``actions`` to everyone over plain HTTP (``aws:SecureTransport`` false).

    The pattern AWS documents for SQS and SNS ("Enforce encryption of data in transit",
    https://docs.aws.amazon.com/sns/latest/dg/sns-security-best-practices.html): an explicit
    Deny wins over any Allow, in the resource's own account too.
    """
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": list(actions),
        "Resource": resource_arn,
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def queue_send_policy(*, queue_arn: str, source_arns: Sequence[str]) -> dict[str, Any]:
    """Queue policy: EventBridge may send only on behalf of the given rules (ARN patterns), and
    nothing reaches the queue over plain HTTP."""
    return policy_document(
        [
            {
                "Sid": "EventBridgeRulesOnly",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnLike": {"aws:SourceArn": list(source_arns)}},
            },
            deny_insecure_transport(["sqs:*"], queue_arn),
        ]
    )


def queue_tls_policy(*, queue_arn: str) -> dict[str, Any]:
    """Policy of a queue no service sends to (a redrive DLQ): it only refuses plain HTTP."""
    return policy_document([deny_insecure_transport(["sqs:*"], queue_arn)])


def bus_policy(
    *, bus_arn: str, publisher_arns: Sequence[str], sources: Sequence[str] = ("agentry.*",)
) -> dict[str, Any]:
    """Bus policy: only the platform's own roles may put events of the platform's sources.

    Inside the account, an identity policy alone would let any role put ``agentry.*`` events
    (a forged ``Agent Error`` would restart a finished agent), so the bus denies them to every
    other principal. Event bus policies accept Deny statements ("Example policy: Deny sending
    events from specific Regions", https://docs.aws.amazon.com/eventbridge/latest/userguide/
    eb-event-bus-example-policy-deny-regions.html) and test ``events:source`` on PutEvents
    ("Example policy: Send events to a custom bus in a different account", .../userguide/
    eb-event-bus-example-policy-cross-account-custom-bus-source.html; Service Authorization
    Reference for EventBridge). One PutEvents call carries many entries, so the source is a
    multivalued key: ``ForAnyValue`` denies a batch as soon as one entry claims our source.
    """
    if not publisher_arns:
        raise ValueError("publisher_arns: at least one publishing role is required")
    return policy_document(
        [
            {
                "Sid": "OnlyThePlatformSpeaks",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "events:PutEvents",
                "Resource": bus_arn,
                "Condition": {
                    "ForAnyValue:StringLike": {"events:source": list(sources)},
                    "ArnNotEquals": {"aws:PrincipalArn": sorted(publisher_arns)},
                },
            }
        ]
    )


def topic_publish_policy(
    *,
    topic_arn: str,
    account_id: str,
    role_arns: Sequence[str] = (),
    service: str | None = None,
    rule_arns: Sequence[str] = (),
) -> dict[str, Any]:
    """Topic policy: the account manages the topic; only the named roles, ``service`` (for this
    account) and EventBridge on behalf of ``rule_arns`` publish; nothing over plain HTTP.

    Allow statements alone do not keep other roles of the account out (their identity policies
    suffice there), so a Deny names everyone but the publishers: roles by ``aws:PrincipalArn``,
    services by ``aws:PrincipalServiceName`` (global condition keys, IAM user guide).
    """
    services = [s for s in (service,) if s] + (["events.amazonaws.com"] if rule_arns else [])
    if not role_arns and not services:
        raise ValueError("a topic needs at least one publishing role, service or rule")
    statements: list[Statement] = [
        {
            "Sid": "AccountManages",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
            "Action": [
                "sns:GetTopicAttributes",
                "sns:SetTopicAttributes",
                "sns:Subscribe",
                "sns:ListSubscriptionsByTopic",
                "sns:DeleteTopic",
            ],
            "Resource": topic_arn,
        }
    ]
    if role_arns:
        statements.append(
            {
                "Sid": "PublishersOnly",
                "Effect": "Allow",
                "Principal": {"AWS": list(role_arns)},
                "Action": "sns:Publish",
                "Resource": topic_arn,
            }
        )
    if service:
        statements.append(
            {
                "Sid": "ServicePublishes",
                "Effect": "Allow",
                "Principal": {"Service": service},
                "Action": "sns:Publish",
                "Resource": topic_arn,
                "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
            }
        )
    if rule_arns:
        statements.append(
            {
                "Sid": "RulesPublish",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sns:Publish",
                "Resource": topic_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": list(rule_arns)}},
            }
        )
    others: dict[str, Any] = {}
    if role_arns:
        others["ArnNotEquals"] = {"aws:PrincipalArn": list(role_arns)}
    if services:
        # Absent for roles and users, so IfExists keeps this test true for them.
        others["StringNotEqualsIfExists"] = {"aws:PrincipalServiceName": services}
    statements.append(
        {
            "Sid": "DenyOtherPublishers",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "sns:Publish",
            "Resource": topic_arn,
            "Condition": others,
        }
    )
    if services:
        statements.append(
            {
                "Sid": "DenyServicesForOtherAccounts",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "sns:Publish",
                "Resource": topic_arn,
                "Condition": {
                    "Bool": {"aws:PrincipalIsAWSService": "true"},
                    "StringNotEquals": {"aws:SourceAccount": account_id},
                },
            }
        )
    if rule_arns:
        statements.append(
            {
                "Sid": "DenyOtherRules",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "sns:Publish",
                "Resource": topic_arn,
                "Condition": {
                    "StringEquals": {"aws:PrincipalServiceName": "events.amazonaws.com"},
                    "ArnNotEquals": {"aws:SourceArn": list(rule_arns)},
                },
            }
        )
    statements.append(deny_insecure_transport(["sns:Publish", "sns:Subscribe"], topic_arn))
    return policy_document(statements)


def key_policy(*, account_id: str, region: str, paths: Sequence[KeyPath]) -> dict[str, Any]:
    """Key policy of a customer-managed key: IAM decides for the account's principals (the
    documented default), and each service that uses the key on the platform's behalf gets
    exactly the statement AWS documents for its path (``lib/kms.py``)."""
    root = f"arn:aws:iam::{account_id}:root"
    statements: list[Statement] = [
        {
            # The documented default: without it the key becomes unmanageable (AWS KMS guide,
            # "Default key policy"), and roles get the key through their identity policies.
            "Sid": "AccountAdministers",
            "Effect": "Allow",
            "Principal": {"AWS": root},
            "Action": "kms:*",
            "Resource": "*",
        },
        *service_statements(paths, account_id=account_id, region=region),
    ]
    return policy_document(statements)
