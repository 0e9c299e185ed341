"""Shared plumbing of the rules: config lookup with schema defaults, and the rule builders.

A rule's check is a plain function yielding one remediation message per problem; the builders
wrap it in the pulumi_policy object, filter on resource type and prefix every message with the
resource's name, so every violation names the resource whatever rule reports it.

Preview-proof rules: a check yields :class:`Undecided` for what depends on a value that is not
known yet, and goes on judging the rest. The builder reports every decided violation first, then
raises the SDK's own ``UnknownValueError`` once, which the engine turns into one advisory note
for that evaluation alone (pulumi_policy ``_PolicyAnalyzerServicer.Analyze``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

from agentry_policies import _props
from agentry_policies.documents import (
    PolicyDocument,
    PolicyDocumentError,
    UndecidableError,
    parse_document,
    raw_documents,
)

__all__ = [
    "IDENTITY",
    "RESOURCE",
    "TRUST",
    "Found",
    "ResourceCheck",
    "StackCheck",
    "Undecided",
    "arn_name",
    "depends_on",
    "documents",
    "label",
    "refers_to",
    "resource_policy",
    "settings",
    "stack_policy",
]


class Undecided:
    """Yielded by a check for a part it cannot judge yet: ``what`` names the unknown input."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __repr__(self) -> str:
        return f"Undecided({self.what!r})"


#: What a resource check yields: remediation messages and the parts it cannot judge yet.
Found = Iterable["str | Undecided"]
ResourceCheck = Callable[[ResourceValidationArgs, Mapping[str, Any]], Iterable["str | Undecided"]]
StackCheck = Callable[
    [list[PolicyResource], Mapping[str, Any]],
    Iterable["tuple[PolicyResource, str] | Undecided"],
]


def _raise_undecided(undecided: list[Undecided]) -> None:
    if undecided:
        names = sorted({u.what for u in undecided})
        raise UnknownValueError(_props.UNKNOWN_STRING, [", ".join(names)])


def settings(config: Mapping[str, Any] | None, schema: PolicyConfigSchema) -> dict[str, Any]:
    """The policy's config with the schema's defaults filled in (as the Pulumi CLI does)."""
    given = dict(config or {})
    merged = {key: spec["default"] for key, spec in schema.properties.items() if "default" in spec}
    merged.update({key: _props.to_plain(value) for key, value in given.items()})
    return merged


def label(name: str, resource_type: str) -> str:
    """How a violation names a resource: its logical name and type."""
    return f"{name} ({resource_type})"


def resource_policy(
    *,
    name: str,
    description: str,
    types: frozenset[str] | None,
    check: ResourceCheck,
    schema: PolicyConfigSchema | None = None,
    enforcement_level: EnforcementLevel | None = None,
) -> ResourceValidationPolicy:
    """A ResourceValidationPolicy running ``check`` on resources of ``types`` (None: all)."""
    config_schema = schema or PolicyConfigSchema(properties={})

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if types is not None and args.resource_type not in types:
            return
        config = settings(args.get_config(), config_schema)
        undecided: list[Undecided] = []
        for message in check(args, config):
            if isinstance(message, Undecided):
                undecided.append(message)
            else:
                report_violation(f"{label(args.name, args.resource_type)}: {message}", None)
        _raise_undecided(undecided)

    return ResourceValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        enforcement_level=enforcement_level,
        config_schema=config_schema,
    )


def stack_policy(
    *,
    name: str,
    description: str,
    check: StackCheck,
    schema: PolicyConfigSchema | None = None,
    enforcement_level: EnforcementLevel | None = None,
) -> StackValidationPolicy:
    """A StackValidationPolicy whose ``check`` yields (offending resource, message) pairs."""
    config_schema = schema or PolicyConfigSchema(properties={})

    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        config = settings(args.get_config(), config_schema)
        undecided: list[Undecided] = []
        for found in check(list(args.resources), config):
            if isinstance(found, Undecided):
                undecided.append(found)
                continue
            resource, message = found
            report_violation(
                f"{label(resource.name, resource.resource_type)}: {message}", resource.urn
            )
        _raise_undecided(undecided)

    return StackValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        enforcement_level=enforcement_level,
        config_schema=config_schema,
    )


def documents(
    resource_type: str, props: Any, kinds: frozenset[str] | None = None
) -> tuple[list[PolicyDocument], list[Undecided]]:
    """The resource's policy documents that parse (of ``kinds``: identity, resource, trust), and
    one :class:`Undecided` per document that is not known yet.

    Documents that do not parse are skipped here: reporting them is the validity rule's job.
    """
    parsed: list[PolicyDocument] = []
    undecided: list[Undecided] = []
    for source, raw, kind in raw_documents(resource_type, props):
        if kinds is not None and kind not in kinds:
            continue
        try:
            parsed.append(parse_document(raw, source, kind))
        except UndecidableError:
            undecided.append(Undecided(source))
        except PolicyDocumentError:
            continue
    return parsed, undecided


IDENTITY = frozenset({"identity"})
RESOURCE = frozenset({"resource"})
TRUST = frozenset({"trust"})


def arn_name(arn: str) -> str:
    """The last name segment of an ARN (after the last ``:`` or ``/``)."""
    return arn.rsplit(":", 1)[-1].rsplit("/", 1)[-1]


def depends_on(resource: PolicyResource, prop: str, target: PolicyResource) -> bool:
    """True when input ``prop`` of ``resource`` is computed from ``target`` (property deps).

    This is how a stack rule links a policy to its queue, bus or topic when the ARN or URL that
    links them is not known yet (a first preview).
    """
    return any(dep.urn == target.urn for dep in resource.property_dependencies.get(prop, []))


def refers_to(resource: PolicyResource, prop: str, target: PolicyResource) -> bool | None:
    """Whether input ``prop`` of ``resource`` names ``target`` (by ARN, URL, name or id).

    Property dependencies decide first; then the known values. None when the value is unknown
    and no dependency says which resource it comes from.
    """
    if depends_on(resource, prop, target):
        return True
    value = _props.peek(resource.props, prop)
    if value is _props.UNKNOWN:
        # Computed from other resources only: it cannot name this one.
        return False if resource.property_dependencies.get(prop) else None
    if not isinstance(value, str) or not value:
        return False
    identities = {
        _props.text(_props.peek(target.props, key)) for key in ("arn", "url", "name", "id")
    }
    identities.discard("")
    return value in identities or (
        value.startswith("https://") and value.rsplit("/", 1)[-1] in identities
    )
