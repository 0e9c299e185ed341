"""Anything a tool returns or raises becomes storable: JSON-safe values, valid UTF-8, bounded.

The loop's side of it (the outcome is recorded and the agent goes on) is in
``test_acting.py``; here the sanitiser's own answers.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import json
from typing import Any

import pytest
from pydantic import BaseModel

from agentry_runtime.sanitize import bounded_text, json_safe, utf8_text


class _Colour(enum.Enum):
    RED = "red"


class _Model(BaseModel):
    when: dt.date


@dataclasses.dataclass
class _Point:
    x: int


def test_plain_json_passes_unchanged() -> None:
    value = {"a": [1, 2.5, "x", None, True], "b": {"c": "d"}}
    result = json_safe(value)
    assert (result.value, result.replaced) == (value, False)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (dt.date(2025, 6, 1), "2025-06-01"),
        (decimal.Decimal("1.50"), "1.50"),
        (_Colour.RED, "red"),
        (_Model(when=dt.date(2025, 6, 1)), {"when": "2025-06-01"}),
        (_Point(1), {"x": 1}),
        ((1, 2), [1, 2]),
        ({1: "one"}, {"1": "one"}),
    ],
    ids=["date", "decimal", "enum", "model", "dataclass", "tuple", "int key"],
)
def test_values_json_lacks_are_converted_without_loss(value: Any, expected: Any) -> None:
    result = json_safe(value)
    assert (result.value, result.replaced) == (expected, False)


def _circular() -> dict[str, Any]:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    return loop


@pytest.mark.parametrize(
    ("value", "marker"),
    [
        (float("nan"), "non-finite number"),
        (b"\x00\xff", "bytes, base64"),
        (_circular(), "circular reference"),
        (object(), "unserialisable object"),
        ("bad \udc80 text", "bad "),
        ({("tuple", "key"): 1}, "[key tuple]"),
    ],
    ids=["nan", "bytes", "circular", "object", "lone surrogate", "tuple key"],
)
def test_what_cannot_be_kept_is_marked_and_reported(value: Any, marker: str) -> None:
    # GIVEN a value JSON cannot hold WHEN it is made safe
    result = json_safe(value)
    # THEN it serialises as valid UTF-8 JSON, a marker shows where, and the result says so
    text = json.dumps(result.value, ensure_ascii=False, allow_nan=False)
    text.encode("utf-8")
    assert marker in text
    assert result.replaced


def test_deep_nesting_is_cut_with_a_marker() -> None:
    value: Any = "bottom"
    for _ in range(100):
        value = [value]
    assert "nested too deep" in json.dumps(json_safe(value).value)


def test_text_is_made_valid_and_bounded() -> None:
    assert utf8_text("fine") == ("fine", False)
    text, changed = utf8_text("bad \ud800 end")
    assert changed
    assert "\ud800" not in text
    assert text.startswith("bad ")
    assert text.endswith(" end")
    text.encode("utf-8")
    assert bounded_text("abcdef", 3) == "abc...[truncated 3 characters]"
    assert bounded_text("abc", 3) == "abc"
