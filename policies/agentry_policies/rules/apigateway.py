"""HTTP APIs (API Gateway v2): authorised routes and access-logged stages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import PolicyConfigSchema, ResourceValidationArgs

from agentry_policies import _props
from agentry_policies._base import Found, Undecided, resource_policy

__all__ = ["APIGW_ROUTE_AUTHORIZATION", "APIGW_STAGE_ACCESS_LOGS", "POLICIES"]

ROUTE = "aws:apigatewayv2/route:Route"
STAGE = "aws:apigatewayv2/stage:Stage"
_ROUTE_SCHEMA = PolicyConfigSchema(
    properties={
        "publicRoutes": {
            "type": "array",
            "items": {"type": "string"},
            "default": [],
            "description": "Route keys that are public on purpose (e.g. 'GET /health').",
        }
    }
)


def _check_route(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Found:
    route_key = _props.peek(args.props, "routeKey")
    auth = _props.peek(args.props, "authorizationType")
    if auth is _props.UNKNOWN:
        yield Undecided("authorizationType")
    elif auth in (None, "", "NONE") and route_key not in config.get("publicRoutes", []):
        yield (
            f"route {route_key!r} has no authorization; set authorizationType to 'AWS_IAM' "
            "(or JWT/CUSTOM with an authorizer), or list the route in publicRoutes."
        )


def _check_stage(args: ResourceValidationArgs, _config: Mapping[str, Any]) -> Found:
    # A destination that is set but not known yet (a first preview) is set.
    destination = _props.peek(args.props, "accessLogSettings", "destinationArn")
    log_format = _props.peek(args.props, "accessLogSettings", "format")
    if not destination or not log_format:
        yield (
            "has no access logs; set accessLogSettings.destinationArn to a log group with "
            "retention and accessLogSettings.format."
        )


APIGW_ROUTE_AUTHORIZATION = resource_policy(
    name="apigw-route-authorization",
    description=(
        "Authorise every HTTP API route: set authorizationType to AWS_IAM, JWT or CUSTOM, "
        "never NONE unless the route is listed as public (checkov CKV_AWS_309; cfn-nag W59 "
        "for REST APIs)."
    ),
    types=frozenset({ROUTE}),
    check=_check_route,
    schema=_ROUTE_SCHEMA,
)
APIGW_STAGE_ACCESS_LOGS = resource_policy(
    name="apigw-stage-access-logs",
    description=(
        "Send every HTTP API stage's access logs to a log group: set "
        "accessLogSettings.destinationArn and format (checkov CKV_AWS_76; cfn-nag W46)."
    ),
    types=frozenset({STAGE}),
    check=_check_stage,
)

POLICIES = (APIGW_ROUTE_AUTHORIZATION, APIGW_STAGE_ACCESS_LOGS)
