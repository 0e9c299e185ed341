"""A toolset's own infrastructure: the resources its hook declares, and what the worker needs.

A toolset that needs AWS resources of its own (a table, a secret) provides an infrastructure
hook beside its package (``[tool.agentry.toolset] infrastructure = "infrastructure.py:declare"``).
The stack program calls it once per stack inside a :class:`Toolset` component with a
:class:`ToolsetContext`; it declares its resources (parented through ``context.opts``) and
returns :class:`ToolsetGrants`: the IAM statements and environment variables the worker gets.
The hook runs at plan time only and is never part of a bundle.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import pulumi

from agentry_platform.lib.iam import Statement
from agentry_platform.lib.naming import physical_name

__all__ = ["Toolset", "ToolsetArgs", "ToolsetContext", "ToolsetGrants", "ToolsetHook"]


@dataclass(frozen=True)
class ToolsetGrants:
    """What a toolset's tools need in the worker: IAM statements and environment variables."""

    statements: pulumi.Input[Sequence[Statement]] = ()
    environment: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class ToolsetContext:
    """The stack, as a toolset's infrastructure hook sees it."""

    stack: str
    toolset: str
    region: str
    account_id: pulumi.Output[str]
    table_name: pulumi.Output[str]
    table_arn: pulumi.Output[str]
    tags: Mapping[str, str]
    opts: pulumi.ResourceOptions
    kms_key_arn: pulumi.Output[str] | None = None

    @property
    def named_opts(self) -> pulumi.ResourceOptions:
        """``opts`` for a resource with an explicit physical name: deleted before its
        replacement is created (two cannot coexist; see ``components/_options.py``)."""
        return pulumi.ResourceOptions.merge(
            self.opts, pulumi.ResourceOptions(delete_before_replace=True)
        )

    @property
    def protected_opts(self) -> pulumi.ResourceOptions:
        """``opts`` for a resource that holds data: protected, never replaced or deleted."""
        return pulumi.ResourceOptions.merge(self.opts, pulumi.ResourceOptions(protect=True))

    def logical_name(self, suffix: str) -> str:
        """A Pulumi resource name unique to this toolset (``support-orders``)."""
        return f"{self.toolset}-{suffix}"

    def physical_name(self, suffix: str) -> str:
        """An AWS resource name in the stack's naming scheme (``agentry-dev-support-orders``)."""
        return physical_name(self.stack, f"{self.toolset}-{suffix}")


#: ``declare(context) -> ToolsetGrants``.
ToolsetHook = Callable[[ToolsetContext], ToolsetGrants]


@dataclass
class ToolsetArgs:
    """Inputs of :class:`Toolset`."""

    stack: str
    region: str
    account_id: pulumi.Output[str]
    table_name: pulumi.Output[str]
    table_arn: pulumi.Output[str]
    tags: Mapping[str, str]
    hook: ToolsetHook
    kms_key_arn: pulumi.Output[str] | None = None


class Toolset(pulumi.ComponentResource):
    """The resources a toolset's hook declares, under one component named after the toolset."""

    grants: ToolsetGrants

    def __init__(
        self, name: str, args: ToolsetArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agentry:toolset:Toolset", name, None, opts)
        context = ToolsetContext(
            stack=args.stack,
            toolset=name,
            region=args.region,
            account_id=args.account_id,
            table_name=args.table_name,
            table_arn=args.table_arn,
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self),
            kms_key_arn=args.kms_key_arn,
        )
        grants = args.hook(context)
        if not isinstance(grants, ToolsetGrants):
            raise TypeError(
                f"toolset {name}: its infrastructure hook returned {type(grants).__name__}, "
                "not ToolsetGrants"
            )
        self.grants = grants
        self.register_outputs({"toolset": name, "environment": sorted(grants.environment)})
