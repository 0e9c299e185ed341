"""IAM least privilege for identity policies (role policies, managed policies, inline policies)."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from typing import Any

from pulumi_policy import PolicyConfigSchema, ResourceValidationArgs

from agentry_policies import _props, iam_db
from agentry_policies._base import (
    IDENTITY,
    TRUST,
    Found,
    Undecided,
    documents,
    resource_policy,
)
from agentry_policies.documents import (
    DOCUMENT_INPUTS,
    IDENTITY_POLICY_TYPES,
    RESTRICTING_CONDITION_KEYS,
    PolicyDocumentError,
    Statement,
    UndecidableError,
    is_public,
    parse_document,
    raw_documents,
)

__all__ = [
    "IAM_NO_NOT_ACTION_ALLOW",
    "IAM_NO_PASS_ROLE_WILDCARD",
    "IAM_NO_PRIVILEGED_MANAGED_POLICY",
    "IAM_NO_SERVICE_WILDCARD",
    "IAM_NO_USERS",
    "IAM_NO_WILDCARD_ACTION",
    "IAM_NO_WILDCARD_RESOURCE",
    "IAM_POLICY_DOCUMENT_VALID",
    "IAM_TRUST_POLICY_RESTRICTED",
    "POLICIES",
]

_ALL_POLICY_TYPES = frozenset(DOCUMENT_INPUTS)
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


def _allow_statements(args: ResourceValidationArgs) -> Iterable[Statement | Undecided]:
    """Allow statements of the resource's identity policies; Undecided for unknown documents."""
    parsed, undecided = documents(args.resource_type, args.props, IDENTITY)
    yield from undecided
    for document in parsed:
        for statement in document.statements:
            if statement.effect == "Unknown":
                yield Undecided(f"{document.source} Effect")
            elif statement.allows:
                yield statement


def _known(value: Any) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, tuple) else ()


def _shown(value: Any) -> str:
    return str(list(_known(value))) if isinstance(value, tuple) else "(not known yet)"


def _named(actions: Iterable[str]) -> str:
    ordered = sorted(actions)
    shown = ", ".join(ordered[:_LISTED])
    more = len(ordered) - _LISTED
    return f"{shown} and {more} more" if more > 0 else shown


def _check_document_valid(args: ResourceValidationArgs, _config: Mapping[str, Any]) -> Found:
    for source, raw, kind in raw_documents(args.resource_type, args.props):
        try:
            parse_document(raw, source, kind)
        except UndecidableError:
            yield Undecided(source)
        except PolicyDocumentError as exc:
            yield f"{exc}; fix the policy document so IAM (and this pack) can evaluate it."


def _check_wildcard_action(args: ResourceValidationArgs, _config: Mapping[str, Any]) -> Found:
    for statement in _allow_statements(args):
        if isinstance(statement, Undecided):
            yield statement
            continue
        for pattern in statement.known_actions:
            if set(pattern.strip()) <= {"*", ":", "?"}:
                yield (
                    f"{statement.label} allows action '{pattern}' (every action of every "
                    "service); list the exact actions the principal needs."
                )


