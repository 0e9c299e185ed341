"""Resource options of the platform's children: replacement order and protection.

Every AWS resource of the platform has an explicit physical name (``agentry-<stack>-...``), so a
replacement cannot be created beside the resource it replaces: AWS refuses the second name
("already exists"), or, for alarms and dashboards whose Put overwrites, the delete that follows
removes the replacement. Pulumi creates replacements before deleting by default;
``deleteBeforeReplace`` reverses that (Pulumi docs, "Resource option: deleteBeforeReplace":
"necessary for ... resources that cannot exist side-by-side"; it applies to custom resources
only, so it is set on each child, never on a component). The AWS provider infers it for some
explicitly named resources (pulumi-terraform-bridge ``nameRequiresDeleteBeforeReplace``), but not
for every type, so the program says it itself and the graph shows it.

Resources that hold data (the agents table, a toolset's table) are never replaced that way:
they are ``protect``ed instead (Pulumi docs, "Resource option: protect"), so a change that would
replace or delete them fails the update until someone unprotects them on purpose.
"""

from __future__ import annotations

import pulumi

__all__ = ["child", "named", "protected"]


def child(parent: pulumi.Resource) -> pulumi.ResourceOptions:
    """Options of a child whose replacement can coexist with it (no physical name)."""
    return pulumi.ResourceOptions(parent=parent)


def named(
    parent: pulumi.Resource, *, depends_on: list[pulumi.Resource] | None = None
) -> pulumi.ResourceOptions:
    """Options of a child with an explicit physical name: delete it before its replacement."""
    return pulumi.ResourceOptions(parent=parent, delete_before_replace=True, depends_on=depends_on)


def protected(parent: pulumi.Resource) -> pulumi.ResourceOptions:
    """Options of a child that holds data: it may be updated, never deleted or replaced."""
    return pulumi.ResourceOptions(parent=parent, protect=True)
