"""Stack-wide integrity: every function's execution role is declared in the same stack."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pulumi_policy import PolicyResource

from agentry_policies import _props
from agentry_policies._base import Undecided, arn_name, refers_to, stack_policy

__all__ = ["POLICIES", "STACK_FUNCTION_ROLES_DECLARED"]

_FUNCTION = "aws:lambda/function:Function"
_ROLE = "aws:iam/role:Role"


def _declares(function: PolicyResource, role: PolicyResource) -> bool | None:
    linked = refers_to(function, "role", role)
    if linked is not False:
        return linked
    arn = _props.text(_props.peek(function.props, "role"))
    name = _props.text(_props.peek(role.props, "name"))
    return name != "" and arn_name(arn) == name


def _check_roles(
    resources: list[PolicyResource], _config: Mapping[str, Any]
) -> Iterable[tuple[PolicyResource, str] | Undecided]:
    roles = [r for r in resources if r.resource_type == _ROLE]
    for function in (r for r in resources if r.resource_type == _FUNCTION):
        arn = _props.text(_props.peek(function.props, "role"))
        found = [_declares(function, role) for role in roles]
        if any(f is True for f in found):
            continue
        if any(f is None for f in found) or _props.peek(function.props, "role") is _props.UNKNOWN:
            yield Undecided(f"{function.name}.role")
        else:
            yield (
                function,
                (
                    f"execution role '{arn}' is not declared in this stack; declare a dedicated "
                    "least-privilege role in the stack and pass its ARN."
                ),
            )


STACK_FUNCTION_ROLES_DECLARED = stack_policy(
    name="stack-function-roles-declared",
    description=(
        "Give every function a dedicated execution role declared in the same stack, so its "
        "policies are judged by this pack (no checkov or cfn-nag equivalent)."
    ),
    check=_check_roles,
)

POLICIES = (STACK_FUNCTION_ROLES_DECLARED,)
