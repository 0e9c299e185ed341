"""The shipped, dated Bedrock model catalog: lifecycle, end of life, inference profiles, regions.

``bedrock_catalog.json`` beside this module records, as of its ``checkedOn`` date, each model's
Bedrock lifecycle (Active, Legacy, EOL), its end-of-life date, and its system inference
profiles with their regions. Stack config is validated against it at config time: a model past
its end of life fails, a Legacy one (or one with an announced end of life) warns, and an
inference profile the catalog does not know must say its regions itself.

What a profile's ``regions`` mean depends on its kind (``profile_kind``):

- **geographic** (``us.``, ``eu.``, ``apac.``, ``jp.``, ``au.``, ``ca.``, ``us-gov.``): the
  destination regions Bedrock may route to. IAM must grant the foundation model in each of
  them, so this list *is* the grant ("Geographic cross-Region inference", Bedrock user guide).
- **global** (``global.``): the source regions the profile can be called from. Its
  destinations are every commercial region and IAM names none of them: it grants the
  region-less ``arn:aws:bedrock:::foundation-model/<model>`` instead ("Global cross-Region
  inference", IAM policy requirements).
- **application** (an ``application-inference-profile`` ARN, created in an account): the
  regions of the model or system profile it was copied from; never in the catalog.

To refresh the catalog, read each model's card (``sources``) and, from each source region,
``aws bedrock get-inference-profile --inference-profile-identifier <id>``: its ``models`` list
names the foundation-model ARN of every destination region. Update ``checkedOn``.
"""

from __future__ import annotations

import functools
import json
import re
from datetime import date
from enum import StrEnum
from importlib import resources
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "GEOGRAPHIC_PREFIXES",
    "CatalogModel",
    "Lifecycle",
    "LifecycleFinding",
    "ModelCatalog",
    "ProfileKind",
    "application_profile_parts",
    "load_catalog",
    "profile_kind",
    "system_profile_model",
]

#: Prefixes of geographic system profiles (``<geo>.<model id>``).
GEOGRAPHIC_PREFIXES = ("us", "us-gov", "eu", "apac", "jp", "au", "ca")
_SYSTEM_PROFILE = re.compile(rf"^(?P<geo>{'|'.join(map(re.escape, GEOGRAPHIC_PREFIXES))}|global)\.")
_APPLICATION_PROFILE = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):bedrock:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"application-inference-profile/(?P<id>[a-z0-9]+)$"
)


class Lifecycle(StrEnum):
    """A model's Bedrock lifecycle state (Bedrock user guide, "Model lifecycle")."""

    ACTIVE = "ACTIVE"
    LEGACY = "LEGACY"
    EOL = "EOL"


class ProfileKind(StrEnum):
    """The kinds of inference profile, each with its own IAM shape."""

    GEOGRAPHIC = "geographic"
    GLOBAL = "global"
    APPLICATION = "application"


def profile_kind(profile_id: str) -> ProfileKind | None:
    """The kind of an inference profile id (or application profile ARN); None if it is none."""
    if _APPLICATION_PROFILE.match(profile_id):
        return ProfileKind.APPLICATION
    match = _SYSTEM_PROFILE.match(profile_id)
    if match is None:
        return None
    return ProfileKind.GLOBAL if match["geo"] == "global" else ProfileKind.GEOGRAPHIC


def system_profile_model(profile_id: str) -> str | None:
    """The foundation model a system profile routes to (its id without the prefix)."""
    if _SYSTEM_PROFILE.match(profile_id) is None:
        return None
    return _SYSTEM_PROFILE.sub("", profile_id, count=1)


def application_profile_parts(arn: str) -> tuple[str, str, str] | None:
    """``(region, account, id)`` of an application inference profile ARN, else None."""
    match = _APPLICATION_PROFILE.match(arn)
    return (match["region"], match["account"], match["id"]) if match else None


class CatalogModel(BaseModel):
    """One foundation model as the catalog records it."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(description="The model's name in the Bedrock user guide.")
    lifecycle: Lifecycle = Field(description="Lifecycle state on the catalog's date.")
    launched: date = Field(description="Launch date on Bedrock.")
    end_of_life: date | None = Field(
        default=None, alias="endOfLife", description="End-of-life date, once announced."
    )
    prompt_cache_min_tokens: int | None = Field(
        default=None,
        alias="promptCacheMinTokens",
        description="Minimum tokens per cache checkpoint (None: no prompt caching).",
    )
    profiles: dict[str, list[str]] = Field(
        default_factory=dict, description="System inference profile id -> its regions."
    )


class LifecycleFinding(NamedTuple):
    """What the catalog says about using a model on a date: an error, a warning, or nothing."""

    error: str | None
    warning: str | None


class ModelCatalog(BaseModel):
    """The catalog: models by id, as checked on ``checked_on`` against ``sources``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    checked_on: date = Field(alias="checkedOn", description="When the catalog was last checked.")
    sources: list[str] = Field(min_length=1, description="Where its facts come from.")
    models: dict[str, CatalogModel] = Field(min_length=1)

    def model(self, model_id: str) -> CatalogModel | None:
        """The catalog's record of a foundation model, if it has one."""
        return self.models.get(model_id)

    def profile_regions(self, profile_id: str) -> list[str] | None:
        """The regions the catalog records for a system profile (see the module docstring)."""
        model_id = system_profile_model(profile_id)
        record = self.models.get(model_id or "")
        if record is None:
            return None
        return record.profiles.get(profile_id)

    def lifecycle(self, model_id: str, today: date) -> LifecycleFinding:
        """Whether ``model_id`` may be used on ``today``: past its end-of-life date (or EOL
        without one) is an error; Legacy, an announced end of life still ahead, or a model the
        catalog does not know is a warning. A recorded date decides over the recorded state,
        which is the state on the catalog's own date."""
        record = self.models.get(model_id)
        checked = f"Bedrock model catalog checked {self.checked_on.isoformat()}"
        if record is None:
            return LifecycleFinding(
                None, f"{model_id} is not in the {checked}: its lifecycle is not checked"
            )
        if record.end_of_life is not None and today >= record.end_of_life:
            return LifecycleFinding(
                f"{record.name} ({model_id}) reached end of life on "
                f"{record.end_of_life.isoformat()} ({checked}): Bedrock refuses every call; "
                f"use an Active model ({', '.join(self.active())})",
                None,
            )
        if record.lifecycle == Lifecycle.EOL and record.end_of_life is None:
            return LifecycleFinding(
                f"{record.name} ({model_id}) is end of life ({checked}); use an Active model "
                f"({', '.join(self.active())})",
                None,
            )
        if record.lifecycle == Lifecycle.LEGACY or record.end_of_life is not None:
            until = f" until {record.end_of_life.isoformat()}" if record.end_of_life else ""
            return LifecycleFinding(
                None,
                f"{record.name} ({model_id}) is Legacy{until} ({checked}): plan the move to an "
                f"Active model ({', '.join(self.active())})",
            )
        return LifecycleFinding(None, None)

    def active(self) -> list[str]:
        """Ids of the Active models without an announced end of life, sorted."""
        return sorted(
            model_id
            for model_id, record in self.models.items()
            if record.lifecycle == Lifecycle.ACTIVE and record.end_of_life is None
        )


@functools.cache
def load_catalog() -> ModelCatalog:
    """The catalog shipped with this package (``bedrock_catalog.json``), parsed once."""
    text = resources.files(__package__).joinpath("bedrock_catalog.json").read_text("utf-8")
    return ModelCatalog.model_validate(json.loads(text))
