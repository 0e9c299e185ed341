"""The stack's model allowlist against the policy pack's: two independent statements, compared.

The stack states its allowlist once (``agentry:models`` and ``agentry:inferenceProfiles`` in
``Pulumi.<stack>.yaml``, profile regions filled in from the model catalog); the pack config
(``policies/<stack>.json``) keeps its own copy in ``bedrock-model-allowlist`` and
``bedrock-inference-profile-grants``, as a guardrail the Pulumi CLI enforces on its own. When
they disagree, ``agentry check`` says so with both values: an entry only the stack has would be
refused by the pack (mandatory); an entry only the pack has is a guardrail wider than the stack
needs (advisory).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel

from agentry_platform.lib.model_catalog import ProfileKind
from agentry_stacks.deploy.config import EnvironmentConfig

__all__ = ["ALLOWLIST_CHECK", "AllowlistFinding", "compare_allowlists"]

#: The name findings carry, as if it were a rule of the pack.
ALLOWLIST_CHECK = "stack-pack-allowlist"
_ALLOWLIST = "bedrock-model-allowlist"
_GRANTS = "bedrock-inference-profile-grants"


class AllowlistFinding(BaseModel):
    """One disagreement between the stack's and the pack's allowlist."""

    message: str
    enforcement: Literal["mandatory", "advisory"]


def _entry(pack_config: Mapping[str, Any], policy: str) -> Mapping[str, Any]:
    value = pack_config.get(policy, {})
    return value if isinstance(value, Mapping) else {}


def _profiles(entries: Any) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, Mapping) and "id" in entry:
            found[str(entry["id"])] = {
                "model": entry.get("model"),
                "regions": sorted(entry.get("regions") or []),
            }
    return found


def _show(values: Any) -> str:
    return repr(sorted(values)) if isinstance(values, set | list | tuple) else repr(values)


def compare_allowlists(
    config: EnvironmentConfig, pack_config: Mapping[str, Any], *, pack_file: str
) -> list[AllowlistFinding]:
    """Every difference between the stack's allowlist and each copy in the pack config."""
    stack_file = f"Pulumi.{config.stack}.yaml"
    findings: list[AllowlistFinding] = []

    def differ(what: str, stack_value: Any, where: str, pack_value: Any, mandatory: bool) -> None:
        findings.append(
            AllowlistFinding(
                message=(
                    f"{what}: the stack ({stack_file}) has {_show(stack_value)}, the pack "
                    f"({pack_file} {where}) has {_show(pack_value)}; change them together."
                ),
                enforcement="mandatory" if mandatory else "advisory",
            )
        )

    stack_models = set(config.models)
    pack_models = {str(m) for m in _entry(pack_config, _ALLOWLIST).get("allowedModels", [])}
    if stack_models != pack_models:
        differ(
            "direct models",
            stack_models,
            f"{_ALLOWLIST}.allowedModels",
            pack_models,
            mandatory=not stack_models <= pack_models,
        )
    stack_profiles = {
        p.id: {
            "model": p.model,
            "regions": [] if p.kind == ProfileKind.GLOBAL else sorted(p.regions),
        }
        for p in config.resolved_profiles()
    }
    for policy in (_ALLOWLIST, _GRANTS):
        where = f"{policy}.inferenceProfiles"
        pack_profiles = _profiles(_entry(pack_config, policy).get("inferenceProfiles"))
        if set(stack_profiles) != set(pack_profiles):
            differ(
                "inference profiles",
                set(stack_profiles),
                where,
                set(pack_profiles),
                mandatory=not set(stack_profiles) <= set(pack_profiles),
            )
        for profile_id in sorted(set(stack_profiles) & set(pack_profiles)):
            ours, theirs = stack_profiles[profile_id], pack_profiles[profile_id]
            if ours["model"] != theirs["model"]:
                differ(f"model of {profile_id}", ours["model"], where, theirs["model"], True)
            if ours["regions"] and ours["regions"] != theirs["regions"]:
                differ(f"regions of {profile_id}", ours["regions"], where, theirs["regions"], True)
    return findings
