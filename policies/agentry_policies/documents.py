"""IAM policy documents: one parser for identity, trust and resource policies, and an evaluator.

Every rule of the pack reads documents through :func:`parse_document`, so a principal, a
``NotPrincipal``, a condition or a ``NotAction`` means the same thing whether it sits in a role
policy, a queue policy or a bus policy. Values that are not known yet (a first preview) are kept
as :data:`~agentry_policies._props.UNKNOWN`, so a statement can be judged on what is known.

:func:`evaluate` answers "would this request be allowed by these documents?" with the IAM
evaluation logic for one policy type: an explicit Deny wins, then an Allow, else the implicit
deny (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html).
It decides with three-valued logic: a part that depends on an unknown value makes the answer
unknown only when the other statements cannot settle it.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from agentry_policies import _props
from agentry_policies._props import UNKNOWN

__all__ = [
    "DOCUMENT_INPUTS",
    "IDENTITY_POLICY_TYPES",
    "RESOURCE_POLICY_TYPES",
    "RESTRICTING_CONDITION_KEYS",
    "TRUST_POLICY_TYPES",
    "Condition",
    "Decision",
    "PolicyDocument",
    "PolicyDocumentError",
    "Request",
    "Statement",
    "UndecidableError",
    "action_matches",
    "evaluate",
    "is_public",
    "matching",
    "parse_document",
    "raw_documents",
]

#: Policy inputs of each resource type: (input path, kind). ``inlinePolicies[*]`` is expanded.
#: Identity policies are attached to a principal (Resource is their only boundary); resource and
#: trust policies are attached to a resource (Principal decides who may act).
DOCUMENT_INPUTS: Mapping[str, tuple[tuple[str, str], ...]] = {
    "aws:iam/rolePolicy:RolePolicy": (("policy", "identity"),),
    "aws:iam/policy:Policy": (("policy", "identity"),),
    "aws:iam/userPolicy:UserPolicy": (("policy", "identity"),),
    "aws:iam/groupPolicy:GroupPolicy": (("policy", "identity"),),
    "aws:iam/role:Role": (("inlinePolicies[*].policy", "identity"), ("assumeRolePolicy", "trust")),
    "aws:sqs/queuePolicy:QueuePolicy": (("policy", "resource"),),
    "aws:sqs/queue:Queue": (("policy", "resource"),),
    "aws:sns/topicPolicy:TopicPolicy": (("policy", "resource"),),
    "aws:sns/topic:Topic": (("policy", "resource"),),
    "aws:cloudwatch/eventBusPolicy:EventBusPolicy": (("policy", "resource"),),
    "aws:kms/key:Key": (("policy", "resource"),),
    "aws:kms/keyPolicy:KeyPolicy": (("policy", "resource"),),
    "aws:s3/bucketPolicy:BucketPolicy": (("policy", "resource"),),
    "aws:s3/bucket:Bucket": (("policy", "resource"),),
    "aws:s3/bucketV2:BucketV2": (("policy", "resource"),),
}
IDENTITY_POLICY_TYPES = frozenset(
    t for t, inputs in DOCUMENT_INPUTS.items() if any(k == "identity" for _p, k in inputs)
)
RESOURCE_POLICY_TYPES = frozenset(
    t for t, inputs in DOCUMENT_INPUTS.items() if any(k == "resource" for _p, k in inputs)
)
TRUST_POLICY_TYPES = frozenset(
    t for t, inputs in DOCUMENT_INPUTS.items() if any(k == "trust" for _p, k in inputs)
)

_OPERATOR = re.compile(
    r"^(?:(?P<qualifier>ForAnyValue|ForAllValues):)?(?P<base>[A-Za-z]+?)(?P<if_exists>IfExists)?$"
)
_NEGATED = {"StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike", "ArnNotEquals",
            "ArnNotLike"}  # fmt: skip
_ACCOUNT = re.compile(r"^\d{12}$")


class PolicyDocumentError(ValueError):
    """A policy input that is not a valid IAM policy document; names the input and the reason."""


class UndecidableError(Exception):
    """The answer depends on a value that is unknown (a preview) or on an unsupported operator."""


@dataclass(frozen=True)
class Condition:
    """One ``operator: {key: values}`` test; ``values`` may hold :data:`UNKNOWN`."""

    operator: str
    key: str
    values: tuple[Any, ...]

    @property
    def parts(self) -> tuple[str | None, str, bool]:
        """(ForAnyValue/ForAllValues or None, base operator, IfExists)."""
        match = _OPERATOR.match(self.operator)
        if not match:
            return None, self.operator, False
        return match["qualifier"], match["base"], bool(match["if_exists"])

    @property
    def negated(self) -> bool:
        """True for the Not operators (StringNotEquals, ArnNotLike...)."""
        return self.parts[1] in _NEGATED


@dataclass(frozen=True)
class Statement:
    """One statement, every list-or-string field normalised to a tuple.

    ``principals``/``not_principals`` map a principal type (``AWS``, ``Service``, ...) to its
    values; the bare ``"*"`` principal is ``{"*": ("*",)}``. None means the element is absent.
    Any field may be :data:`UNKNOWN` (or hold it) while a preview has not resolved it.
    """

    effect: str
    actions: Any = ()
    not_actions: Any = None
    resources: Any = ()
    not_resources: Any = None
    principals: Any = None
    not_principals: Any = None
    conditions: tuple[Condition, ...] = field(default_factory=tuple)
    sid: str = ""

    @property
    def allows(self) -> bool:
        """True for an Allow statement."""
        return self.effect == "Allow"

    @property
    def label(self) -> str:
        """How a violation names this statement: its Sid, or its actions."""
        if self.sid:
            return f"statement {self.sid!r}"
        shown = self.actions if isinstance(self.actions, tuple) else "?"
        return f"statement {list(shown) if isinstance(shown, tuple) else shown}"

    @property
    def known_actions(self) -> tuple[str, ...]:
        """The Action patterns that are known (unknown ones left out)."""
        return _known(self.actions)

    @property
    def principal_values(self) -> tuple[str, ...]:
        """Every known principal value of any type (``*`` for the bare wildcard)."""
        return _principal_values(self.principals)

    @property
    def everyone(self) -> bool:
        """True when the statement names every principal (``"*"``, ``{"AWS": "*"}``, ...) or
        uses NotPrincipal (which names everyone but a few)."""
        return "*" in self.principal_values or self.not_principals is not None

    def condition_values(self, key: str) -> tuple[str, ...]:
        """Every known value any operator tests for condition ``key`` (case-insensitive key)."""
        found: list[str] = []
        for condition in self.conditions:
            if condition.key.lower() == key.lower():
                found.extend(v for v in condition.values if isinstance(v, str))
        return tuple(found)

    def grants(self, action: str) -> bool | None:
        """True when Action/NotAction covers ``action``; None when that depends on an unknown."""
        if self.not_actions is not None:
            result = _any_match(self.not_actions, action, action_matches)
            return None if result is None else not result
        return _any_match(self.actions, action, action_matches)


@dataclass(frozen=True)
class PolicyDocument:
    """A parsed document, where it came from (``policy``, ``inlinePolicies[0].policy``...) and its
    kind (``identity``, ``resource`` or ``trust``)."""

    source: str
    statements: tuple[Statement, ...]
    kind: str = "identity"


# --- parsing ---------------------------------------------------------------------------------


def _known(value: Any) -> tuple[str, ...]:
    if not isinstance(value, tuple):
        return ()
    return tuple(v for v in value if isinstance(v, str))


def _principal_values(principals: Any) -> tuple[str, ...]:
    if not isinstance(principals, Mapping):
        return ()
    return tuple(v for values in principals.values() for v in _known(values))


def _strings(value: Any, where: str) -> Any:
    if value is UNKNOWN:
        return UNKNOWN
    items = _props.as_list(value)
    if not all(isinstance(item, str) or item is UNKNOWN for item in items):
        raise PolicyDocumentError(f"{where}: expected a string or a list of strings")
    return tuple(items)


def _optional_strings(raw: Mapping[str, Any], key: str, where: str) -> Any:
    return _strings(raw[key], f"{where}.{key}") if key in raw else None


def _principals(raw: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in raw:
        return None
    value = raw[key]
    if value is UNKNOWN:
        return UNKNOWN
    if value == "*":
        return {"*": ("*",)}
    if isinstance(value, Mapping):
        return {str(kind): _strings(value[kind], f"{where}.{key}.{kind}") for kind in value}
    raise PolicyDocumentError(f"{where}.{key}: expected '*' or a mapping of principal types")


def _conditions(value: Any, where: str) -> tuple[Condition, ...]:
    if value is None:
        return ()
    if value is UNKNOWN:
        return (Condition("Unknown", "unknown", (UNKNOWN,)),)
    if not isinstance(value, Mapping):
        raise PolicyDocumentError(f"{where}: expected a mapping of condition operators")
    parsed: list[Condition] = []
    for operator, operands in value.items():
        if operands is UNKNOWN:
            parsed.append(Condition(str(operator), "unknown", (UNKNOWN,)))
            continue
        if not isinstance(operands, Mapping):
            raise PolicyDocumentError(f"{where}.{operator}: expected a mapping of condition keys")
        for key, values in operands.items():
            items = (values,) if values is UNKNOWN else tuple(_props.as_list(values))
            # Condition values are strings in IAM; JSON true/1 are compared as their text.
            normal = tuple(v if v is UNKNOWN else _scalar_text(v) for v in items)
            parsed.append(Condition(str(operator), str(key), normal))
    return tuple(parsed)


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _statement(raw: Any, where: str) -> Statement:
    if not isinstance(raw, Mapping):
        raise PolicyDocumentError(f"{where}: expected a statement object")
    effect = raw.get("Effect")
    if effect is UNKNOWN:
        effect = "Unknown"
    elif effect not in ("Allow", "Deny"):
        raise PolicyDocumentError(f"{where}.Effect: expected 'Allow' or 'Deny', got {effect!r}")
    if "Principal" in raw and "NotPrincipal" in raw:
        raise PolicyDocumentError(f"{where}: Principal and NotPrincipal are exclusive")
    sid = raw.get("Sid")
    return Statement(
        effect=effect,
        actions=_strings(raw.get("Action"), f"{where}.Action"),
        not_actions=_optional_strings(raw, "NotAction", where),
        resources=_strings(raw.get("Resource"), f"{where}.Resource"),
        not_resources=_optional_strings(raw, "NotResource", where),
        principals=_principals(raw, "Principal", where),
        not_principals=_principals(raw, "NotPrincipal", where),
        conditions=_conditions(raw.get("Condition"), f"{where}.Condition"),
        sid=sid if isinstance(sid, str) else "",
    )


def parse_document(value: Any, source: str, kind: str = "identity") -> PolicyDocument:
    """Parse a policy given as a JSON string or a mapping (engine proxies welcome).

    Raises PolicyDocumentError naming ``source`` and the reason when it is not a policy document,
    and :class:`UndecidableError` when the whole document is not known yet (a preview).
    """
    if _props.is_unknown(value):
        raise UndecidableError(f"{source} is not known yet")
    try:
        document = _props.parse_json(value)
    except ValueError as exc:
        raise PolicyDocumentError(f"{source}: {exc}") from exc
    if not isinstance(document, Mapping):
        raise PolicyDocumentError(f"{source}: expected a JSON object")
    raw_statements = _props.as_list(document.get("Statement"))
    if not raw_statements:
        raise PolicyDocumentError(f"{source}.Statement: expected at least one statement")
    statements = tuple(
        _statement(raw, f"{source}.Statement[{index}]") for index, raw in enumerate(raw_statements)
    )
    return PolicyDocument(source=source, statements=statements, kind=kind)


def raw_documents(resource_type: str, props: Any) -> list[tuple[str, Any, str]]:
    """(input path, unparsed document or UNKNOWN, kind) for each policy input a resource sets."""
    found: list[tuple[str, Any, str]] = []
    for path, kind in DOCUMENT_INPUTS.get(resource_type, ()):
        if path.startswith("inlinePolicies[*]"):
            inline = _props.peek(props, "inlinePolicies")
            if inline is UNKNOWN:
                found.append(("inlinePolicies", UNKNOWN, kind))
                continue
            for index, item in enumerate(_props.as_list(inline)):
                policy = _props.peek(item, "policy")
                if policy:
                    found.append((f"inlinePolicies[{index}].policy", policy, kind))
            continue
        policy = _props.peek(props, path)
        if policy:
            found.append((path, policy, kind))
    return found


# --- matching --------------------------------------------------------------------------------


def action_matches(pattern: str, action: str) -> bool:
    """True when an IAM action pattern (``*``/``?`` anywhere, any case) matches ``action``."""
    return fnmatch.fnmatchcase(action.lower(), pattern.strip().lower())


def _arn_matches(pattern: str, value: str) -> bool:
    # ARN matching is case-sensitive; * and ? match within and across segments as IAM does.
    return fnmatch.fnmatchcase(value, pattern)


def _any_match(patterns: Any, value: str, match: Any) -> bool | None:
    """True if a known pattern matches; None if none matches but some pattern is unknown."""
    if patterns is UNKNOWN:
        return None
    unknown = False
    for pattern in patterns:
        if pattern is UNKNOWN:
            unknown = True
        elif match(pattern, value):
            return True
    return None if unknown else False


def _account_of(principal: str) -> str:
    if _ACCOUNT.match(principal):
        return principal
    parts = principal.split(":")
    return parts[4] if len(parts) > 4 and principal.startswith("arn:") else ""


def _principal_matches(kind: str, value: str, request: Request) -> bool:
    if value == "*":
        return True  # "*" and {"AWS": "*"} both name every principal, anonymous included
    if request.principal_kind != kind:
        return False
    if kind != "AWS":
        return value.lower() == request.principal.lower()
    # An account (id or root ARN) delegates to that account's own IAM policies.
    if _ACCOUNT.match(value) or value.endswith(":root"):
        return _account_of(value) == _account_of(request.principal)
    return value == request.principal


def _principals_match(principals: Any, request: Request) -> bool | None:
    if principals is UNKNOWN:
        return None
    unknown = False
    for kind, values in principals.items():
        if values is UNKNOWN:
            unknown = True
            continue
        for value in values:
            if value is UNKNOWN:
                unknown = True
            elif _principal_matches(kind, value, request):
                return True
    return None if unknown else False


# --- conditions ------------------------------------------------------------------------------


def _compare(base: str, policy_value: str, context_value: str) -> bool:
    if base in ("StringEquals", "StringNotEquals"):
        return policy_value == context_value
    if base in ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"):
        return policy_value.lower() == context_value.lower()
    if base in ("StringLike", "StringNotLike"):
        return fnmatch.fnmatchcase(context_value, policy_value)
    if base in ("ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike"):
        # ArnEquals also honours wildcards (IAM docs, "ARN condition operators").
        return _arn_matches(policy_value, context_value)
    if base == "Bool":
        return policy_value.lower() == context_value.lower()
    raise UndecidableError(f"condition operator {base!r} is not supported by the evaluator")


def _positive_base(base: str) -> str:
    return base.replace("Not", "", 1) if base in _NEGATED else base


def _condition_holds(condition: Condition, context: Mapping[str, Any]) -> bool | None:
    qualifier, base, if_exists = condition.parts
    if condition.key == "unknown" or UNKNOWN in condition.values:
        return None
    present = condition.key.lower() in context
    raw = context.get(condition.key.lower())
    if base == "Null":
        # Null "true" asks that the key be absent, "false" that it be present.
        wants_absent = str(condition.values[0]).lower() == "true"
        return wants_absent != present
    if not present:
        # IfExists passes an absent key; so do the negated operators and ForAllValues (IAM
        # docs, "Condition operator to check existence of condition keys").
        return if_exists or condition.negated or qualifier == "ForAllValues"
    values = [_scalar_text(v) for v in (raw if isinstance(raw, list | tuple) else [raw])]
    positive = _positive_base(base)

    def matches(context_value: str) -> bool:
        return any(_compare(positive, str(p), context_value) for p in condition.values)

    if qualifier == "ForAllValues":
        result = all(matches(v) for v in values)
    else:  # ForAnyValue, or a single-valued key
        result = any(matches(v) for v in values)
    return not result if condition.negated else result


def _and(results: Iterable[bool | None]) -> bool | None:
    unknown = False
    for result in results:
        if result is False:
            return False
        if result is None:
            unknown = True
    return None if unknown else True


# --- evaluation ------------------------------------------------------------------------------


class Decision(Enum):
    """The outcome of evaluating a request against policies of one type."""

    ALLOW = "allow"
    EXPLICIT_DENY = "explicit-deny"
    IMPLICIT_DENY = "implicit-deny"


@dataclass(frozen=True)
class Request:
    """A request: who (an IAM ARN, an account, or a service such as ``events.amazonaws.com``)
    does what on which resource, with which context keys (``aws:SecureTransport``, ...)."""

    principal: str
    action: str
    resource: str
    context: Mapping[str, Any] = field(default_factory=dict)

    @property
    def principal_kind(self) -> str:
        """``Service`` for a service principal, ``AWS`` otherwise."""
        return "Service" if self.principal.endswith(".amazonaws.com") else "AWS"

    def normalised_context(self) -> dict[str, Any]:
        """Context keys lowercased (condition keys are case-insensitive), with the keys IAM
        derives from the principal filled in when the caller did not set them."""
        context = {key.lower(): value for key, value in self.context.items()}
        if self.principal_kind == "Service":
            context.setdefault("aws:principalservicename", self.principal)
            context.setdefault("aws:principalisawsservice", "true")
        else:
            context.setdefault("aws:principalarn", self.principal)
            context.setdefault("aws:principalaccount", _account_of(self.principal))
            context.setdefault("aws:principalisawsservice", "false")
        return context


def _applies(statement: Statement, request: Request, context: Mapping[str, Any]) -> bool | None:
    checks: list[bool | None] = []
    if statement.principals is not None:
        checks.append(_principals_match(statement.principals, request))
    elif statement.not_principals is not None:
        inside = _principals_match(statement.not_principals, request)
        checks.append(None if inside is None else not inside)
    checks.append(statement.grants(request.action))
    if statement.not_resources is not None:
        inside = _any_match(statement.not_resources, request.resource, _arn_matches)
        checks.append(None if inside is None else not inside)
    else:
        checks.append(_any_match(statement.resources, request.resource, _arn_matches))
    if _and(checks) is False:
        return False
    checks.extend(_condition_holds(c, context) for c in statement.conditions)
    return _and(checks)


def matching(
    documents: Sequence[PolicyDocument], request: Request
) -> Iterator[tuple[Statement, bool | None]]:
    """Each statement with whether it applies to ``request`` (None: it depends on an unknown)."""
    context = request.normalised_context()
    for document in documents:
        for statement in document.statements:
            applies = _applies(statement, request, context)
            yield statement, applies


def evaluate(documents: Sequence[PolicyDocument], request: Request) -> Decision:
    """The decision ``documents`` give ``request``: an explicit Deny wins, then an Allow.

    Raises :class:`UndecidableError` when the answer depends on an unknown value or on a condition
    operator the evaluator does not implement (numeric, date and IP operators).
    """
    deny_unknown = allow = allow_unknown = False
    for statement, applies in matching(documents, request):
        if statement.effect == "Unknown":
            deny_unknown = deny_unknown or applies is not False
            allow_unknown = allow_unknown or applies is not False
        elif not statement.allows:
            if applies is True:
                return Decision.EXPLICIT_DENY
            deny_unknown = deny_unknown or applies is None
        elif applies is True:
            allow = True
        else:
            allow_unknown = allow_unknown or applies is None
    if deny_unknown:
        raise UndecidableError("a Deny statement depends on a value that is not known yet")
    if allow:
        return Decision.ALLOW
    if allow_unknown:
        raise UndecidableError("an Allow statement depends on a value that is not known yet")
    return Decision.IMPLICIT_DENY


# --- exposure --------------------------------------------------------------------------------

#: Condition keys that pin a grant to known callers: with a concrete value, a statement naming
#: every principal is no longer public (the IAM Access Analyzer's reading of resource policies).
RESTRICTING_CONDITION_KEYS = (
    "aws:SourceArn",
    "aws:SourceAccount",
    "aws:SourceOwner",
    "aws:PrincipalOrgID",
    "aws:PrincipalOrgPaths",
    "aws:PrincipalAccount",
    "aws:PrincipalArn",
    "aws:SourceVpc",
    "aws:SourceVpce",
    "kms:CallerAccount",
)


def _wildcard_value(value: str) -> bool:
    # "*", "arn:aws:iam::*:role/x", "*:*": any value whose account part is a wildcard names
    # every account, so it restricts nothing.
    if set(value) <= {"*", "?"}:
        return True
    parts = value.split(":")
    return value.startswith("arn:") and len(parts) > 4 and set(parts[4]) <= {"*", "?"}


def _restricts(condition: Condition, keys: set[str]) -> bool | None:
    qualifier, _base, if_exists = condition.parts
    if condition.key.lower() not in keys or condition.negated or if_exists:
        return False
    if qualifier == "ForAllValues":
        return False  # an absent or empty key passes ForAllValues
    if UNKNOWN in condition.values:
        return None
    values = [v for v in condition.values if isinstance(v, str)]
    return bool(values) and not any(_wildcard_value(v) for v in values)


def is_public(statement: Statement, restricting_keys: Iterable[str]) -> bool | None:
    """True when an Allow statement grants to every principal (``*``, ``{"AWS": "*"}``,
    NotPrincipal) with no condition that pins the callers to concrete values; None when that
    depends on an unknown value."""
    if statement.effect == "Deny":
        return False
    if statement.principals is UNKNOWN or statement.effect == "Unknown":
        return None
    if not statement.everyone:
        return False
    keys = {k.lower() for k in restricting_keys}
    results = [_restricts(c, keys) for c in statement.conditions]
    if any(r is True for r in results):
        return False
    return None if any(r is None for r in results) else True
