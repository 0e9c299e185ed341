"""EventBridge buses: no bus policy or permission that opens PutEvents to everyone."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from agentry_policies import _props
from agentry_policies._base import Found, Undecided, resource_policy
from agentry_policies.rules._exposure import check_public, public_schema

__all__ = ["EVENTBRIDGE_BUS_NO_PUBLIC_ACCESS", "POLICIES"]

BUS = "aws:cloudwatch/eventBus:EventBus"
BUS_POLICY = "aws:cloudwatch/eventBusPolicy:EventBusPolicy"
_PERMISSION = "aws:cloudwatch/eventPermission:EventPermission"


def _check_public(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Found:
    if args.resource_type != _PERMISSION:
        yield from check_public(args, config, "event bus")
        return
    principal = _props.peek(args.props, "principal")
    condition = _props.peek(args.props, "condition")
    if principal is _props.UNKNOWN:
        yield Undecided("principal")
    elif principal == "*" and not condition:
        yield (
            "lets every AWS account put events on the bus; name the account, or add a "
            "condition on aws:PrincipalOrgID."
        )


EVENTBRIDGE_BUS_NO_PUBLIC_ACCESS = resource_policy(
    name="eventbridge-bus-no-public-access",
    description=(
        "Name the principals of every event bus policy statement and permission: no Principal "
        "'*' without a concrete restricting condition (aws:PrincipalOrgID, aws:SourceArn...), "
        "no NotPrincipal, NotAction or 'events:*' (no checkov or cfn-nag equivalent)."
    ),
    types=frozenset({BUS_POLICY, _PERMISSION}),
    check=_check_public,
    schema=public_schema(),
)

POLICIES = (EVENTBRIDGE_BUS_NO_PUBLIC_ACCESS,)
