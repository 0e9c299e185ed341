"""Bedrock access as pure functions: IAM statements from the environment's allowlist.

Converse is authorised by ``bedrock:InvokeModel`` (there is no ``bedrock:Converse`` action).
Each kind of inference profile has the IAM shape AWS documents for it, and nothing wider:

- **geographic** (``us.``, ``eu.``, ``apac.``...; Bedrock user guide, "Geographic cross-Region
  inference", IAM policy requirements): the profile ARN in the source region, and the foundation
  model in every destination region of the profile, scoped with the
  ``bedrock:InferenceProfileArn`` condition key so those grants work only through the profile;
- **global** (``global.``; "Global cross-Region inference", IAM policy requirements,
  https://docs.aws.amazon.com/bedrock/latest/userguide/global-cross-region-inference.html):
  the profile ARN in the source region (``aws:RequestedRegion`` = the source region), the
  foundation model in the source region (the same region, through the profile), and the
  region-less ``arn:aws:bedrock:::foundation-model/<model>`` conditioned on
  ``aws:RequestedRegion`` = ``unspecified`` (what a global request carries) and on the profile;
- **application** (an ``application-inference-profile`` ARN; "Prerequisites for inference
  profiles": "if you specify an inference profile ... you must also specify the foundation model
  in each Region associated with it"): the profile ARN, and the foundation model in each of its
  regions, scoped to the profile with ``bedrock:InferenceProfileArn``.

Foundation models listed for direct use get ``InvokeModel`` on their ARN in the stack's region.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from agentry_platform.lib.iam import Statement, statement
from agentry_platform.lib.model_catalog import ProfileKind

__all__ = [
    "INVOKE_ACTIONS",
    "PROFILE_ARN_KEY",
    "REQUESTED_REGION_KEY",
    "UNSPECIFIED_REGION",
    "InferenceProfileGrant",
    "bedrock_statements",
    "foundation_model_arn",
    "global_foundation_model_arn",
    "inference_profile_arn",
]

INVOKE_ACTIONS = ("bedrock:InvokeModel",)
#: Condition key Bedrock sets when a foundation model is invoked through a profile.
PROFILE_ARN_KEY = "bedrock:InferenceProfileArn"
#: Global condition key; a global profile's region-less model request carries ``unspecified``.
REQUESTED_REGION_KEY = "aws:RequestedRegion"
UNSPECIFIED_REGION = "unspecified"
_ID = re.compile(r"^[a-z0-9][a-z0-9.:-]*$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")


@dataclass(frozen=True)
class InferenceProfileGrant:
    """An inference profile to grant: its id (an ARN for an application profile), its kind,
    its foundation model and its regions (destinations; for a global profile, sources)."""

    id: str
    model: str
    regions: tuple[str, ...]
    kind: ProfileKind = ProfileKind.GEOGRAPHIC


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


def global_foundation_model_arn(model_id: str) -> str:
    """``arn:aws:bedrock:::foundation-model/ID``: the region-less ARN global profiles need."""
    _check_id("model", model_id)
    return f"arn:aws:bedrock:::foundation-model/{model_id}"


def inference_profile_arn(region: str, account_id: str, profile_id: str) -> str:
    """``arn:aws:bedrock:REGION:ACCOUNT:inference-profile/ID`` of a system inference profile."""
    _check_region("region", region)
    _check_id("profile", profile_id)
    return f"arn:aws:bedrock:{region}:{account_id}:inference-profile/{profile_id}"


def _profile_statements(
    index: int, profile: InferenceProfileGrant, region: str, account_id: str
) -> list[Statement]:
    if not profile.regions:
        raise ValueError(f"profiles[{index}].regions: a profile needs its regions")
    if profile.kind == ProfileKind.APPLICATION:
        profile_arn = profile.id
    else:
        profile_arn = inference_profile_arn(region, account_id, profile.id)
    through_profile = {PROFILE_ARN_KEY: profile_arn}
    if profile.kind == ProfileKind.GLOBAL:
        if region not in profile.regions:
            raise ValueError(
                f"profiles[{index}].regions: {region} is not a source region of {profile.id}"
            )
        in_region = {REQUESTED_REGION_KEY: region}
        return [
            statement(
                f"InvokeGlobalProfile{index}",
                INVOKE_ACTIONS,
                [profile_arn],
                condition={"StringEquals": in_region},
            ),
            statement(
                f"InvokeGlobalProfileRegionModel{index}",
                INVOKE_ACTIONS,
                [foundation_model_arn(region, profile.model)],
                condition={"StringEquals": {**in_region, **through_profile}},
            ),
            statement(
                f"InvokeGlobalProfileGlobalModel{index}",
                INVOKE_ACTIONS,
                [global_foundation_model_arn(profile.model)],
                condition={
                    "StringEquals": {REQUESTED_REGION_KEY: UNSPECIFIED_REGION, **through_profile}
                },
            ),
        ]
    return [
        statement(f"InvokeProfile{index}", INVOKE_ACTIONS, [profile_arn]),
        statement(
            f"InvokeProfileModels{index}",
            INVOKE_ACTIONS,
            [foundation_model_arn(dest, profile.model) for dest in sorted(set(profile.regions))],
            condition={"StringEquals": through_profile},
        ),
    ]


def bedrock_statements(
    *,
    region: str,
    account_id: str,
    models: Sequence[str],
    profiles: Sequence[InferenceProfileGrant] = (),
) -> list[Statement]:
    """InvokeModel on each directly allowed model in ``region``, and on each profile in the
    shape its kind needs (see the module docstring)."""
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
        statements.extend(_profile_statements(index, profile, region, account_id))
    return statements
