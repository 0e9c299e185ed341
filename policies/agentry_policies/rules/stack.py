"""Stack-wide integrity: every function's execution role is declared in the same stack."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pulumi_policy import PolicyResource

from agentry_policies import _props
from agentry_policies._base import arn_name, stack_policy

_FUNCTION = "aws:lambda/function:Function"
_ROLE = "aws:iam/role:Role"


def _declares(role: PolicyResource, arn: str) -> bool:
    own = _props.text(role.props.get("arn"))
    name = _props.text(role.props.get("name"))
    return (own != "" and own == arn) or (name != "" and arn_name(arn) == name)


def _check_roles(
    resources: list[PolicyResource], _config: Mapping[str, Any]
) -> Iterable[tuple[PolicyResource, str]]:
    roles = [r for r in resources if r.resource_type == _ROLE]
    for function in (r for r in resources if r.resource_type == _FUNCTION):
        arn = _props.text(function.props.get("role"))
        if not any(_declares(role, arn) for role in roles):
            yield (
                function,
                (
                    f"execution role '{arn}' is not declared in this stack; declare a dedicated "
                    "least-privilege role in the stack and pass its ARN."
                ),
            )


STACK_FUNCTION_ROLES_DECLARED = stack_policy(
    name="stack-function-roles-declared",
    description="Give every function an execution role declared in the same stack.",
    check=_check_roles,
)

POLICIES = (STACK_FUNCTION_ROLES_DECLARED,)
