"""Shared plumbing of the rules: config lookup with schema defaults, and the rule builders.

A rule's check is a plain function yielding one remediation message per problem; the builders
wrap it in the pulumi_policy object, filter on resource type and prefix every message with the
resource's name, so every violation names the resource whatever rule reports it.
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

from agentry_policies import _props
from agentry_policies.documents import (
    PolicyDocument,
    PolicyDocumentError,
    parse_document,
    raw_documents,
)

ResourceCheck = Callable[[ResourceValidationArgs, Mapping[str, Any]], Iterable[str]]
StackCheck = Callable[
    [list[PolicyResource], Mapping[str, Any]], Iterable[tuple[PolicyResource, str]]
]


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
        for message in check(args, config):
            report_violation(f"{label(args.name, args.resource_type)}: {message}", None)

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
        for resource, message in check(list(args.resources), config):
            report_violation(
                f"{label(resource.name, resource.resource_type)}: {message}", resource.urn
            )

    return StackValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        enforcement_level=enforcement_level,
        config_schema=config_schema,
    )


def valid_documents(args: ResourceValidationArgs, types: frozenset[str]) -> list[PolicyDocument]:
    """The resource's policy documents that parse, if its type is in ``types``.

    Documents that do not parse are skipped here: reporting them is the validity rule's job.
    """
    if args.resource_type not in types:
        return []
    parsed: list[PolicyDocument] = []
    for source, raw in raw_documents(args.resource_type, args.props):
        try:
            parsed.append(parse_document(raw, source))
        except PolicyDocumentError:
            continue
    return parsed


def arn_name(arn: str) -> str:
    """The last name segment of an ARN (after the last ``:`` or ``/``)."""
    return arn.rsplit(":", 1)[-1].rsplit("/", 1)[-1]
