"""Physical names and tags: every named AWS resource is ``agentry-<stack>-<suffix>``."""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["PROJECT", "lambda_log_group_name", "physical_name", "stack_tags"]

PROJECT = "agentry"
_SUFFIX = re.compile(r"^[a-z0-9][a-z0-9-]*$")
# SQS, Lambda, IAM role and state machine names all allow 64 characters; stay under the least.
_MAX_NAME = 64


def physical_name(stack: str, suffix: str) -> str:
    """The explicit physical name of a resource of ``stack`` (``agentry-dev-steps``)."""
    if not _SUFFIX.match(suffix):
        raise ValueError(f"suffix: {suffix!r} must be lower-case letters, digits and '-'")
    name = f"{PROJECT}-{stack}-{suffix}"
    if len(name) > _MAX_NAME:
        raise ValueError(f"suffix: {name!r} is longer than {_MAX_NAME} characters")
    return name


def lambda_log_group_name(function_name: str) -> str:
    """The log group Lambda writes to; created by us so its retention is ours."""
    return f"/aws/lambda/{function_name}"


def stack_tags(stack: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Tags for every taggable resource: the config's ``tags`` plus the three required ones.

    The required tags are applied last so a config entry can never overwrite them.
    """
    return {
        **(extra or {}),
        "Project": PROJECT,
        "Environment": stack,
        "ManagedBy": "pulumi",
    }
