"""Step Functions state machines (logging, tracing) and EventBridge targets (DLQ, retries)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from agentry_policies import _props
from agentry_policies._base import Found, Undecided, resource_policy

__all__ = ["EVENTBRIDGE_TARGET_RESILIENCE", "POLICIES", "SFN_LOGGING", "SFN_TRACING"]

_STATE_MACHINES = frozenset({"aws:sfn/stateMachine:StateMachine"})
_EVENT_TARGETS = frozenset({"aws:cloudwatch/eventTarget:EventTarget"})


def _check_sfn_logging(args: ResourceValidationArgs, _config: Mapping[str, Any]) -> Found:
    level = _props.peek(args.props, "loggingConfiguration", "level")
    # A destination that is set but not known yet (a first preview) is set.
    destination = _props.peek(args.props, "loggingConfiguration", "logDestination")
    if level is _props.UNKNOWN:
        yield Undecided("loggingConfiguration.level")
    elif level in (None, "OFF") or not destination:
        yield (
            f"logging level is {level!r}; set loggingConfiguration.level (ERROR or ALL) and "
            "logDestination to a log group ARN ending in ':*'."
        )


def _check_sfn_tracing(args: ResourceValidationArgs, _config: Mapping[str, Any]) -> Found:
    enabled = _props.peek(args.props, "tracingConfiguration", "enabled")
    if enabled is _props.UNKNOWN:
        yield Undecided("tracingConfiguration.enabled")
    elif enabled is not True:
        yield "X-Ray tracing is off; set tracingConfiguration.enabled to true."


def _check_target(args: ResourceValidationArgs, _config: Mapping[str, Any]) -> Found:
    if not _props.peek(args.props, "deadLetterConfig", "arn"):
        yield "has no dead-letter queue; set deadLetterConfig.arn to an SQS queue's ARN."
    retry = _props.peek(args.props, "retryPolicy")
    if not retry or (retry is not _props.UNKNOWN and not _props.is_mapping(retry)):
        yield (
            "has no retry policy; set retryPolicy (maximumRetryAttempts, "
            "maximumEventAgeInSeconds) explicitly."
        )


SFN_LOGGING = resource_policy(
    name="sfn-logging",
    description=(
        "Send every state machine's execution history to CloudWatch Logs: set "
        "loggingConfiguration.level (ERROR or ALL) and logDestination (checkov CKV_AWS_285; "
        "cfn-nag none)."
    ),
    types=_STATE_MACHINES,
    check=_check_sfn_logging,
)
SFN_TRACING = resource_policy(
    name="sfn-tracing",
    description=(
        "Turn on X-Ray tracing for every state machine: set tracingConfiguration.enabled "
        "(checkov CKV_AWS_284; cfn-nag none)."
    ),
    types=_STATE_MACHINES,
    check=_check_sfn_tracing,
)
EVENTBRIDGE_TARGET_RESILIENCE = resource_policy(
    name="eventbridge-target-resilience",
    description=(
        "Give every EventBridge target a dead-letter queue (deadLetterConfig.arn) and an "
        "explicit retryPolicy (no checkov or cfn-nag equivalent)."
    ),
    types=_EVENT_TARGETS,
    check=_check_target,
)

POLICIES = (SFN_LOGGING, SFN_TRACING, EVENTBRIDGE_TARGET_RESILIENCE)
