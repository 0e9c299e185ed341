"""Hypothesis over the api handler: any request gets a sound answer and bad input stores nothing.

For every generated request (methods, paths, agent ids, headers, query parameters, JSON and
non-JSON bodies, wrong types, unicode, huge strings): never a 5xx; every 4xx is a JSON error
naming at least one field and why; and a 4xx leaves every stored item exactly as it was.
"""

from __future__ import annotations

import itertools
import json
import string
from base64 import b64encode
from typing import Any

import pytest
from fuzz_world import FUZZ, ApiWorld, request
from hypothesis import given
from hypothesis import strategies as st

from agentry_runtime.state import Status

METHODS = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
ROUTES = [
    "/agents",
    "/agents/{id}",
    "/agents/{id}/messages",
    "/agents/{id}/resume",
    "/agents/{id}/cancel",
    "/agents/{id}/approvals",
]
FIELDS = ["goal", "prompt", "instruction", "reason", "limit", "cursor", "colour", ""]

# Text that stresses parsers: unicode of every category, digits that are not ASCII, controls.
TEXT = st.text(max_size=40) | st.sampled_from(["²", "١٢", "0", "-1", "101", "1e3", " 5", "\x00"])
HUGE = st.sampled_from([3999, 4000, 4001, 65_000, 70_000]).map(lambda n: "x" * n)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)


@st.composite
def bodies(draw: st.DrawFn) -> str | None:
    """A request body: absent, an object with (mostly) known keys of any type, or any text."""
    choice = draw(st.integers(0, 4))
    if choice == 0:
        return None
    if choice == 1:
        keys = st.sampled_from(FIELDS) | TEXT
        obj = draw(st.dictionaries(keys, JSON | HUGE, max_size=3))
        return json.dumps(obj)
    if choice == 2:
        return json.dumps(draw(JSON))
    if choice == 3:
        return draw(TEXT | HUGE)
    return draw(st.binary(max_size=40)).decode("latin-1")


@st.composite
def agent_ids(draw: st.DrawFn, known: list[str]) -> str:
    """A known agent, a well-formed unknown one, or anything at all."""
    return draw(
        st.sampled_from(known)
        | st.text(alphabet="0123456789abcdef", min_size=32, max_size=32).map("agent-{}".format)
        | TEXT.filter(lambda t: "/" not in t and t.strip() != "")
        | HUGE
    )


@st.composite
def requests(draw: st.DrawFn, known: list[str]) -> dict[str, Any]:
    """Any HTTP API event: a route (or garbage path), method, headers, query and body."""
    if draw(st.booleans()):
        path = draw(st.sampled_from(ROUTES)).replace("{id}", draw(agent_ids(known)))
    else:
        path = "/" + draw(TEXT)
    names = st.sampled_from(["Idempotency-Key", "Content-Type", "X-Other"]) | st.text(
        alphabet=string.ascii_letters + "-", min_size=1, max_size=12
    )
    headers = draw(st.dictionaries(names, TEXT | HUGE, max_size=3))
    query = draw(
        st.dictionaries(st.sampled_from(["limit", "cursor", "x"]) | TEXT, TEXT, max_size=3)
    )
    return request(draw(METHODS), path, body=draw(bodies()), headers=headers, query=query)


_checked = itertools.count()
#: Every so many examples, compare full table scans too (the write hook covers all the others).
SCAN_EVERY = 15


def _check(world: ApiWorld, event: dict[str, Any]) -> int:
    scan = next(_checked) % SCAN_EVERY == 0
    before = world.snapshot() if scan else None
    status, body, raw = world.call(event)
    where = f"{event['requestContext']['http']['method']} {event['rawPath'][:80]!r}"
    assert status < 500, f"{where} -> {status}: {raw[:300]}"
    if status >= 400:
        assert isinstance(body, dict), f"{where} -> {status}: not JSON: {raw[:300]}"
        fields = body["error"]["fields"]
        assert fields, f"{where} -> {status}: names no field: {body}"
        assert all(f["field"] and f["reason"] for f in fields), body
        assert not world.writes, f"{where} -> {status} wrote {world.writes}"
        if before is not None:
            assert world.snapshot() == before, f"{where} -> {status} changed stored items"
    return status


@FUZZ
@given(data=st.data())
def test_any_request_is_answered_without_5xx_and_4xx_changes_nothing(
    api_world: ApiWorld, data: st.DataObject
) -> None:
    # GIVEN agents in every state WHEN any request arrives
    event = data.draw(requests(list(api_world.agents.values())))
    # THEN no 5xx, and a 4xx names a field and leaves the table as it was
    _check(api_world, event)


@FUZZ
@given(data=st.data())
def test_bad_bodies_on_every_body_route_are_rejected_naming_a_field(
    api_world: ApiWorld, data: st.DataObject
) -> None:
    # GIVEN a route that reads a body, on a known agent
    route = data.draw(
        st.sampled_from(
            [
                "/agents",
                "/agents/{id}/resume",
                "/agents/{id}/cancel",
                "/agents/{id}/messages",
                "/agents/{id}/approvals",
            ]
        )
    )
    path = route.replace("{id}", data.draw(st.sampled_from(list(api_world.agents.values()))))
    # WHEN the body is anything at all
    event = request("POST", path, body=data.draw(bodies()))
    # THEN the answer is sound (a valid body may succeed; an invalid one changes nothing)
    _check(api_world, event)


@FUZZ
@given(limit=TEXT, cursor=TEXT)
def test_message_paging_parameters_never_break_the_api(
    api_world: ApiWorld, limit: str, cursor: str
) -> None:
    # GIVEN a known agent WHEN its messages are read with any limit and cursor
    agent = next(iter(api_world.agents.values()))
    event = request("GET", f"/agents/{agent}/messages", query={"limit": limit, "cursor": cursor})
    # THEN it is a page or a 400 naming the parameter
    assert _check(api_world, event) in (200, 400)


