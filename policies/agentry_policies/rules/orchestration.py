"""Step Functions state machines (logging, tracing) and EventBridge targets (DLQ, retries)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from agentry_policies import _props
from agentry_policies._base import resource_policy

_STATE_MACHINES = frozenset({"aws:sfn/stateMachine:StateMachine"})
_EVENT_TARGETS = frozenset({"aws:cloudwatch/eventTarget:EventTarget"})


def _check_sfn_logging(args: ResourceValidationArgs, _config: Mapping[str, Any]) -> Iterable[str]:
    logging = args.props.get("loggingConfiguration")
    level = _props.get(logging, "level")
    if level in (None, "OFF") or not _props.get(logging, "logDestination"):
        yield (
            f"logging level is {level!r}; set loggingConfiguration.level (ERROR or ALL) and "
            "logDestination to a log group ARN ending in ':*'."
        )


def _check_sfn_tracing(args: ResourceValidationArgs, _config: Mapping[str, Any]) -> Iterable[str]:
    if not _props.is_enabled(_props.get(args.props, "tracingConfiguration", "enabled")):
        yield "X-Ray tracing is off; set tracingConfiguration.enabled to true."


def _check_target(args: ResourceValidationArgs, _config: Mapping[str, Any]) -> Iterable[str]:
    if not _props.get(args.props, "deadLetterConfig", "arn"):
        yield "has no dead-letter queue; set deadLetterConfig.arn to an SQS queue's ARN."
    retry = args.props.get("retryPolicy")
    if not _props.is_mapping(retry) or not retry:
        yield (
            "has no retry policy; set retryPolicy (maximumRetryAttempts, "
            "maximumEventAgeInSeconds) explicitly."
        )


SFN_LOGGING = resource_policy(
    name="sfn-logging",
    description="Send every state machine's execution history to CloudWatch Logs.",
    types=_STATE_MACHINES,
    check=_check_sfn_logging,
)
SFN_TRACING = resource_policy(
    name="sfn-tracing",
    description="Turn on X-Ray tracing for every state machine.",
    types=_STATE_MACHINES,
    check=_check_sfn_tracing,
)
EVENTBRIDGE_TARGET_RESILIENCE = resource_policy(
    name="eventbridge-target-resilience",
    description="Give every EventBridge target a dead-letter queue and an explicit retry policy.",
    types=_EVENT_TARGETS,
    check=_check_target,
)

POLICIES = (SFN_LOGGING, SFN_TRACING, EVENTBRIDGE_TARGET_RESILIENCE)
