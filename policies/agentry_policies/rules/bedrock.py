"""Bedrock least privilege: model invocation only on concrete, allowlisted model ARNs, in the IAM
shape AWS documents for each kind of inference profile.

- geographic (``us.``, ``eu.``, ``apac.``...): the profile ARN, and the foundation model in every
  destination region scoped by ``bedrock:InferenceProfileArn`` (Bedrock user guide, "Geographic
  cross-Region inference");
- global (``global.``): the profile ARN and the foundation model in the source region, and the
  region-less ``arn:aws:bedrock:::foundation-model/<model>`` under ``aws:RequestedRegion`` =
  ``unspecified`` and the profile (Bedrock user guide, "Global cross-Region inference", IAM
  policy requirements);
- application (an ``application-inference-profile`` ARN): the profile ARN, and the foundation
  model in each of its regions scoped by ``bedrock:InferenceProfileArn`` ("Prerequisites for
  inference profiles").

The pack keeps its own allowlist (its config), independent of the stack's: it is a guardrail.
"""

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
_REQUESTED_REGION_KEY = "aws:RequestedRegion"
_UNSPECIFIED = "unspecified"
_FUNCTION = "aws:lambda/function:Function"
_APPLICATION_ARN = re.compile(r"^arn:[^:]+:bedrock:[^:]+:\d{12}:application-inference-profile/.+$")

