"""Make anything a tool returns or raises storable: JSON-safe values and valid UTF-8 text.

A tool is a team's code: it may return objects JSON cannot hold (sets, bytes, dates, custom
classes, circular structures, NaN) or text that is not valid UTF-8 (lone surrogates). Whatever
cannot be kept as it is gets a visible marker, and the result says that something was replaced,
so the outcome is always recorded rather than lost to a serialisation error after the call ran.

Hand-written rather than ``pydantic_core.to_jsonable_python``: that raises on circular data,
invalid UTF-8 bytes and non-finite floats, and reports no replacement; here every case ends in a
value and a flag.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import decimal
import enum
import math
import uuid
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

__all__ = ["REPLACED_NOTE", "Sanitized", "bounded_text", "json_safe", "utf8_text"]

#: Added to a result whose values had to be replaced to be stored.
REPLACED_NOTE = "[some values of this result could not be stored and were replaced by markers]"
_MAX_DEPTH = 64


@dataclasses.dataclass(frozen=True)
class Sanitized:
    """A JSON-safe value and whether anything had to be replaced to make it so."""

    value: Any
    replaced: bool


def utf8_text(text: str) -> tuple[str, bool]:
    """``text`` as valid UTF-8 (lone surrogates become U+FFFD) and whether it changed."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8"), True
    return text, False


def bounded_text(text: str, max_chars: int) -> str:
    """``text`` as valid UTF-8, cut to ``max_chars`` with a marker saying how much was cut."""
    text, _ = utf8_text(text)
    if len(text) <= max_chars:
        return text
    return f"{text[:max_chars]}...[truncated {len(text) - max_chars} characters]"


def json_safe(value: Any) -> Sanitized:
    """A JSON-safe copy of ``value`` (see the module doc)."""
    walker = _Walker()
    return Sanitized(walker.walk(value, 0, set()), walker.replaced)


class _Walker:
    def __init__(self) -> None:
        self.replaced = False

    def mark(self, marker: str) -> str:
        self.replaced = True
        return marker

    def walk(self, value: Any, depth: int, seen: set[int]) -> Any:
        if value is None or isinstance(value, bool | int):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else self.mark(f"[non-finite number {value}]")
        if isinstance(value, str):
            text, changed = utf8_text(value)
            self.replaced |= changed
            return text
        if isinstance(value, bytes | bytearray):
            encoded = base64.b64encode(bytes(value[:3000])).decode()
            return self.mark(f"[{len(value)} bytes, base64 of the first 3000: {encoded}]")
        if isinstance(value, dt.datetime | dt.date | dt.time):
            return value.isoformat()
        if isinstance(value, decimal.Decimal | uuid.UUID):
            return str(value)
        if isinstance(value, enum.Enum):
            return self.walk(value.value, depth, seen)
        if depth >= _MAX_DEPTH:
            return self.mark("[nested too deep]")
        if id(value) in seen:
            return self.mark("[circular reference]")
        if isinstance(value, BaseModel):
            return self.walk(value.model_dump(mode="python"), depth + 1, seen)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return self.walk(dataclasses.asdict(value), depth + 1, seen)
        if isinstance(value, Mapping | list | tuple | set | frozenset):
            inner = seen | {id(value)}
            if isinstance(value, Mapping):
                return {
                    self.key(key): self.walk(item, depth + 1, inner) for key, item in value.items()
                }
            return [self.walk(item, depth + 1, inner) for item in value]
        return self.mark(f"[unserialisable {type(value).__name__}: {self.repr(value)}]")

    def key(self, key: Any) -> str:
        if isinstance(key, str):
            text, changed = utf8_text(key)
            self.replaced |= changed
            return text
        if isinstance(key, int | float | bool) or key is None:
            return str(key)
        return self.mark(f"[key {type(key).__name__}]")

    def repr(self, value: Any) -> str:
        try:
            text = repr(value)
        except Exception:  # a broken __repr__ is the tool's bug, not a reason to lose the call
            return "?"
        return bounded_text(text, 200)
