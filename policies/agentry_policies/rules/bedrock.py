"""Bedrock least privilege: model invocation only on concrete, allowlisted model ARNs."""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pulumi_policy import PolicyConfigSchema, ResourceValidationArgs

from agentry_policies import _props, iam_db
from agentry_policies._base import IDENTITY, Found, Undecided, documents, resource_policy
from agentry_policies.documents import IDENTITY_POLICY_TYPES, PolicyDocument, Statement

__all__ = [
    "BEDROCK_INFERENCE_PROFILE_GRANTS",
    "BEDROCK_INVOKE_SCOPED",
    "BEDROCK_MODEL_ALLOWLIST",
    "POLICIES",
]

#: Resource types model invocation may name; anything else (``*``, agents...) is too wide.
_MODEL_RESOURCE_TYPES = ("foundation-model", "inference-profile", "application-inference-profile")
_ARN = re.compile(
    r"^arn:(?P<partition>[^:]+):bedrock:(?P<region>[^:]*):(?P<account>[^:]*):"
    r"(?P<kind>[a-z-]+)/(?P<id>.+)$"
)
_PROFILE_CONDITION_KEY = "bedrock:InferenceProfileArn"
_FUNCTION = "aws:lambda/function:Function"

_PROFILE_ITEM = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "model": {"type": "string"},
        "regions": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["id", "model", "regions"],
}
_ALLOWLIST_SCHEMA = PolicyConfigSchema(
    properties={
        "allowedModels": {
            "type": "array",
            "items": {"type": "string"},
            "default": [],
            "description": "Foundation-model ids the stack may invoke.",
        },
        "inferenceProfiles": {
            "type": "array",
            "items": _PROFILE_ITEM,
            "default": [],
            "description": "Inference profiles the stack may invoke, with model and regions.",
        },
        "modelEnvVars": {
            "type": "array",
            "items": {"type": "string"},
            "default": ["AGENTRY_AGENTS"],
            "description": (
                "Function environment variables that name a model or profile id, or hold a "
                'JSON object of agents whose "model" each names one.'
            ),
        },
    }
)
_PROFILES_SCHEMA = PolicyConfigSchema(
    properties={"inferenceProfiles": _ALLOWLIST_SCHEMA.properties["inferenceProfiles"]}
)


@dataclass(frozen=True)
class _ModelArn:
    """A parsed Bedrock ARN naming a model-like resource."""

    arn: str
    region: str
    kind: str
    id: str


def _parse_arn(arn: str) -> _ModelArn | None:
    match = _ARN.match(arn)
    if not match:
        return None
    return _ModelArn(arn=arn, region=match["region"], kind=match["kind"], id=match["id"])


def _known_statement(statement: Statement) -> bool:
    # Unknown parts (a preview) cannot be judged: the rule reports them as undecided.
    fields = (statement.actions, statement.resources, statement.not_actions)
    return statement.effect != "Unknown" and all(
        f is None or (isinstance(f, tuple) and all(isinstance(v, str) for v in f)) for f in fields
    )


def _identity_documents(args: ResourceValidationArgs) -> tuple[list[PolicyDocument], list[Any]]:
    """Known identity documents, plus Undecided for documents or statements not known yet."""
    parsed, undecided = documents(args.resource_type, args.props, IDENTITY)
    found: list[Any] = list(undecided)
    for document in parsed:
        if not all(_known_statement(s) for s in document.statements):
            found.append(Undecided(document.source))
    known = [d for d in parsed if all(_known_statement(s) for s in d.statements)]
    return known, found


def _invocations(statement: Statement) -> frozenset[str]:
    """The model-invocation actions an Allow statement grants, wildcards expanded."""
    invoke = iam_db.model_invocation_actions()
    if not statement.allows:
        return frozenset()
    if statement.not_actions is not None:
        excluded = {a for pattern in statement.not_actions for a in iam_db.expand(pattern)}
        return invoke - excluded
    return frozenset(a for pattern in statement.actions for a in iam_db.expand(pattern) & invoke)


def _invoking(documents: list[PolicyDocument]) -> Iterable[tuple[Statement, frozenset[str]]]:
    for document in documents:
        for statement in document.statements:
            granted = _invocations(statement)
            if granted:
                yield statement, granted


def _is_wildcard(value: str) -> bool:
    return "*" in value or "?" in value


def _check_scoped(args: ResourceValidationArgs, _config: Mapping[str, Any]) -> Found:
    known, undecided = _identity_documents(args)
    yield from undecided
    for statement, granted in _invoking(known):
        actions = sorted(granted)
        if statement.not_resources is not None:
            yield (
                f"{statement.label} grants {actions} with NotResource; name concrete "
                "foundation-model or inference-profile ARNs in Resource instead."
            )
        for resource in statement.resources:
            parsed = _parse_arn(resource)
            if _is_wildcard(resource) or parsed is None or parsed.kind not in _MODEL_RESOURCE_TYPES:
                yield (
                    f"{statement.label} grants {actions} on '{resource}'; grant them only on "
                    "concrete foundation-model, inference-profile or "
                    "application-inference-profile ARNs (no wildcards)."
                )


def _allowed_ids(config: Mapping[str, Any]) -> tuple[set[str], set[str]]:
    models = set(config.get("allowedModels", []))
    profiles = {str(p.get("id")) for p in config.get("inferenceProfiles", [])}
    return models, profiles