_PROFILE_ITEM = {
    "type": "object",
    "properties": {
        "id": {
            "type": "string",
            "description": "A system profile id (us., eu., global....) or an application "
            "inference profile ARN.",
        },
        "model": {"type": "string"},
        "regions": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Destination regions (geographic and application profiles; a global "
            "profile's model grant is region-less).",
        },
    },
    "required": ["id", "model"],
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


def _profile_kind(profile_id: str) -> str:
    """``application`` (an ARN), ``global`` (``global.``) or ``geographic``."""
    if _APPLICATION_ARN.match(profile_id):
        return "application"
    return "global" if profile_id.startswith("global.") else "geographic"


def _positive_values(statement: Statement, key: str) -> tuple[str, ...] | None:
    """Values a statement requires of condition ``key`` through a positive operator (Equals or
    Like, not IfExists); None when it does not require the key at all."""
    found: list[str] = []
    required = False
    for condition in statement.conditions:
        if condition.key.lower() != key.lower():
            continue
        qualifier, _base, if_exists = condition.parts
        if condition.negated or if_exists or qualifier is not None:
            continue
        required = True
        found.extend(v for v in condition.values if isinstance(v, str))
    return tuple(found) if required else None


def _only_unspecified_region(statement: Statement) -> bool:
    values = _positive_values(statement, _REQUESTED_REGION_KEY)
    return bool(values) and all(v == _UNSPECIFIED for v in values or ())


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
            elif parsed.region == "" and (
                parsed.kind != "foundation-model"
                or not _only_unspecified_region(statement)
                or not _positive_values(statement, _PROFILE_CONDITION_KEY)
            ):
                yield (
                    f"{statement.label} grants {actions} on the region-less '{resource}'; grant "
                    "a region-less foundation model only as the global-profile shape AWS "
                    f"documents: with {_REQUESTED_REGION_KEY} = '{_UNSPECIFIED}' and a "
                    f"{_PROFILE_CONDITION_KEY} condition naming the global profile."
                )


def _allowed_ids(config: Mapping[str, Any]) -> tuple[set[str], set[str]]:
    models = set(config.get("allowedModels", []))
    profiles = {str(p.get("id")) for p in config.get("inferenceProfiles", [])}
    return models, profiles


def _profile_models(config: Mapping[str, Any]) -> dict[str, str]:
    """Allowlisted profile id (or application profile ARN) -> its foundation model."""
    return {str(p.get("id")): str(p.get("model")) for p in config.get("inferenceProfiles", [])}


def _named_profile(arn: str) -> str | None:
    """The allowlist key of a profile ARN: a system profile's id, an application profile's ARN."""
    parsed = _parse_arn(arn)
    if parsed is None:
        return None
    if parsed.kind == "inference-profile":
        return parsed.id
    if parsed.kind == "application-inference-profile":
        return parsed.arn
    return None


def _through_allowed_profiles(
    statement: Statement, model: str, profile_models: Mapping[str, str]
) -> bool:
    """True when the grant only works through allowlisted profiles of ``model``."""
    values = _positive_values(statement, _PROFILE_CONDITION_KEY)
    if not values:
        return False
    return all(profile_models.get(_named_profile(value) or "") == model for value in values)


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
    profile_models = _profile_models(config)
    known, undecided = _identity_documents(args)
    yield from undecided
    for statement, _granted in _invoking(known):
        for resource in statement.resources:
            parsed = _parse_arn(resource)
            if parsed is None or _is_wildcard(resource):
                continue  # the scoping rule reports these
            if parsed.kind == "foundation-model":
                allowed = parsed.id in models or _through_allowed_profiles(
                    statement, parsed.id, profile_models
                )
            elif parsed.kind in _MODEL_RESOURCE_TYPES:
                allowed = (_named_profile(parsed.arn) or "") in profiles
            else:
                continue
            if not allowed:
                yield (
                    f"{statement.label} grants invocation of {parsed.kind} '{parsed.id}', "
                    "which is not in the allowlist (a foundation model is allowed directly, or "
                    "through an allowlisted profile of it by a bedrock:InferenceProfileArn "
                    "condition); remove it, or add it to the stack config and the pack config."
                )


def _grants_profile_route(
    statement: Statement, action: str, model_arn: str, profile_arn: str, *, global_model: bool
) -> bool:
    if action not in _invocations(statement):
        return False
    if not any(fnmatch.fnmatchcase(model_arn, r) for r in statement.resources):
        return False
    if global_model and not _only_unspecified_region(statement):
        return False
    return any(
        fnmatch.fnmatchcase(profile_arn, value)
        for value in _positive_values(statement, _PROFILE_CONDITION_KEY) or ()
    )


def _check_profile_grants(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Found:
    profiles = {str(p.get("id")): p for p in config.get("inferenceProfiles", [])}
    known, undecided = _identity_documents(args)
    yield from undecided
    for document in known:
        for statement, granted in _invoking([document]):
            for resource in statement.resources:
                parsed = _parse_arn(resource)
                key = _named_profile(resource) if parsed is not None else None
                if parsed is None or key is None or key not in profiles:
                    continue
                yield from _missing_routes(document, parsed, profiles[key], granted)


def _routes(profile: _ModelArn, spec: Mapping[str, Any]) -> list[tuple[str, bool]]:
    """The foundation-model ARNs a profile's grant needs, each with whether it is the
    region-less global one."""
    partition = profile.arn.split(":", 2)[1]
    model = str(spec.get("model"))
    if _profile_kind(str(spec.get("id"))) == "global":
        return [
            (f"arn:{partition}:bedrock:{profile.region}::foundation-model/{model}", False),
            (f"arn:{partition}:bedrock:::foundation-model/{model}", True),
        ]
    return [
        (f"arn:{partition}:bedrock:{region}::foundation-model/{model}", False)
        for region in spec.get("regions", [])
    ]


def _missing_routes(
    document: PolicyDocument, profile: _ModelArn, spec: Mapping[str, Any], granted: frozenset[str]
) -> Iterable[str]:
    kind = _profile_kind(str(spec.get("id")))
    if kind != "global" and not spec.get("regions"):
        yield (
            f"grants {kind} inference profile '{profile.id}', whose destination regions the "
            "pack config does not list; add its regions to the profile's entry."
        )
        return
    for model_arn, global_model in _routes(profile, spec):
        missing = sorted(
            action
            for action in granted
            if not any(
                _grants_profile_route(s, action, model_arn, profile.arn, global_model=global_model)
                for s in document.statements
            )
        )
        if not missing:
            continue
        if global_model:
            yield (
                f"grants global inference profile '{profile.id}' but not {missing} on the "
                f"region-less '{model_arn}' with {_REQUESTED_REGION_KEY} = '{_UNSPECIFIED}' and a "
                f"{_PROFILE_CONDITION_KEY} condition naming '{profile.arn}'; add that statement "
                "(Bedrock user guide, global cross-Region inference: IAM policy requirements)."
            )
        else:
            where = "source region" if kind == "global" else "every destination region"
            yield (
                f"grants inference profile '{profile.id}' but not {missing} on '{model_arn}' "
                f"with a {_PROFILE_CONDITION_KEY} condition naming '{profile.arn}'; add that "
                f"statement for the {where} of the profile."
            )


BEDROCK_INVOKE_SCOPED = resource_policy(
    name="bedrock-invoke-scoped",
    description=(
        "Grant Bedrock model invocation (and any wildcard or NotAction that expands to it) only "
        "on concrete foundation-model, inference-profile or application-inference-profile ARNs; "
        "a region-less foundation model only in the global-profile shape (no checkov/cfn-nag "
        "equivalent; closest checkov CKV_AWS_355)."
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
        "Pair every inference-profile grant with the foundation-model grants its kind needs, "
        f"scoped by the {_PROFILE_CONDITION_KEY} condition: each destination region for a "
        "geographic or application profile; the source region and the region-less model under "
        f"{_REQUESTED_REGION_KEY} = '{_UNSPECIFIED}' for a global profile (no checkov/cfn-nag "
        "equivalent)."
    ),
    types=IDENTITY_POLICY_TYPES,
    check=_check_profile_grants,
    schema=_PROFILES_SCHEMA,
)

POLICIES = (BEDROCK_INVOKE_SCOPED, BEDROCK_MODEL_ALLOWLIST, BEDROCK_INFERENCE_PROFILE_GRANTS)
