"""Bedrock access as pure functions: IAM statements from the environment's allowlist.

Converse is authorised by ``bedrock:InvokeModel`` (there is no ``bedrock:Converse`` action).
Invoking through a system inference profile needs the profile's ARN *and* the foundation model
in every destination region of the profile; those model grants are scoped with the
``bedrock:InferenceProfileArn`` condition key so they only work through that profile.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from agentry_platform.lib.iam import Statement, statement

__all__ = [
    "INVOKE_ACTIONS",
    "InferenceProfileGrant",
    "bedrock_statements",
    "foundation_model_arn",
    "inference_profile_arn",
]

INVOKE_ACTIONS = ("bedrock:InvokeModel",)
_ID = re.compile(r"^[a-z0-9][a-z0-9.:-]*$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")


@dataclass(frozen=True)
class InferenceProfileGrant:
    """A system inference profile: its id, its foundation model and its destination regions."""

    id: str
    model: str
    regions: tuple[str, ...]


def _check_id(field: str, value: str) -> None:
    if not _ID.match(value):
        raise ValueError(f"{field}: {value!r} is not a concrete Bedrock id (no wildcards)")


def _check_region(field: str, value: str) -> None:
    if not _REGION.match(value):
        raise ValueError(f"{field}: {value!r} is not an AWS region")


def foundation_model_arn(region: str, model_id: str) -> str:
    """``arn:aws:bedrock:REGION::foundation-model/ID`` (foundation models have no account)."""
    _check_region("region", region)
    _check_id("model", model_id)
    return f"arn:aws:bedrock:{region}::foundation-model/{model_id}"


def inference_profile_arn(region: str, account_id: str, profile_id: str) -> str:
    """``arn:aws:bedrock:REGION:ACCOUNT:inference-profile/ID`` of a system inference profile."""
    _check_region("region", region)
    _check_id("profile", profile_id)
    return f"arn:aws:bedrock:{region}:{account_id}:inference-profile/{profile_id}"


def _sid(prefix: str, index: int) -> str:
    return f"{prefix}{index}"


def bedrock_statements(
    *,
    region: str,
    account_id: str,
    models: Sequence[str],
    profiles: Sequence[InferenceProfileGrant] = (),
) -> list[Statement]:
    """InvokeModel on each allowed model in ``region``, and on each profile with its models."""
    statements: list[Statement] = []
    if models:
        statements.append(
            statement(
                "InvokeAllowedModels",
                INVOKE_ACTIONS,
                [foundation_model_arn(region, model) for model in sorted(set(models))],
            )
        )
    for index, profile in enumerate(profiles):
        if not profile.regions:
            raise ValueError(f"profiles[{index}].regions: a profile needs destination regions")
        profile_arn = inference_profile_arn(region, account_id, profile.id)
        statements.append(statement(_sid("InvokeProfile", index), INVOKE_ACTIONS, [profile_arn]))
        statements.append(
            statement(
                _sid("InvokeProfileModels", index),
                INVOKE_ACTIONS,
                [
                    foundation_model_arn(dest, profile.model)
                    for dest in sorted(set(profile.regions))
                ],
                condition={"StringEquals": {"bedrock:InferenceProfileArn": profile_arn}},
            )
        )
    return statements