def _named_models(name: str, value: str) -> list[tuple[str, str]]:
    """``(where, model id)`` of a variable: a plain id, or ``{"agent": {"model": ...}}`` JSON."""
    try:
        decoded = json.loads(value)
    except ValueError:
        return [(name, value)]
    if not isinstance(decoded, dict):
        return [(name, value)]
    return [
        (f"{name}.{agent}.model", str(entry.get("model")))
        for agent, entry in sorted(decoded.items())
        if isinstance(entry, dict)
    ]


def _check_allowlist(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Found:
    models, profiles = _allowed_ids(config)
    if args.resource_type == _FUNCTION:
        variables = _props.peek(args.props, "environment", "variables")
        for name in config.get("modelEnvVars", []):
            value = _props.peek(variables, name)
            if value is _props.UNKNOWN:
                yield Undecided(f"environment.variables.{name}")
                continue
            if not isinstance(value, str):
                continue
            for where, model in _named_models(name, value):
                if model not in models | profiles:
                    yield (
                        f"environment variable {where} names model {model!r}, outside the "
                        "allowlist; use one of the stack's models or inference profiles, or "
                        "add it to the stack config and the pack config."
                    )
        return
    known, undecided = _identity_documents(args)
    yield from undecided
    for statement, _granted in _invoking(known):
        for resource in statement.resources:
            parsed = _parse_arn(resource)
            if parsed is None or _is_wildcard(resource):
                continue  # the scoping rule reports these
            allowed = models if parsed.kind == "foundation-model" else profiles
            if parsed.kind in _MODEL_RESOURCE_TYPES and parsed.id not in allowed:
                yield (
                    f"{statement.label} grants invocation of {parsed.kind} '{parsed.id}', "
                    "which is not in the allowlist; remove it, or add it to the stack config "
                    "and the pack config."
                )


def _grants_profile_route(
    statement: Statement, action: str, model_arn: str, profile_arn: str
) -> bool:
    if action not in _invocations(statement):
        return False
    if not any(fnmatch.fnmatchcase(model_arn, r) for r in statement.resources):
        return False
    return any(
        fnmatch.fnmatchcase(profile_arn, value)
        for value in statement.condition_values(_PROFILE_CONDITION_KEY)
    )


def _check_profile_grants(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Found:
    profiles = {str(p.get("id")): p for p in config.get("inferenceProfiles", [])}
    known, undecided = _identity_documents(args)
    yield from undecided
    for document in known:
        for statement, granted in _invoking([document]):
            for resource in statement.resources:
                parsed = _parse_arn(resource)
                if (
                    parsed is None
                    or parsed.kind != "inference-profile"
                    or parsed.id not in profiles
                ):
                    continue
                yield from _missing_routes(document, parsed, profiles[parsed.id], granted)


def _missing_routes(
    document: PolicyDocument, profile: _ModelArn, spec: Mapping[str, Any], granted: frozenset[str]
) -> Iterable[str]:
    partition = profile.arn.split(":", 2)[1]
    model = str(spec.get("model"))
    for region in spec.get("regions", []):
        model_arn = f"arn:{partition}:bedrock:{region}::foundation-model/{model}"
        missing = sorted(
            action
            for action in granted
            if not any(
                _grants_profile_route(s, action, model_arn, profile.arn)
                for s in document.statements
            )
        )
        if missing:
            yield (
                f"grants inference profile '{profile.id}' but not {missing} on '{model_arn}' "
                f"with a {_PROFILE_CONDITION_KEY} condition naming '{profile.arn}'; add that "
                "statement for every destination region of the profile."
            )


BEDROCK_INVOKE_SCOPED = resource_policy(
    name="bedrock-invoke-scoped",
    description=(
        "Grant Bedrock model invocation (and any wildcard or NotAction that expands to it) only "
        "on concrete foundation-model, inference-profile or application-inference-profile ARNs "
        "(no checkov/cfn-nag equivalent; closest checkov CKV_AWS_355)."
    ),
    types=IDENTITY_POLICY_TYPES,
    check=_check_scoped,
)
BEDROCK_MODEL_ALLOWLIST = resource_policy(
    name="bedrock-model-allowlist",
    description=(
        "Invoke only the models and inference profiles the stack allowlists, in IAM grants and "
        "in the model ids functions are configured with; add a model to the stack config and "
        "the pack config together (no checkov/cfn-nag equivalent)."
    ),
    types=IDENTITY_POLICY_TYPES | {_FUNCTION},
    check=_check_allowlist,
    schema=_ALLOWLIST_SCHEMA,
)
BEDROCK_INFERENCE_PROFILE_GRANTS = resource_policy(
    name="bedrock-inference-profile-grants",
    description=(
        "Pair every inference-profile grant with foundation-model grants in each destination "
        f"region, scoped by the {_PROFILE_CONDITION_KEY} condition (no checkov/cfn-nag "
        "equivalent)."
    ),
    types=IDENTITY_POLICY_TYPES,
    check=_check_profile_grants,
    schema=_PROFILES_SCHEMA,
)

POLICIES = (BEDROCK_INVOKE_SCOPED, BEDROCK_MODEL_ALLOWLIST, BEDROCK_INFERENCE_PROFILE_GRANTS)
