"""Lambda functions: tracing, bounded timeouts, reserved concurrency, supported runtimes, logs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pulumi_policy import PolicyConfigSchema, PolicyResource, ResourceValidationArgs

from agentry_policies import _props, secrets
from agentry_policies._base import Found, Undecided, depends_on, resource_policy, stack_policy

__all__ = [
    "LAMBDA_FUNCTION_URL_AUTH",
    "LAMBDA_LOG_RETENTION",
    "LAMBDA_NO_ENDPOINT_OVERRIDE",
    "LAMBDA_NO_SECRETS_IN_ENVIRONMENT",
    "LAMBDA_PERMISSION_RESTRICTED",
    "LAMBDA_RESERVED_CONCURRENCY",
    "LAMBDA_RUNTIME_SUPPORTED",
    "LAMBDA_TIMEOUT_BOUNDED",
    "LAMBDA_TRACING_ACTIVE",
    "POLICIES",
]

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


def _depends(function: PolicyResource, group: PolicyResource) -> bool:
    return depends_on(function, "loggingConfig", group)


def _check_tracing(args: ResourceValidationArgs, _config: Mapping[str, Any]) -> Found:
    mode = _props.peek(args.props, "tracingConfig", "mode")
    if mode is _props.UNKNOWN:
        yield Undecided("tracingConfig.mode")
    elif mode != "Active":
        yield f"tracingConfig.mode is {mode!r}; set tracingConfig.mode to 'Active'."


def _check_concurrency(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Found:
    if not config.get("required", True):
        return
    value = _props.peek(args.props, "reservedConcurrentExecutions")
    if value is _props.UNKNOWN:
        return  # set, though not known yet: that is all this rule asks
    reserved = _props.number(value)
    if reserved is None or reserved < 0:
        yield (
            "reservedConcurrentExecutions is not set; reserve concurrency so one function "
            "cannot starve the account (or its downstreams)."
        )


def _check_timeout(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Found:
    value = _props.peek(args.props, "timeout")
    if value is _props.UNKNOWN:
        yield Undecided("timeout")
        return
    timeout = _props.number(value)
    limit = float(config.get("maxTimeoutSeconds", 300))
    effective = _DEFAULT_TIMEOUT_SECONDS if timeout is None else timeout
    if effective > limit:
        yield f"timeout is {effective:g} s; keep it at most {limit:g} s."


def _check_runtime(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Found:
    runtime = _props.text(_props.peek(args.props, "runtime"))
    if runtime and runtime in set(config.get("deprecatedRuntimes", [])):
        yield f"runtime {runtime!r} is deprecated; move to a supported runtime (python3.12+)."


def _function_log_group(function: PolicyResource) -> Any:
    custom = _props.peek(function.props, "loggingConfig", "logGroup")
    if custom is _props.UNKNOWN or (isinstance(custom, str) and custom):
        return custom
    name = _props.peek(function.props, "name")
    if name is _props.UNKNOWN:
        return name
    return f"/aws/lambda/{name}" if _props.text(name) else None


def _check_log_retention(
    resources: list[PolicyResource], _config: Mapping[str, Any]
) -> Iterable[tuple[PolicyResource, str] | Undecided]:
    groups = [r for r in resources if r.resource_type == LOG_GROUP]
    retention = {
        _props.text(_props.peek(r.props, "name")): _props.peek(r.props, "retentionInDays")
        for r in groups
    }
    for function in (r for r in resources if r.resource_type == FUNCTION):
        group = _function_log_group(function)
        declared = [g for g in groups if _depends(function, g)]
        if declared:
            # The function's log group input is computed from a declared group.
            group = _props.text(_props.peek(declared[0].props, "name")) or group
        if group is _props.UNKNOWN:
            yield Undecided(f"{function.name}.loggingConfig.logGroup")
        elif group is None:
            yield function, "has no explicit name, so its log group cannot be declared; name it."
        elif group not in retention:
            yield (
                function,
                (
                    f"has no log group '{group}' in the stack; declare it with retentionInDays "
                    "so logs do not live forever."
                ),
            )
        elif not retention[group] and retention[group] is not _props.UNKNOWN:
            yield function, f"log group '{group}' has no retentionInDays; set one."


LAMBDA_TRACING_ACTIVE = resource_policy(
    name="lambda-tracing-active",
    description=(
        "Turn on active X-Ray tracing for every function: set tracingConfig.mode to 'Active' "
        "(checkov CKV_AWS_50; cfn-nag none)."
    ),
    types=_FUNCTIONS,
    check=_check_tracing,
)
LAMBDA_RESERVED_CONCURRENCY = resource_policy(
    name="lambda-reserved-concurrency",
    description=(
        "Set reservedConcurrentExecutions on every function to bound its concurrency "
        "(checkov CKV_AWS_115; cfn-nag W92)."
    ),
    types=_FUNCTIONS,
    check=_check_concurrency,
    schema=_CONCURRENCY_SCHEMA,
)
LAMBDA_TIMEOUT_BOUNDED = resource_policy(
    name="lambda-timeout-bounded",
    description=(
        "Keep every function's timeout at or below the configured maximum (no checkov or "
        "cfn-nag equivalent)."
    ),
    types=_FUNCTIONS,
    check=_check_timeout,
    schema=_TIMEOUT_SCHEMA,
)
LAMBDA_RUNTIME_SUPPORTED = resource_policy(
    name="lambda-runtime-supported",
    description=(
        "Run every function on a supported runtime, not one on the deprecated list (checkov "
        "CKV_AWS_363; cfn-nag none)."
    ),
    types=_FUNCTIONS,
    check=_check_runtime,
    schema=_RUNTIME_SCHEMA,
)
LAMBDA_LOG_RETENTION = stack_policy(
    name="lambda-log-retention",
    description=(
        "Declare each function's log group (/aws/lambda/<function name>, or its loggingConfig "
        "group) in the stack with retentionInDays set (checkov CKV_AWS_66 on the group; "
        "cfn-nag W86)."
    ),
    check=_check_log_retention,
)

# --- entry points and environment -----------------------------------------------------------

_PERMISSION = "aws:lambda/permission:Permission"
_FUNCTION_URL = "aws:lambda/functionUrl:FunctionUrl"
_SECRETS_SCHEMA = PolicyConfigSchema(
    properties={
        "allowedVariables": {
            "type": "array",
            "items": {"type": "string"},
            "default": [],
            "description": "Environment variable names exempt from the secret scan.",
        }
    }
)
_ENDPOINT_SCHEMA = PolicyConfigSchema(
    properties={
        "forbiddenPrefixes": {
            "type": "array",
            "items": {"type": "string"},
            "default": ["AWS_ENDPOINT_URL"],
            "description": (
                "Environment variable name prefixes that redirect the AWS SDKs "
                "(AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_<SERVICE>)."
            ),
        }
    }
)


def _check_permission(args: ResourceValidationArgs, _config: Mapping[str, Any]) -> Found:
    principal = _props.peek(args.props, "principal")
    if principal is _props.UNKNOWN:
        yield Undecided("principal")
        return
    principal = _props.text(principal)
    scoped = _props.peek(args.props, "sourceArn") or _props.peek(args.props, "sourceAccount")
    if principal == "*":
        url_auth = _props.peek(args.props, "functionUrlAuthType")
        if url_auth is _props.UNKNOWN:
            yield Undecided("functionUrlAuthType")
        elif url_auth != "AWS_IAM" and not scoped:
            yield (
                "lets any principal ('*') invoke the function; name the service or account "
                "that may, with sourceArn (and sourceAccount) for a service."
            )
    elif principal.endswith(".amazonaws.com") and not scoped:
        yield (
            f"lets the service '{principal}' invoke the function on behalf of anyone; set "
            "sourceArn (and sourceAccount) so only your own resource can (confused deputy)."
        )


def _check_function_url(args: ResourceValidationArgs, _config: Mapping[str, Any]) -> Found:
    auth = _props.peek(args.props, "authorizationType")
    if auth is _props.UNKNOWN:
        yield Undecided("authorizationType")
    elif auth != "AWS_IAM":
        yield f"authorizationType is {auth!r}; set it to 'AWS_IAM' so callers must sign requests."


def _variables(args: ResourceValidationArgs) -> Iterable[tuple[str, Any]]:
    variables = _props.peek(args.props, "environment", "variables")
    if not _props.is_mapping(variables):
        return
    for name in variables:
        yield str(name), _props.peek(variables, str(name))


def _check_secrets(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Found:
    allowed = set(config.get("allowedVariables", []))
    for name, value in _variables(args):
        if name in allowed:
            continue
        if value is _props.UNKNOWN:
            yield Undecided(f"environment.variables.{name}")
            continue
        kinds = secrets.secret_kinds(name, _props.text(value))
        if kinds:
            yield (
                f"environment variable {name} holds what looks like a secret ({', '.join(kinds)}); "
                "anyone who can read the function's configuration sees it. Keep it in Secrets "
                "Manager or SSM and pass its ARN or name instead."
            )


def _check_endpoint_override(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Found:
    prefixes = [p.upper() for p in config.get("forbiddenPrefixes", [])]
    for name, _value in _variables(args):
        if any(name.upper().startswith(prefix) for prefix in prefixes):
            yield (
                f"environment variable {name} redirects the AWS SDK to another endpoint, which "
                "could send the function's signed requests elsewhere; remove it (endpoint "
                "overrides belong to the local environment only)."
            )


LAMBDA_PERMISSION_RESTRICTED = resource_policy(
    name="lambda-permission-restricted",
    description=(
        "Grant invoke permissions to named principals only: no principal '*' (unless it is a "
        "function URL with AWS_IAM auth), and a service principal only with sourceArn or "
        "sourceAccount (checkov CKV_AWS_301, CKV_AWS_364; cfn-nag F13)."
    ),
    types=frozenset({_PERMISSION}),
    check=_check_permission,
)
LAMBDA_FUNCTION_URL_AUTH = resource_policy(
    name="lambda-function-url-auth",
    description=(
        "Give every function URL authorizationType 'AWS_IAM', never 'NONE' (checkov "
        "CKV_AWS_258; cfn-nag none)."
    ),
    types=frozenset({_FUNCTION_URL}),
    check=_check_function_url,
)
LAMBDA_NO_SECRETS_IN_ENVIRONMENT = resource_policy(
    name="lambda-no-secrets-in-environment",
    description=(
        "Keep secrets out of function environment variables (keys, tokens, passwords, "
        "credentials in URLs): store them in Secrets Manager or SSM and pass the ARN "
        "(checkov CKV_AWS_45; cfn-nag none)."
    ),
    types=_FUNCTIONS,
    check=_check_secrets,
    schema=_SECRETS_SCHEMA,
)
LAMBDA_NO_ENDPOINT_OVERRIDE = resource_policy(
    name="lambda-no-endpoint-override",
    description=(
        "Set no AWS_ENDPOINT_URL* environment variable on a function: an SDK endpoint "
        "override would send its signed AWS calls to another host (no checkov or cfn-nag "
        "equivalent)."
    ),
    types=_FUNCTIONS,
    check=_check_endpoint_override,
    schema=_ENDPOINT_SCHEMA,
)

POLICIES = (
    LAMBDA_TRACING_ACTIVE,
    LAMBDA_RESERVED_CONCURRENCY,
    LAMBDA_TIMEOUT_BOUNDED,
    LAMBDA_RUNTIME_SUPPORTED,
    LAMBDA_LOG_RETENTION,
    LAMBDA_PERMISSION_RESTRICTED,
    LAMBDA_FUNCTION_URL_AUTH,
    LAMBDA_NO_SECRETS_IN_ENVIRONMENT,
    LAMBDA_NO_ENDPOINT_OVERRIDE,
)
