"""Read engine properties whatever their container: dicts, mapping proxies or sequence proxies.

In the Pulumi engine ``args.props`` is a read-only proxy whose nested values are proxies too (not
``dict``/``list``) and whose numbers are floats, so every rule reads properties through these
helpers instead of ``isinstance(x, dict)`` checks.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any


def is_mapping(value: Any) -> bool:
    """True for any mapping (dict, ``MappingProxyType``, the engine's dict proxy)."""
    return isinstance(value, Mapping)


def is_sequence(value: Any) -> bool:
    """True for a list-like value that is not a string or bytes."""
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def get(props: Any, *path: str) -> Any:
    """The value at ``path`` inside nested mappings, or None when any step is missing."""
    value = props
    for key in path:
        if not is_mapping(value) or key not in value:
            return None
        value = value[key]
    return value


def as_list(value: Any) -> list[Any]:
    """A JSON-ish value as a list: None -> [], a scalar or mapping -> [value]."""
    if value is None:
        return []
    if is_sequence(value):
        return list(value)
    return [value]


def to_plain(value: Any) -> Any:
    """A deep copy of ``value`` with every mapping/sequence proxy turned into dict/list."""
    if is_mapping(value):
        return {str(k): to_plain(value[k]) for k in value}
    if is_sequence(value):
        return [to_plain(v) for v in value]
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
    """A string property, or '' when absent or not a string."""
    return value if isinstance(value, str) else ""
