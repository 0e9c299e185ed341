"""Lambda functions: tracing, bounded timeouts, reserved concurrency, supported runtimes, logs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pulumi_policy import PolicyConfigSchema, PolicyResource, ResourceValidationArgs

from agentry_policies import _props
from agentry_policies._base import resource_policy, stack_policy

FUNCTION = "aws:lambda/function:Function"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
_FUNCTIONS = frozenset({FUNCTION})
_DEFAULT_TIMEOUT_SECONDS = 3.0  # Lambda's own default when no timeout is set

_CONCURRENCY_SCHEMA = PolicyConfigSchema(
    properties={
        "required": {
            "type": "boolean",
            "default": True,
            "description": "Require reservedConcurrentExecutions on every function.",
        }
    }
)
_TIMEOUT_SCHEMA = PolicyConfigSchema(
    properties={
        "maxTimeoutSeconds": {
            "type": "number",
            "minimum": 1,
            "maximum": 900,
            "default": 300,
            "description": "The longest timeout a function may have.",
        }
    }
)
_RUNTIME_SCHEMA = PolicyConfigSchema(
    properties={
        "deprecatedRuntimes": {
            "type": "array",
            "items": {"type": "string"},
            "default": [
                "python2.7",
                "python3.6",
                "python3.7",
                "python3.8",
                "python3.9",
                "nodejs12.x",
                "nodejs14.x",
                "nodejs16.x",
                "nodejs18.x",
                "java8",
                "go1.x",
                "ruby2.7",
                "dotnetcore3.1",
                "dotnet6",
            ],
            "description": "Runtimes AWS has deprecated or soon will; functions must not use them.",
        }
    }
)


def _check_tracing(args: ResourceValidationArgs, _config: Mapping[str, Any]) -> Iterable[str]:
    mode = _props.get(args.props, "tracingConfig", "mode")
    if mode != "Active":
        yield f"tracingConfig.mode is {mode!r}; set tracingConfig.mode to 'Active'."


def _check_concurrency(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterable[str]:
    if not config.get("required", True):
        return
    reserved = _props.number(args.props.get("reservedConcurrentExecutions"))
    if reserved is None or reserved < 0:
        yield (
            "reservedConcurrentExecutions is not set; reserve concurrency so one function "
            "cannot starve the account (or its downstreams)."
        )


def _check_timeout(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterable[str]:
    timeout = _props.number(args.props.get("timeout"))
    limit = float(config.get("maxTimeoutSeconds", 300))
    effective = _DEFAULT_TIMEOUT_SECONDS if timeout is None else timeout
    if effective > limit:
        yield f"timeout is {effective:g} s; keep it at most {limit:g} s."


def _check_runtime(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterable[str]:
    runtime = _props.text(args.props.get("runtime"))
    if runtime and runtime in set(config.get("deprecatedRuntimes", [])):
        yield f"runtime {runtime!r} is deprecated; move to a supported runtime (python3.12+)."


def _function_log_group(function: PolicyResource) -> str | None:
    custom = _props.get(function.props, "loggingConfig", "logGroup")
    if isinstance(custom, str) and custom:
        return custom
    name = _props.text(function.props.get("name"))
    return f"/aws/lambda/{name}" if name else None


def _check_log_retention(
    resources: list[PolicyResource], _config: Mapping[str, Any]
) -> Iterable[tuple[PolicyResource, str]]:
    retention = {
        _props.text(r.props.get("name")): _props.number(r.props.get("retentionInDays"))
        for r in resources
        if r.resource_type == LOG_GROUP
    }
    for function in (r for r in resources if r.resource_type == FUNCTION):
        group = _function_log_group(function)
        if group is None:
            yield function, "has no explicit name, so its log group cannot be declared; name it."
        elif group not in retention:
            yield (
                function,
                (
                    f"has no log group '{group}' in the stack; declare it with retentionInDays "
                    "so logs do not live forever."
                ),
            )
        elif not retention[group]:
            yield function, f"log group '{group}' has no retentionInDays; set one."


LAMBDA_TRACING_ACTIVE = resource_policy(
    name="lambda-tracing-active",
    description="Turn on active X-Ray tracing for every function (tracingConfig.mode 'Active').",
    types=_FUNCTIONS,
    check=_check_tracing,
)
LAMBDA_RESERVED_CONCURRENCY = resource_policy(
    name="lambda-reserved-concurrency",
    description="Set reservedConcurrentExecutions on every function to bound its concurrency.",
    types=_FUNCTIONS,
    check=_check_concurrency,
    schema=_CONCURRENCY_SCHEMA,
)
LAMBDA_TIMEOUT_BOUNDED = resource_policy(
    name="lambda-timeout-bounded",
    description="Keep every function's timeout at or below the configured maximum.",
    types=_FUNCTIONS,
    check=_check_timeout,
    schema=_TIMEOUT_SCHEMA,
)
LAMBDA_RUNTIME_SUPPORTED = resource_policy(
    name="lambda-runtime-supported",
    description="Run functions on a supported runtime, not one on the deprecated list.",
    types=_FUNCTIONS,
    check=_check_runtime,
    schema=_RUNTIME_SCHEMA,
)
LAMBDA_LOG_RETENTION = stack_policy(
    name="lambda-log-retention",
    description=(
        "Declare each function's log group (/aws/lambda/<function name>) in the stack with "
        "retentionInDays set."
    ),
    check=_check_log_retention,
)

POLICIES = (
    LAMBDA_TRACING_ACTIVE,
    LAMBDA_RESERVED_CONCURRENCY,
    LAMBDA_TIMEOUT_BOUNDED,
    LAMBDA_RUNTIME_SUPPORTED,
    LAMBDA_LOG_RETENTION,
)