def test_the_write_hook_sees_what_a_request_stores(api_world: ApiWorld) -> None:
    # GIVEN the hook the fuzz tests rely on WHEN a valid request creates an agent
    status, _, _ = api_world.call(request("POST", "/agents", body='{"goal": "Fly to Boston"}'))
    # THEN its writes were seen (so a 4xx that wrote something could not go unnoticed)
    assert status == 202
    assert "TransactWriteItems" in api_world.writes


# --- hostile encodings, depths, numbers and queries ----------------------------------------------


def _nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"a": value}
    return value


def _raw(event: dict[str, Any], *, body: str, base64: bool) -> dict[str, Any]:
    return event | {"body": body, "isBase64Encoded": base64}


HOSTILE_BODIES = {
    "nested 10000 deep": '{"goal": "Fly", "x": ' + "[" * 10_000 + "]" * 10_000 + "}",
    "nested 17 deep": json.dumps({"goal": "Fly", "x": _nested(17)}),
    "a 5000-digit integer": '{"goal": "Fly", "limit": ' + "9" * 5000 + "}",
    "a huge exponent": '{"goal": "Fly", "x": 1e999999}',
    "NaN": '{"goal": "Fly", "x": NaN}',
    "a blank goal": '{"goal": " \\t\\n "}',
    "a goal of only a zero-width space": '{"goal": "\\u200b"}',
    "a lone surrogate escape": '{"goal": "\\udc80"}',
    "duplicate keys": '{"goal": "Fly", "goal": ""}',
    "a UTF-16 body": "\ufeff{}",
}


@pytest.mark.parametrize("case", sorted(HOSTILE_BODIES))
@pytest.mark.parametrize("route", ["/agents", "/agents/{id}/resume", "/agents/{id}/messages"])
def test_hostile_bodies_are_4xx_naming_a_field(api_world: ApiWorld, case: str, route: str) -> None:
    # GIVEN a body route WHEN the body is hostile
    path = route.replace("{id}", api_world.agents[Status.NEEDS_HUMAN])
    event = request("POST", path, body=HOSTILE_BODIES[case])
    # THEN a 4xx that names a field (or a success for a body that is in fact valid), no 5xx
    status = _check(api_world, event)
    if case.startswith(("nested 10000", "a 5000", "a blank", "a lone", "a UTF-16")):
        assert 400 <= status < 500


@pytest.mark.parametrize(
    ("body", "base64"),
    [
        ("!!!not base64!!!", True),
        (b64encode(b"\xff\xfe\x00 not utf-8").decode(), True),
        (b64encode(b'{"goal": "Fly to Boston"}').decode() + "=", True),
        ("\udc80", False),
    ],
)
def test_bad_encodings_are_a_400_naming_the_body(
    api_world: ApiWorld, body: str, base64: bool
) -> None:
    # GIVEN a body that is not base64, or not UTF-8 once decoded
    event = _raw(request("POST", "/agents", body="{}"), body=body, base64=base64)
    # WHEN it arrives THEN a 400 that names the body, nothing stored
    status = _check(api_world, event)
    assert status == 400


def test_a_valid_base64_body_is_read(api_world: ApiWorld) -> None:
    # GIVEN a base64-encoded JSON body, as API Gateway passes binary media types
    body = b64encode(b'{"goal": "Fly to Boston"}').decode()
    event = _raw(request("POST", "/agents", body="{}"), body=body, base64=True)
    # WHEN it arrives THEN the agent is created
    assert _check(api_world, event) == 202


@pytest.mark.parametrize(
    "limit", ["9" * 400, "1e9", "-0", "0x10", "٣", "1" + "0" * 30, "NaN", "inf", " 5 "]
)
def test_hostile_limits_are_a_400_or_a_page(api_world: ApiWorld, limit: str) -> None:
    # GIVEN a known agent WHEN its messages are read with a hostile limit
    agent = api_world.agents[Status.COMPLETED]
    event = request("GET", f"/agents/{agent}/messages", query={"limit": limit})
    # THEN a page or a 400 naming the limit
    status, body, _ = api_world.call(event)
    assert status in (200, 400), body
    if status == 400:
        assert body["error"]["fields"][0]["field"] == "limit"


@FUZZ
@given(
    depth=st.integers(0, 200),
    digits=st.integers(1, 400),
    base64=st.booleans(),
    route=st.sampled_from(["/agents", "/agents/{id}/resume", "/agents/{id}/cancel"]),
)
def test_deep_bodies_long_numbers_and_encodings_never_break_the_api(
    api_world: ApiWorld, depth: int, digits: int, base64: bool, route: str
) -> None:
    # GIVEN any nesting depth, any length of integer, plain or base64-encoded
    text = json.dumps({"goal": "Fly", "reason": "r", "x": _nested(depth, 0)})
    text = text.replace('"x": ', f'"n": {"7" * digits}, "x": ', 1)
    body = b64encode(text.encode()).decode() if base64 else text
    path = route.replace("{id}", api_world.agents[Status.INITIATED])
    event = _raw(request("POST", path, body="{}"), body=body, base64=base64)
    # THEN a sound answer: success, or a 4xx naming a field that stores nothing
    _check(api_world, event)


def test_a_query_parameter_without_a_name_is_named_query(api_world: ApiWorld) -> None:
    # GIVEN a query string "=" (found by hypothesis) WHEN a list is read THEN 400 naming "query"
    agent = api_world.agents[Status.COMPLETED]
    event = request("GET", f"/agents/{agent}/messages", query={"": ""})
    assert _check(api_world, event) == 400
