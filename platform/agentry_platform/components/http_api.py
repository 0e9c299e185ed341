"""The HTTP API: IAM-authorised routes to the api function, throttled, with access logs."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from agentry_platform.components._options import named
from agentry_platform.lib.naming import physical_name

__all__ = ["ROUTES", "HttpApi", "HttpApiArgs"]

#: Every route the api function serves; all require SigV4 (IAM) authorisation.
ROUTES = (
    "POST /agents",
    "GET /agents",
    "GET /agents/{id}",
    "DELETE /agents/{id}",
    "GET /agents/{id}/messages",
    "POST /agents/{id}/messages",
    "POST /agents/{id}/resume",
    "POST /agents/{id}/cancel",
    "GET /agents/{id}/approvals",
    "POST /agents/{id}/approvals",
)
_ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "caller": "$context.identity.caller",
    "user": "$context.identity.userArn",
    "requestTime": "$context.requestTime",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "integrationError": "$context.integrationErrorMessage",
}


@dataclass
class HttpApiArgs:
    """Inputs of :class:`HttpApi`."""

    stack: str
    function_name: pulumi.Input[str]
    function_invoke_arn: pulumi.Input[str]
    throttle_burst: int
    throttle_rate: float
    log_retention_days: int
    tags: Mapping[str, str]
    kms_key_arn: pulumi.Input[str] | None = None


class HttpApi(pulumi.ComponentResource):
    """apigatewayv2 HTTP API with a Lambda proxy (payload 2.0) and a ``$default`` stage."""

    endpoint: pulumi.Output[str]
    id: pulumi.Output[str]

    def __init__(
        self, name: str, args: HttpApiArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agentry:api:HttpApi", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        api_name = physical_name(args.stack, "api")
        self.api = aws.apigatewayv2.Api(
            f"{name}-api",
            name=api_name,
            protocol_type="HTTP",
            description="Agentry: start, read, resume and cancel agents",
            tags=dict(args.tags),
            opts=child,
        )
        self.integration = aws.apigatewayv2.Integration(
            f"{name}-integration",
            api_id=self.api.id,
            integration_type="AWS_PROXY",
            integration_method="POST",
            integration_uri=args.function_invoke_arn,
            payload_format_version="2.0",
            opts=child,
        )
        target = self.integration.id.apply(lambda integration: f"integrations/{integration}")
        self.routes = [
            aws.apigatewayv2.Route(
                f"{name}-route-{_route_slug(route_key)}",
                api_id=self.api.id,
                route_key=route_key,
                authorization_type="AWS_IAM",
                target=target,
                opts=named(self),
            )
            for route_key in ROUTES
        ]
        self.access_logs = aws.cloudwatch.LogGroup(
            f"{name}-access-logs",
            name=f"/aws/apigateway/{api_name}",
            retention_in_days=args.log_retention_days,
            kms_key_id=args.kms_key_arn,
            tags=dict(args.tags),
            opts=named(self),
        )
        self.stage = aws.apigatewayv2.Stage(
            f"{name}-stage",
            api_id=self.api.id,
            name="$default",
            auto_deploy=True,
            default_route_settings=aws.apigatewayv2.StageDefaultRouteSettingsArgs(
                throttling_burst_limit=args.throttle_burst,
                throttling_rate_limit=args.throttle_rate,
                detailed_metrics_enabled=True,
            ),
            access_log_settings=aws.apigatewayv2.StageAccessLogSettingsArgs(
                destination_arn=self.access_logs.arn,
                format=json.dumps(_ACCESS_LOG_FORMAT, sort_keys=True),
            ),
            tags=dict(args.tags),
            opts=named(self, depends_on=list(self.routes)),
        )
        self.permission = aws.lambda_.Permission(
            f"{name}-invoke-permission",
            action="lambda:InvokeFunction",
            function=args.function_name,
            principal="apigateway.amazonaws.com",
            # Only this API's routes, any stage and method.
            source_arn=self.api.execution_arn.apply(lambda arn: f"{arn}/*/*"),
            opts=child,
        )
        self.endpoint = self.api.api_endpoint
        self.id = self.api.id
        self.register_outputs({"endpoint": self.endpoint, "id": self.id})


def _route_slug(route_key: str) -> str:
    method, path = route_key.split(" ", 1)
    parts = [p.strip("{}") for p in path.strip("/").split("/")]
    return "-".join([method.lower(), *parts])
