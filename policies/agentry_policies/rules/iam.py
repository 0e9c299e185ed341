"""IAM least privilege for identity policies (role policies, managed policies, inline policies)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pulumi_policy import PolicyConfigSchema, ResourceValidationArgs

from agentry_policies import iam_db
from agentry_policies._base import resource_policy, valid_documents
from agentry_policies.documents import (
    IDENTITY_POLICY_TYPES,
    RESOURCE_POLICY_TYPES,
    PolicyDocumentError,
    Statement,
    parse_document,
    raw_documents,
)

_ALL_POLICY_TYPES = IDENTITY_POLICY_TYPES | RESOURCE_POLICY_TYPES
_LISTED = 5  # actions named in one message before "and N more"

_SENSITIVE_SCHEMA = PolicyConfigSchema(
    properties={
        "sensitiveServices": {
            "type": "array",
            "items": {"type": "string"},
            "default": [
                "iam",
                "kms",
                "sts",
                "dynamodb",
                "s3",
                "bedrock",
                "lambda",
                "sqs",
                "sns",
                "events",
                "states",
                "secretsmanager",
                "ssm",
                "organizations",
            ],
            "description": "Services on which a service-wide wildcard (svc:*) is forbidden.",
        }
    }
)
_WILDCARD_RESOURCE_SCHEMA = PolicyConfigSchema(
    properties={
        "exemptActions": {
            "type": "array",
            "items": {"type": "string"},
            "default": [],
            "description": "Actions allowed on Resource '*' although they support resource ARNs.",
        }
    }
)


def _allow_statements(args: ResourceValidationArgs) -> Iterable[Statement]:
    for document in valid_documents(args, IDENTITY_POLICY_TYPES):
        yield from (s for s in document.statements if s.allows)


def _named(actions: Iterable[str]) -> str:
    ordered = sorted(actions)
    shown = ", ".join(ordered[:_LISTED])
    more = len(ordered) - _LISTED
    return f"{shown} and {more} more" if more > 0 else shown


def _check_document_valid(
    args: ResourceValidationArgs, _config: Mapping[str, Any]
) -> Iterable[str]:
    for source, raw in raw_documents(args.resource_type, args.props):
        try:
            parse_document(raw, source)
        except PolicyDocumentError as exc:
            yield f"{exc}; fix the policy document so IAM (and this pack) can evaluate it."


def _check_wildcard_action(
    args: ResourceValidationArgs, _config: Mapping[str, Any]
) -> Iterable[str]:
    for statement in _allow_statements(args):
        for pattern in statement.actions:
            if set(pattern.strip()) <= {"*", ":", "?"}:
                yield (
                    f"{statement.label} allows action '{pattern}' (every action of every "
                    "service); list the exact actions the principal needs."
                )


def _check_service_wildcard(
    args: ResourceValidationArgs, config: Mapping[str, Any]
) -> Iterable[str]:
    sensitive = {s.lower() for s in config.get("sensitiveServices", [])}
    for statement in _allow_statements(args):
        for pattern in statement.actions:
            service = pattern.strip().lower().partition(":")[0]
            if service in sensitive and iam_db.is_service_wide(pattern):
                yield (
                    f"{statement.label} allows '{pattern}', every action of the sensitive "
                    f"service '{service}'; list the exact actions the principal needs."
                )


def _check_wildcard_resource(
    args: ResourceValidationArgs, config: Mapping[str, Any]
) -> Iterable[str]:
    exempt = {a.lower() for a in config.get("exemptActions", [])}
    for statement in _allow_statements(args):
        if "*" not in (r.strip() for r in statement.resources):
            continue
        scoped: set[str] = set()
        for pattern in statement.actions:
            expanded = iam_db.expand(pattern) or {pattern.lower()}
            scoped.update(
                a for a in expanded if a not in exempt and iam_db.supports_resource_level(a)
            )
        if scoped:
            yield (
                f"{statement.label} allows {_named(scoped)} on Resource '*' although "
                "they support resource-level permissions; name the resource ARNs instead."
            )


def _check_not_action(args: ResourceValidationArgs, _config: Mapping[str, Any]) -> Iterable[str]:
    for statement in _allow_statements(args):
        for key, value in (
            ("NotAction", statement.not_actions),
            ("NotResource", statement.not_resources),
        ):
            if value is not None:
                yield (
                    f"{statement.label} combines Allow with {key} {list(value)}, which grants "
                    "everything not listed; list what is allowed in Action/Resource instead."
                )


def _is_any_role(resource: str) -> bool:
    resource = resource.strip()
    return resource == "*" or resource.endswith(":role/*") or resource.endswith(":*")


def _check_pass_role(args: ResourceValidationArgs, _config: Mapping[str, Any]) -> Iterable[str]:
    for statement in _allow_statements(args):
        passes = any("iam:passrole" in iam_db.expand(p) for p in statement.actions)
        wide = [r for r in statement.resources if _is_any_role(r)]
        if passes and wide:
            yield (
                f"{statement.label} allows iam:PassRole on {wide}; name the exact role ARNs "
                "the principal may pass (and an iam:PassedToService condition)."
            )


IAM_POLICY_DOCUMENT_VALID = resource_policy(
    name="iam-policy-document-valid",
    description="Write IAM and resource policies as valid JSON policy documents.",
    types=_ALL_POLICY_TYPES,
    check=_check_document_valid,
)
IAM_NO_WILDCARD_ACTION = resource_policy(
    name="iam-no-wildcard-action",
    description="Never allow Action '*'; list the exact actions each principal needs.",
    types=IDENTITY_POLICY_TYPES,
    check=_check_wildcard_action,
)
IAM_NO_SERVICE_WILDCARD = resource_policy(
    name="iam-no-service-wildcard",
    description="Never allow every action of a sensitive service (e.g. 'kms:*'); list actions.",
    types=IDENTITY_POLICY_TYPES,
    check=_check_service_wildcard,
    schema=_SENSITIVE_SCHEMA,
)
IAM_NO_WILDCARD_RESOURCE = resource_policy(
    name="iam-no-wildcard-resource",
    description=(
        "Use Resource '*' only for actions that do not support resource-level permissions; "
        "name resource ARNs for every other action."
    ),
    types=IDENTITY_POLICY_TYPES,
    check=_check_wildcard_resource,
    schema=_WILDCARD_RESOURCE_SCHEMA,
)
IAM_NO_NOT_ACTION_ALLOW = resource_policy(
    name="iam-no-not-action-allow",
    description="Never combine Allow with NotAction or NotResource; list what is allowed.",
    types=IDENTITY_POLICY_TYPES,
    check=_check_not_action,
)
IAM_NO_PASS_ROLE_WILDCARD = resource_policy(
    name="iam-no-pass-role-wildcard",
    description="Allow iam:PassRole only on named role ARNs, never on '*'.",
    types=IDENTITY_POLICY_TYPES,
    check=_check_pass_role,
)

POLICIES = (
    IAM_POLICY_DOCUMENT_VALID,
    IAM_NO_WILDCARD_ACTION,
    IAM_NO_SERVICE_WILDCARD,
    IAM_NO_WILDCARD_RESOURCE,
    IAM_NO_NOT_ACTION_ALLOW,
    IAM_NO_PASS_ROLE_WILDCARD,
)