def _check_service_wildcard(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Found:
    sensitive = {s.lower() for s in config.get("sensitiveServices", [])}
    for statement in _allow_statements(args):
        if isinstance(statement, Undecided):
            yield statement
            continue
        for pattern in statement.known_actions:
            service = pattern.strip().lower().partition(":")[0]
            if service in sensitive and iam_db.is_service_wide(pattern):
                yield (
                    f"{statement.label} allows '{pattern}', every action of the sensitive "
                    f"service '{service}'; list the exact actions the principal needs."
                )


def _check_wildcard_resource(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Found:
    exempt = {a.lower() for a in config.get("exemptActions", [])}
    for statement in _allow_statements(args):
        if isinstance(statement, Undecided):
            yield statement
            continue
        if "*" not in (r.strip() for r in _known(statement.resources)):
            continue
        scoped: set[str] = set()
        for pattern in statement.known_actions:
            expanded = iam_db.expand(pattern) or {pattern.lower()}
            scoped.update(
                a for a in expanded if a not in exempt and iam_db.supports_resource_level(a)
            )
        if scoped:
            yield (
                f"{statement.label} allows {_named(scoped)} on Resource '*' although "
                "they support resource-level permissions; name the resource ARNs instead."
            )


def _check_not_action(args: ResourceValidationArgs, _config: Mapping[str, Any]) -> Found:
    for statement in _allow_statements(args):
        if isinstance(statement, Undecided):
            yield statement
            continue
        for key, value in (
            ("NotAction", statement.not_actions),
            ("NotResource", statement.not_resources),
        ):
            if value is not None:
                yield (
                    f"{statement.label} combines Allow with {key} {_shown(value)}, which grants "
                    "everything not listed; list what is allowed in Action/Resource instead."
                )


def _is_any_role(resource: str) -> bool:
    resource = resource.strip()
    return resource == "*" or resource.endswith(":role/*") or resource.endswith(":*")


def _check_pass_role(args: ResourceValidationArgs, _config: Mapping[str, Any]) -> Found:
    for statement in _allow_statements(args):
        if isinstance(statement, Undecided):
            yield statement
            continue
        passes = any("iam:passrole" in iam_db.expand(p) for p in statement.known_actions)
        wide = [r for r in _known(statement.resources) if _is_any_role(r)]
        if passes and wide:
            yield (
                f"{statement.label} allows iam:PassRole on {wide}; name the exact role ARNs "
                "the principal may pass (and an iam:PassedToService condition)."
            )


IAM_POLICY_DOCUMENT_VALID = resource_policy(
    name="iam-policy-document-valid",
    description=(
        "Write every identity, trust and resource policy as a valid JSON policy document (an "
        "Effect of Allow or Deny, string or list fields, Principal or NotPrincipal, not both) so "
        "IAM and this pack read it the same way. No checkov/cfn-nag equivalent (they skip it)."
    ),
    types=_ALL_POLICY_TYPES,
    check=_check_document_valid,
)
IAM_NO_WILDCARD_ACTION = resource_policy(
    name="iam-no-wildcard-action",
    description=(
        "List the exact actions each principal needs; never allow Action '*' in an identity "
        "policy (checkov CKV_AWS_62, CKV_AWS_63; cfn-nag F3, F4, F5)."
    ),
    types=IDENTITY_POLICY_TYPES,
    check=_check_wildcard_action,
)
IAM_NO_SERVICE_WILDCARD = resource_policy(
    name="iam-no-service-wildcard",
    description=(
        "List the actions needed instead of every action of a sensitive service such as "
        "'kms:*' or 'iam:*' (checkov CKV2_AWS_40, CKV_AWS_289; cfn-nag none)."
    ),
    types=IDENTITY_POLICY_TYPES,
    check=_check_service_wildcard,
    schema=_SENSITIVE_SCHEMA,
)
IAM_NO_WILDCARD_RESOURCE = resource_policy(
    name="iam-no-wildcard-resource",
    description=(
        "Name resource ARNs for every action that supports resource-level permissions; keep "
        "Resource '*' for the others (checkov CKV_AWS_355; cfn-nag W11, W12, W13)."
    ),
    types=IDENTITY_POLICY_TYPES,
    check=_check_wildcard_resource,
    schema=_WILDCARD_RESOURCE_SCHEMA,
)
IAM_NO_NOT_ACTION_ALLOW = resource_policy(
    name="iam-no-not-action-allow",
    description=(
        "List what is allowed in Action and Resource; never combine Allow with NotAction or "
        "NotResource (checkov none; cfn-nag W15, W16, W17, W21, W22, W23)."
    ),
    types=IDENTITY_POLICY_TYPES,
    check=_check_not_action,
)
IAM_NO_PASS_ROLE_WILDCARD = resource_policy(
    name="iam-no-pass-role-wildcard",
    description=(
        "Allow iam:PassRole only on named role ARNs, never on '*' (checkov CKV_AWS_286; "
        "cfn-nag F38, F39, F40)."
    ),
    types=IDENTITY_POLICY_TYPES,
    check=_check_pass_role,
)

# --- managed policies, users, trust policies ------------------------------------------------

_ROLE = "aws:iam/role:Role"
#: Resource type -> the inputs that name managed policy ARNs (single value or list).
_ATTACHMENTS = {
    _ROLE: "managedPolicyArns",
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": "policyArn",
    "aws:iam/userPolicyAttachment:UserPolicyAttachment": "policyArn",
    "aws:iam/groupPolicyAttachment:GroupPolicyAttachment": "policyArn",
    "aws:iam/policyAttachment:PolicyAttachment": "policyArn",
    "aws:iam/rolePolicyAttachmentsExclusive:RolePolicyAttachmentsExclusive": "policyArns",
    "aws:iam/userPolicyAttachmentsExclusive:UserPolicyAttachmentsExclusive": "policyArns",
    "aws:iam/groupPolicyAttachmentsExclusive:GroupPolicyAttachmentsExclusive": "policyArns",
}
_AWS_MANAGED = ":iam::aws:policy/"
_MANAGED_SCHEMA = PolicyConfigSchema(
    properties={
        "forbiddenPolicies": {
            "type": "array",
            "items": {"type": "string"},
            "default": [
                "AdministratorAccess",
                "AdministratorAccess-*",
                "PowerUserAccess",
                "IAMFullAccess",
                "*FullAccess",
                "*_FullAccess",
                "job-function/*Administrator",
            ],
            "description": "AWS managed policy names (patterns, path included) never attached.",
        }
    }
)
#: Every resource that creates or empowers an IAM user (users hold long-lived credentials).
_USER_TYPES = frozenset(
    {
        "aws:iam/user:User",
        "aws:iam/accessKey:AccessKey",
        "aws:iam/userLoginProfile:UserLoginProfile",
        "aws:iam/userPolicy:UserPolicy",
        "aws:iam/userPolicyAttachment:UserPolicyAttachment",
        "aws:iam/userPolicyAttachmentsExclusive:UserPolicyAttachmentsExclusive",
        "aws:iam/userGroupMembership:UserGroupMembership",
        "aws:iam/policyAttachment:PolicyAttachment",
    }
)
_TRUST_SCHEMA = PolicyConfigSchema(
    properties={
        "restrictingConditionKeys": {
            "type": "array",
            "items": {"type": "string"},
            "default": list(RESTRICTING_CONDITION_KEYS),
            "description": "Condition keys that make a trust of '*' specific (with real values).",
        }
    }
)


def _managed_name(arn: str) -> str:
    return arn.split(_AWS_MANAGED, 1)[1] if _AWS_MANAGED in arn else ""


def _check_managed(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Found:
    value = _props.peek(args.props, _ATTACHMENTS[args.resource_type])
    if value is _props.UNKNOWN:
        yield Undecided(_ATTACHMENTS[args.resource_type])
        return
    patterns = list(config.get("forbiddenPolicies", []))
    for arn in _props.as_list(value):
        if _props.is_unknown(arn):
            yield Undecided(_ATTACHMENTS[args.resource_type])
            continue
        name = _managed_name(_props.text(arn))
        if name and any(fnmatch.fnmatchcase(name, p) for p in patterns):
            yield (
                f"attaches the AWS managed policy '{name}', which grants far more than any "
                "Agentry function needs; write a policy of explicit statements instead."
            )


def _check_users(args: ResourceValidationArgs, _config: Mapping[str, Any]) -> Found:
    if args.resource_type == "aws:iam/policyAttachment:PolicyAttachment":
        users = _props.peek(args.props, "users")
        if users is _props.UNKNOWN:
            yield Undecided("users")
        elif not _props.as_list(users):
            return
    yield (
        "declares an IAM user, its credentials or its permissions; give workloads roles and "
        "people federated (IAM Identity Center) roles, never long-lived user keys."
    )


def _trust_problems(statement: Statement, keys: list[str]) -> Iterable[str | Undecided]:
    if statement.effect != "Allow":
        if statement.effect == "Unknown":
            yield Undecided("assumeRolePolicy Effect")
        return
    if statement.not_principals is not None:
        yield f"{statement.label} trusts everyone but a few (NotPrincipal); name who may assume."
    if statement.not_actions is not None:
        yield f"{statement.label} uses NotAction in a trust policy; allow sts:AssumeRole* only."
    if any(set(a) <= {"*", ":", "?"} or a.lower() == "sts:*" for a in statement.known_actions):
        yield f"{statement.label} allows every action in a trust policy; allow sts:AssumeRole."
    if statement.not_principals is None:
        public = is_public(statement, keys)
        if public is None:
            yield Undecided("assumeRolePolicy")
        elif public:
            yield (
                f"{statement.label} lets any principal ('*') assume the role; name the service "
                "or role ARNs that may assume it, or pin callers with aws:PrincipalOrgID."
            )


def _check_trust(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Found:
    parsed, undecided = documents(args.resource_type, args.props, TRUST)
    yield from undecided
    keys = list(config.get("restrictingConditionKeys", []))
    for document in parsed:
        for statement in document.statements:
            yield from _trust_problems(statement, keys)


IAM_NO_PRIVILEGED_MANAGED_POLICY = resource_policy(
    name="iam-no-privileged-managed-policy",
    description=(
        "Attach no AWS managed admin or full-access policy (AdministratorAccess, PowerUserAccess, "
        "IAMFullAccess, *FullAccess) to a role, user or group, whether through managedPolicyArns "
        "or an attachment; grant explicit statements instead (checkov CKV_AWS_274, CKV2_AWS_56; "
        "cfn-nag W43, W44)."
    ),
    types=frozenset(_ATTACHMENTS),
    check=_check_managed,
    schema=_MANAGED_SCHEMA,
)
IAM_NO_USERS = resource_policy(
    name="iam-no-users",
    description=(
        "Declare no IAM users, access keys, login profiles or user policies; use roles for "
        "workloads and federated roles for people (checkov CKV_AWS_273, CKV_AWS_40; cfn-nag "
        "F10, F11, F12, F51, F2000)."
    ),
    types=_USER_TYPES,
    check=_check_users,
)
IAM_TRUST_POLICY_RESTRICTED = resource_policy(
    name="iam-trust-policy-restricted",
    description=(
        "Let only named services or roles assume a role: no Principal '*' (or {'AWS': '*'}) "
        "without a concrete restricting condition, no NotPrincipal, no wildcard or NotAction "
        "in a trust policy (checkov CKV_AWS_60, CKV_AWS_61; cfn-nag F2, F6, W14)."
    ),
    types=frozenset({_ROLE}),
    check=_check_trust,
    schema=_TRUST_SCHEMA,
)


POLICIES = (
    IAM_POLICY_DOCUMENT_VALID,
    IAM_NO_WILDCARD_ACTION,
    IAM_NO_SERVICE_WILDCARD,
    IAM_NO_WILDCARD_RESOURCE,
    IAM_NO_NOT_ACTION_ALLOW,
    IAM_NO_PASS_ROLE_WILDCARD,
    IAM_NO_PRIVILEGED_MANAGED_POLICY,
    IAM_NO_USERS,
    IAM_TRUST_POLICY_RESTRICTED,
)
