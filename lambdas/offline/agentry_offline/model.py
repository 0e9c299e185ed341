"""Deterministic offline models: Converse responders for tests and the local environment.

:class:`OfflineResponder` holds what every offline model does the way Bedrock does it:
validating each request (``400 ValidationException`` otherwise), summarising transcripts for
compaction, reporting token usage with prompt caching, and injecting faults on demand
(:class:`Faults`). Subclasses only choose the next answer:

- :class:`OfflineModel` plans the demo flight tools from the conversation (and answers any
  other agent with a clear error: it only knows the flight demo);
- :class:`~agentry_offline.script.ScriptedModel` plays a script of turns, for any agent.

Every text an offline model writes starts with ``LABEL``; what it could not answer is kept in
``failure``, so a local run ends with an error instead of a false success.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
import threading
from dataclasses import dataclass
from typing import Any

from agentry_flights.tools import City, Inventory, inventory
from agentry_offline.bedrock import error_response, tool_specs, validate_request
from agentry_runtime.model import SUMMARY_SYSTEM_PROMPT, estimate_tokens
from agentry_runtime.state import utcnow

__all__ = ["LABEL", "CannotAnswerError", "Faults", "OfflineModel", "OfflineResponder"]

#: Starts every text an offline model writes.
LABEL = "[offline model]"
_JSON = {"content-type": "application/json"}
#: The demo tools the built-in planner knows.
FLIGHT_TOOLS = frozenset({"get_flight_info", "book_flight"})


@dataclass
class Faults:
    """Faults to inject on the next calls; each counter decreases as its fault fires."""

    throttle: int = 0  # next N calls: 429 ThrottlingException
    server_error: int = 0  # next N calls: 500 InternalServerException / 503 ServiceUnavailable
    malformed: int = 0  # next N tool plans: an unknown tool, or stop_reason tool_use, no toolUse
    bad_tool_args: int = 0  # next N tool calls: input that violates the tool's schema


class CannotAnswerError(Exception):
    """The offline model has no answer for this request (the message says why)."""


class OfflineResponder:
    """What every offline model does as Bedrock does; subclasses implement ``_answer``."""

    LABEL = LABEL

    def __init__(self, *, faults: Faults | None = None) -> None:
        self.faults = faults or Faults()
        self.calls = 0
        #: Why the model could not answer a request, if it could not (the first such reason).
        self.failure: str | None = None
        self._lock = threading.Lock()
        self._cached_prefixes: set[str] = set()

    def __call__(self, model_id: str, request: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        """Answer one Converse request body."""
        with self._lock:  # the server is threaded; faults and the cache are shared
            self.calls += 1
            if self.faults.throttle > 0:
                self.faults.throttle -= 1
                return error_response(429, "ThrottlingException", "Too many requests (offline)")
            if self.faults.server_error > 0:
                self.faults.server_error -= 1
                if self.faults.server_error % 2:
                    return error_response(503, "ServiceUnavailableException", "Try again later")
                return error_response(500, "InternalServerException", "Internal error (offline)")
            problem = validate_request(request)
            if problem is not None:
                return error_response(400, "ValidationException", problem)
            system = "\n".join(b["text"] for b in request.get("system", []) if "text" in b)
            try:
                if system.startswith(SUMMARY_SYSTEM_PROMPT):
                    content, stop_reason = self._summarise(request["messages"]), "end_turn"
                else:
                    content, stop_reason = self._answer(request)
                    content, stop_reason = self._inject(content, stop_reason, request)
            except CannotAnswerError as exc:
                message = f"{LABEL} {exc}"
                self.failure = self.failure or message
                # A client error: not retryable, so the agent stops for a human at once.
                return error_response(400, "ValidationException", message)
            body = {
                "output": {"message": {"role": "assistant", "content": content}},
                "stopReason": stop_reason,
                "usage": self._usage(request, content),
                "metrics": {"latencyMs": 1},
            }
            return 200, dict(_JSON), json.dumps(body).encode()

    def _answer(self, request: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
        """The content blocks and stop reason of the next answer; ``CannotAnswerError`` if none."""
        raise NotImplementedError

    def _summarise(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{"text": _summary(_user_text(messages))}]

    def _inject(
        self, content: list[dict[str, Any]], stop_reason: str, request: dict[str, Any]
    ) -> tuple[list[dict[str, Any]], str]:
        """Apply the malformed-output and bad-argument faults to a tool-use answer."""
        uses = [block["toolUse"] for block in content if "toolUse" in block]
        if not uses:
            return content, stop_reason
        text = [block for block in content if "text" in block]
        if self.faults.malformed > 0:
            self.faults.malformed -= 1
            if self.faults.malformed % 2:
                return text or [{"text": f"{LABEL} (no call)"}], "tool_use"  # claims, carries none
            uses = [{**uses[0], "name": "unknown_tool", "input": {}}]
        elif self.faults.bad_tool_args > 0:
            self.faults.bad_tool_args -= 1
            specs = tool_specs(request.get("toolConfig"))
            first = uses[0]
            spec = specs.get(first["name"])
            if spec is not None:
                uses = [{**first, "input": _break_input(first["input"], spec)}, *uses[1:]]
        return [*text, *({"toolUse": use} for use in uses)], stop_reason

    def _usage(self, request: dict[str, Any], content: list[dict[str, Any]]) -> dict[str, int]:
        system_blocks = request.get("system", [])
        tools = (request.get("toolConfig") or {}).get("tools", [])
        total = estimate_tokens(
            system=json.dumps(system_blocks), messages=request["messages"], tools=tools
        )
        cached = read = write = 0
        if any("cachePoint" in b for b in [*system_blocks, *tools]):
            # The static prefix (system + tools) is written to the cache once, then read.
            cached = estimate_tokens(system=json.dumps(system_blocks), messages=[], tools=tools)
            key = _digest([system_blocks, tools])
            if key in self._cached_prefixes:
                read = cached
            else:
                self._cached_prefixes.add(key)
                write = cached
        output = max(1, math.ceil(len(json.dumps(content)) / 4))
        uncached = max(1, total - cached)
        return {
            "inputTokens": uncached,
            "outputTokens": output,
            "totalTokens": uncached + read + write + output,
            "cacheReadInputTokens": read,
            "cacheWriteInputTokens": write,
        }


@dataclass(frozen=True)
class _Goal:
    origin: City | None
    destination: City | None
    day: dt.date | None


@dataclass(frozen=True)
class _Call:
    name: str
    input: dict[str, Any]
    status: str
    result: dict[str, Any]
    text: str = ""


class OfflineModel(OfflineResponder):
    """Plans the demo flight tools from the conversation: a lookup, a booking, an answer.

    It knows only the flight demo: asked to plan for an agent without both flight tools, it
    answers with a clear error (and records it in ``failure``) rather than a made-up success.
    """

    def __init__(self, *, today: dt.date | None = None, faults: Faults | None = None) -> None:
        super().__init__(faults=faults)
        self._today = today

    @property
    def today(self) -> dt.date:
        """The day relative dates count from (today's UTC date unless fixed)."""
        return self._today or utcnow().date()

    def _answer(self, request: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
        messages: list[dict[str, Any]] = request["messages"]
        specs = tool_specs(request.get("toolConfig"))
        if not specs.keys() >= FLIGHT_TOOLS:
            offered = ", ".join(specs) or "none"
            raise CannotAnswerError(
                "without a script the offline model plans only for the flight demo's tools "
                f"({', '.join(sorted(FLIGHT_TOOLS))}); this agent offers: {offered}. "
                "Give the run a script of turns (agentry local run --script FILE)."
            )
        plan = self._plan(messages)
        if isinstance(plan, str):
            return [{"text": f"{LABEL} {plan}"}], "end_turn"
        name, tool_input, why = plan
        tool_use_id = "tooluse_" + _digest(messages)[:22]
        use = {"toolUseId": tool_use_id, "name": name, "input": tool_input}
        return [{"text": f"{LABEL} {why}"}, {"toolUse": use}], "tool_use"

    def _plan(self, messages: list[dict[str, Any]]) -> str | tuple[str, dict[str, Any], str]:
        """The next tool call ``(name, input, why)``, or the final text."""
        goal_text = _user_text(messages)
        goal = _read_goal(goal_text, self.today, inventory())
        if goal.origin is None or goal.destination is None or goal.day is None:
            missing = [
                label
                for label, value in (
                    ("where you fly from", goal.origin),
                    ("where you fly to", goal.destination),
                    ("the day of travel", goal.day),
                )
                if value is None
            ]
            return (
                f"To book a flight I need {' and '.join(missing)}, for example "
                "'from New York to San Francisco tomorrow'."
            )
        origin, destination, day = goal.origin, goal.destination, goal.day
        route = f"from {origin.name} to {destination.name} on {day.isoformat()}"
        if day < self.today:
            return f"{day.isoformat()} is in the past; which day do you want to fly {route}?"
        if _has_no_route(origin, destination):
            return f"There is no route from {origin.name} to {destination.name} in the inventory."
        query = {"origin": origin.name, "destination": destination.name, "date": day.isoformat()}
        calls = [c for c in _calls(messages) if c.status == "success" and _same(c.input, query)]
        for call in reversed(calls):
            if call.name == "book_flight" and "confirmation_number" in call.result:
                return (
                    f"Booked flight {call.result.get('flight_id')} {route}. "
                    f"Confirmation number: {call.result['confirmation_number']}."
                )
        refused = _refused_booking(_calls(messages))
        if refused is not None:
            return f"I did not book the flight {route}: {refused}"
        if confirmed := _CONFIRMATION.findall(goal_text):
            # The booking's tool call was compacted into a summary: never book twice.
            return f"Your flight {route} is booked. Confirmation number: {confirmed[-1]}."
        for call in reversed(calls):
            if call.name == "get_flight_info" and isinstance(call.result.get("flights"), list):
                flights = call.result["flights"]
                if not flights:
                    return f"There are no flights {route}."
                best = min(flights, key=lambda f: (f.get("price_usd", 0), f.get("departure", "")))
                why = f"Booking {best['flight_id']}, the cheapest flight {route}."
                return "book_flight", {**query, "flight_id": best["flight_id"]}, why
        return "get_flight_info", query, f"Looking up flights {route}."


# --- reading the conversation ------------------------------------------------------------------

_CONFIRMATION = re.compile(r"\bAGB-[0-9A-F]{8}\b")
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_NUMBERS = {
    w: n
    for n, w in enumerate(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
    )
}
_DATES = re.compile(
    r"\b(?:(?P<iso>\d{4}-\d{2}-\d{2})"
    r"|(?P<after>day after tomorrow)"
    r"|(?P<today>today|tonight)"
    r"|(?P<tomorrow>tomorrow)"
    rf"|in\s+(?P<n>\d+|an?|{'|'.join(_NUMBERS)})\s+(?P<unit>days?|weeks?)"
    rf"|(?P<weekday>{'|'.join(_WEEKDAYS)}))\b",
    re.IGNORECASE,
)
_FROM = re.compile(r"\b(?:from|leaving|departing|out\s+of)\s+(?:the\s+)?$", re.IGNORECASE)
_TO = re.compile(r"\b(?:to|into|for)\s+(?:the\s+)?$", re.IGNORECASE)


def _user_text(messages: list[dict[str, Any]]) -> str:
    """The goal and the human's later instructions: the text of every user turn."""
    return "\n".join(
        b["text"] for m in messages if m["role"] == "user" for b in m["content"] if "text" in b
    )


def _read_goal(text: str, today: dt.date, inv: Inventory) -> _Goal:
    """Origin, destination and day from free text; later mentions override earlier ones."""
    mentions = inv.mentions(text)
    origin = next((c for p, c in reversed(mentions) if _FROM.search(text[:p])), None)
    destination = next(
        (c for p, c in reversed(mentions) if _TO.search(text[:p]) and c != origin), None
    )
    ordered = list(dict.fromkeys(c for _, c in mentions))
    if origin is None:
        origin = next((c for c in ordered if c != destination), None)
    if destination is None:
        destination = next((c for c in ordered if c != origin), None)
    days = [d for m in _DATES.finditer(text) if (d := _day(m, today)) is not None]
    return _Goal(origin, destination, days[-1] if days else None)


def _day(match: re.Match[str], today: dt.date) -> dt.date | None:
    if iso := match["iso"]:
        try:
            return dt.date.fromisoformat(iso)
        except ValueError:
            return None
    if match["today"]:
        return today
    if match["tomorrow"]:
        return today + dt.timedelta(days=1)
    if match["after"]:
        return today + dt.timedelta(days=2)
    if weekday := match["weekday"]:
        ahead = (_WEEKDAYS.index(weekday.lower()) - today.weekday() - 1) % 7 + 1
        return today + dt.timedelta(days=ahead)
    word = match["n"].lower()
    count = int(word) if word.isdigit() else _NUMBERS.get(word, 1)
    return today + dt.timedelta(days=count * (7 if match["unit"].lower().startswith("w") else 1))


def _calls(messages: list[dict[str, Any]]) -> list[_Call]:
    """Tool calls of the conversation with their results, in order."""
    uses = {
        b["toolUse"]["toolUseId"]: b["toolUse"]
        for m in messages
        if m["role"] == "assistant"
        for b in m["content"]
        if "toolUse" in b
    }
    calls = []
    for m in messages:
        for b in m["content"]:
            if "toolResult" not in b or b["toolResult"]["toolUseId"] not in uses:
                continue
            result = b["toolResult"]
            use = uses[result["toolUseId"]]
            payload: dict[str, Any] = next(
                (c["json"] for c in result.get("content", []) if "json" in c), {}
            )
            status = result.get("status", "success")
            text = " ".join(c["text"] for c in result.get("content", []) if "text" in c)
            calls.append(_Call(use["name"], use["input"], status, payload, text))
    return calls


def _refused_booking(calls: list[_Call]) -> str | None:
    """Why the platform did not carry out the last booking call (a person rejected it, its
    budget is spent, or its outcome is unknown), or ``None``: such a call is not retried."""
    bookings = [c for c in calls if c.name == "book_flight"]
    if not bookings or bookings[-1].status != "error":
        return None
    text = bookings[-1].text
    if "rejected" in text:
        return "a person rejected the booking. Tell me if you want another flight."
    if "budget" in text:
        return "this request may not book more flights."
    if text.startswith("Outcome unknown"):
        return "the booking's outcome is unknown; check your bookings before asking me again."
    return None


def _same(tool_input: dict[str, Any], query: dict[str, Any]) -> bool:
    inv = inventory()
    return (
        all(
            inv.city(str(tool_input.get(key, ""))) == inv.city(query[key])
            for key in ("origin", "destination")
        )
        and str(tool_input.get("date")) == query["date"]
    )


def _has_no_route(origin: City, destination: City) -> bool:
    try:
        inventory().flights(origin, destination)
    except ValueError:
        return True
    return False


def _summary(transcript: str) -> str:
    """A condensed list of the transcript's lines: the start, every booking fact, the end."""
    lines = list(
        dict.fromkeys(
            line.replace(LABEL, "").strip()[:300]
            for line in transcript.splitlines()
            if line.replace(LABEL, "").strip()
        )
    )
    keep = [
        line
        for i, line in enumerate(lines)
        if i < 2 or i >= len(lines) - 8 or _CONFIRMATION.search(line) or "flight_id" in line
    ]
    facts = "\n".join(f"- {line}" for line in keep) or "- (empty transcript)"
    return f"{LABEL} Summary of the conversation so far:\n{facts}"


def _break_input(tool_input: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """The input with a required field missing (or an unexpected one), to violate the schema."""
    required = spec["inputSchema"]["json"].get("required", [])
    if required:
        return {k: v for k, v in tool_input.items() if k != required[-1]}
    return {**tool_input, "unexpected_field": True}


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()
