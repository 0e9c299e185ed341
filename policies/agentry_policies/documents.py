"""IAM policy documents found in resource inputs, parsed into normalised statements.

Action, Resource and Principal values are normalised to tuples of strings whatever shape the
document used (a string or a list); action matching is case-insensitive, as in IAM.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agentry_policies import _props

#: Identity policies: attached to a principal, so Resource scoping is the only boundary.
IDENTITY_POLICY_TYPES = frozenset(
    {
        "aws:iam/rolePolicy:RolePolicy",
        "aws:iam/policy:Policy",
        "aws:iam/role:Role",
        "aws:iam/userPolicy:UserPolicy",
        "aws:iam/groupPolicy:GroupPolicy",
    }
)
#: Resource policies: attached to a resource, Principal decides who may act.
RESOURCE_POLICY_TYPES = frozenset(
    {
        "aws:sqs/queuePolicy:QueuePolicy",
        "aws:sns/topicPolicy:TopicPolicy",
        "aws:sns/topic:Topic",
        "aws:sqs/queue:Queue",
    }
)


@dataclass(frozen=True)
class Statement:
    """One policy statement with every list-or-string field normalised to a tuple."""

    effect: str
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] | None = None
    resources: tuple[str, ...] = ()
    not_resources: tuple[str, ...] | None = None
    principals: tuple[str, ...] = ()
    conditions: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)
    sid: str = ""

    @property
    def allows(self) -> bool:
        """True for an Allow statement."""
        return self.effect.lower() == "allow"

    @property
    def label(self) -> str:
        """How a violation names this statement: its Sid, or its actions."""
        return f"statement {self.sid!r}" if self.sid else f"statement {list(self.actions)}"

    def condition_values(self, key: str) -> tuple[str, ...]:
        """Every value any operator tests for condition key ``key`` (keys are case-insensitive)."""
        found: list[str] = []
        for operands in self.conditions.values():
            for name, values in operands.items():
                if name.lower() == key.lower():
                    found.extend(values)
        return tuple(found)


@dataclass(frozen=True)
class PolicyDocument:
    """A parsed document and where it came from (``policy``, ``inlinePolicies[0].policy``...)."""

    source: str
    statements: tuple[Statement, ...]


class PolicyDocumentError(ValueError):
    """A policy input that is not a valid IAM policy document; names the input and the reason."""


def action_matches(pattern: str, action: str) -> bool:
    """True when an IAM action pattern (``*``/``?`` anywhere, any case) matches ``action``."""
    return fnmatch.fnmatchcase(action.lower(), pattern.strip().lower())


def _strings(value: Any, where: str) -> tuple[str, ...]:
    items = _props.as_list(value)
    if not all(isinstance(item, str) for item in items):
        raise PolicyDocumentError(f"{where}: expected a string or a list of strings")
    return tuple(items)


def _principals(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if _props.is_mapping(value):
        found: list[str] = []
        for kind in value:
            found.extend(_strings(value[kind], f"{where}.{kind}"))
        return tuple(found)
    raise PolicyDocumentError(f"{where}: expected '*' or a mapping of principal types")


def _conditions(value: Any, where: str) -> dict[str, dict[str, tuple[str, ...]]]:
    if value is None:
        return {}
    if not _props.is_mapping(value):
        raise PolicyDocumentError(f"{where}: expected a mapping of condition operators")
    parsed: dict[str, dict[str, tuple[str, ...]]] = {}
    for operator in value:
        operands = value[operator]
        if not _props.is_mapping(operands):
            raise PolicyDocumentError(f"{where}.{operator}: expected a mapping of condition keys")
        parsed[operator] = {
            key: tuple(str(v) for v in _props.as_list(operands[key])) for key in operands
        }
    return parsed


def _optional_strings(raw: Mapping[str, Any], key: str, where: str) -> tuple[str, ...] | None:
    return _strings(raw[key], f"{where}.{key}") if key in raw else None


def _statement(raw: Any, where: str) -> Statement:
    if not _props.is_mapping(raw):
        raise PolicyDocumentError(f"{where}: expected a statement object")
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise PolicyDocumentError(f"{where}.Effect: expected 'Allow' or 'Deny', got {effect!r}")
    return Statement(
        effect=effect,
        actions=_strings(raw.get("Action"), f"{where}.Action"),
        not_actions=_optional_strings(raw, "NotAction", where),
        resources=_strings(raw.get("Resource"), f"{where}.Resource"),
        not_resources=_optional_strings(raw, "NotResource", where),
        principals=_principals(raw.get("Principal"), f"{where}.Principal"),
        conditions=_conditions(raw.get("Condition"), f"{where}.Condition"),
        sid=str(raw.get("Sid") or ""),
    )


def parse_document(value: Any, source: str) -> PolicyDocument:
    """Parse a policy given as a JSON string or a mapping; raises PolicyDocumentError."""
    try:
        document = _props.parse_json(value)
    except ValueError as exc:
        raise PolicyDocumentError(f"{source}: {exc}") from exc
    if not _props.is_mapping(document):
        raise PolicyDocumentError(f"{source}: expected a JSON object")
    raw_statements = _props.as_list(document.get("Statement"))
    if not raw_statements:
        raise PolicyDocumentError(f"{source}.Statement: expected at least one statement")
    statements = tuple(
        _statement(raw, f"{source}.Statement[{index}]") for index, raw in enumerate(raw_statements)
    )
    return PolicyDocument(source=source, statements=statements)


def raw_documents(resource_type: str, props: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """(input path, unparsed document) pairs of the policy inputs a resource declares."""
    found: list[tuple[str, Any]] = []
    if resource_type == "aws:iam/role:Role":
        for index, inline in enumerate(_props.as_list(props.get("inlinePolicies"))):
            policy = _props.get(inline, "policy")
            if policy:
                found.append((f"inlinePolicies[{index}].policy", policy))
    elif resource_type in IDENTITY_POLICY_TYPES | RESOURCE_POLICY_TYPES:
        policy = props.get("policy")
        if policy:
            found.append(("policy", policy))
    return found
