"""Read engine properties whatever their container: dicts, mapping proxies or sequence proxies.

In the Pulumi engine ``args.props`` is a read-only proxy whose nested values are proxies too (not
``dict``/``list``) and whose numbers are floats, so every rule reads properties through these
helpers instead of ``isinstance(x, dict)`` checks.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from pulumi_policy.proxy import UnknownValueError

__all__ = [
    "UNKNOWN",
    "UNKNOWN_SENTINELS",
    "UNKNOWN_STRING",
    "as_list",
    "get",
    "is_enabled",
    "is_mapping",
    "is_sequence",
    "is_unknown",
    "number",
    "parse_json",
    "peek",
    "text",
    "to_plain",
]

#: The engine's placeholders for values that are not known during a preview (pulumi_policy.proxy).
UNKNOWN_SENTINELS: Final = frozenset(
    {
        "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7",  # boolean
        "3eeb2bf0-c639-47a8-9e75-3b44932eb421",  # number
        "04da6b54-80e4-46f7-96ec-b56ff0331ba9",  # string
        "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2",  # array
        "030794c1-ac77-496b-92df-f27374a8bd58",  # asset
        "e48ece36-62e2-4504-bad9-02848725956a",  # archive
        "dd056dcd-154b-4c76-9bd3-c8f88648b5ff",  # object
    }
)
UNKNOWN_STRING: Final = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


class _Unknown:
    """The marker :func:`peek` returns for a value that is set but not known yet (a preview)."""

    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"

    def __bool__(self) -> bool:
        # An unknown value is set: truthiness tests ("is it configured?") answer yes.
        return True


#: Set, but unknown until the resource it depends on exists.
UNKNOWN: Final = _Unknown()


def is_mapping(value: Any) -> bool:
    """True for any mapping (dict, ``MappingProxyType``, the engine's dict proxy)."""
    return isinstance(value, Mapping)


def is_sequence(value: Any) -> bool:
    """True for a list-like value that is not a string or bytes."""
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def is_unknown(value: Any) -> bool:
    """True for :data:`UNKNOWN` and for the engine's raw unknown sentinels."""
    return value is UNKNOWN or (isinstance(value, str) and value in UNKNOWN_SENTINELS)


_MISSING: Final = object()


def _item(container: Any, key: Any) -> Any:
    # Not ``key in container``: a Mapping's __contains__ reads the value, which raises for an
    # unknown one in the engine's proxies.
    try:
        value = container[key]
    except UnknownValueError:
        return UNKNOWN
    except (KeyError, IndexError):
        return _MISSING
    return UNKNOWN if is_unknown(value) else value


def peek(props: Any, *path: str) -> Any:
    """The value at ``path`` (None when a step is missing, :data:`UNKNOWN` when one is unknown).

    Unlike plain indexing of the engine's proxies this never raises ``UnknownValueError``, so a
    rule can still decide what does not depend on the unknown part.
    """
    value = props
    for key in path:
        if is_unknown(value):
            return UNKNOWN
        if not is_mapping(value):
            return None
        value = _item(value, key)
        if value is _MISSING:
            return None
    return UNKNOWN if is_unknown(value) else value


def get(props: Any, *path: str) -> Any:
    """The value at ``path`` inside nested mappings, or None when any step is missing.

    Raises ``UnknownValueError`` when the value is unknown: the rule cannot decide without it.
    """
    value = peek(props, *path)
    if value is UNKNOWN:
        raise UnknownValueError(UNKNOWN_STRING, list(path))
    return value


def as_list(value: Any) -> list[Any]:
    """A JSON-ish value as a list: None -> [], a scalar or mapping -> [value]."""
    if value is None:
        return []
    if is_sequence(value):
        return list(value)
    return [value]


def to_plain(value: Any) -> Any:
    """A deep copy of ``value`` with every mapping/sequence proxy turned into dict/list.

    Unknown leaves become :data:`UNKNOWN` instead of raising.
    """
    if is_unknown(value):
        return UNKNOWN
    if is_mapping(value):
        return {str(k): to_plain(_item(value, k)) for k in value}
    if is_sequence(value):
        return [to_plain(_item(value, i)) for i in range(len(value))]
    return value


def parse_json(value: Any) -> Any:
    """A JSON document given as a string (as the engine passes policies) or as a mapping.

    Raises ValueError with the reason when the string is not JSON.
    """
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    return to_plain(value)


def is_enabled(value: Any) -> bool:
    """True only for a real boolean true (the engine never sends "true" strings for bools)."""
    return value is True


def number(value: Any) -> float | None:
    """A number property as float (the engine sends floats), or None when absent or not numeric."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def text(value: Any) -> str:
    """A string property, or '' when absent, unknown or not a string."""
    return value if isinstance(value, str) and not is_unknown(value) else ""
