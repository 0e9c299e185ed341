"""The demo flight toolset after the article: look up flights and book one, once.

The inventory (``data/flights.json``) is a small daily schedule between a few US cities; the
same flights fly every day. ``book_flight`` writes one booking item per tool call with a
conditional put keyed by the call's ``toolUseId``, so a re-executed call books exactly once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterator
from functools import cache
from importlib.resources import files
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from agentry_runtime.contract import PARTITION_KEY, SORT_KEY, agent_pk
from agentry_runtime.state import utcnow
from agentry_runtime.tools import ToolContext, ToolRegistry

__all__ = [
    "BOOKING_PREFIX",
    "BookFlightInput",
    "City",
    "Flight",
    "FlightQuery",
    "Inventory",
    "booking_sk",
    "bookings",
    "inventory",
    "registry",
]

#: Sort-key prefix of the bookings this toolset stores in the agent's partition.
BOOKING_PREFIX = "BOOKING#"


def booking_sk(tool_use_id: str) -> str:
    """Sort key of the booking made by the ``book_flight`` call ``tool_use_id``."""
    return f"{BOOKING_PREFIX}{tool_use_id}"


class City(BaseModel):
    """A city of the inventory: IATA code, name and other names people use for it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    code: str = Field(pattern=r"^[A-Z]{3}$")
    name: str
    aliases: tuple[str, ...] = ()


class Flight(BaseModel):
    """One daily flight of a route."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    flight_id: str
    departure: str = Field(pattern=r"^\d\d:\d\d$", description="Local departure time, HH:MM.")
    duration_minutes: int = Field(gt=0)
    price_usd: int = Field(gt=0)


class _Route(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    origin: str
    destination: str
    flights: tuple[Flight, ...]


class Inventory(BaseModel):
    """The parsed inventory with the lookups the tools and the offline model share."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    currency: str
    cities: tuple[City, ...]
    routes: tuple[_Route, ...]

    def city(self, query: str) -> City | None:
        """The city whose code, name or alias equals ``query`` (case-insensitive), if any."""
        wanted = query.strip().casefold()
        for city in self.cities:
            if wanted in {city.code.casefold(), city.name.casefold()} | {
                a.casefold() for a in city.aliases
            }:
                return city
        return None

    def require_city(self, query: str) -> City:
        """Like :meth:`city`, but an unknown city raises ``ValueError`` listing the known ones."""
        found = self.city(query)
        if found is None:
            known = ", ".join(f"{c.name} ({c.code})" for c in self.cities)
            raise ValueError(f"unknown city {query!r}; known cities: {known}")
        return found

    def flights(self, origin: City, destination: City) -> tuple[Flight, ...]:
        """The daily flights from ``origin`` to ``destination``; ``ValueError`` if no route."""
        for route in self.routes:
            if (route.origin, route.destination) == (origin.code, destination.code):
                return route.flights
        raise ValueError(f"no route from {origin.name} ({origin.code}) to {destination.name}")

    def mentions(self, text: str) -> list[tuple[int, City]]:
        """Cities mentioned in free text, as ``(position, city)`` in order of appearance.

        Names and aliases match case-insensitively on word boundaries; IATA codes only in
        capitals, so the words "sea" or "den" in prose are not taken for Seattle or Denver.
        """
        found: dict[int, tuple[int, City]] = {}
        for city in self.cities:
            for pattern in _city_patterns(city):
                for match in pattern.finditer(text):
                    # A longer name at the same place wins ("New York City" over "New York").
                    start = match.start()
                    if start not in found or len(match.group()) > found[start][0]:
                        found[start] = (len(match.group()), city)
        return [(pos, city) for pos, (_, city) in sorted(found.items())]


def _city_patterns(city: City) -> Iterator[re.Pattern[str]]:
    for name in (city.name, *city.aliases):
        yield re.compile(rf"\b{re.escape(name)}\b", re.IGNORECASE)
    yield re.compile(rf"\b{city.code}\b")


@cache
def inventory() -> Inventory:
    """The demo inventory, parsed once per process from the packaged ``data/flights.json``."""
    raw = files("agentry_flights").joinpath("data/flights.json").read_text(encoding="utf-8")
    return Inventory.model_validate(json.loads(raw))


# --- tool inputs -----------------------------------------------------------------------------


class FlightQuery(BaseModel):
    """Input of get_flight_info: a route and a day of travel."""

    model_config = ConfigDict(extra="forbid")
    origin: str = Field(min_length=2, description="Departure city name or IATA code.")
    destination: str = Field(min_length=2, description="Arrival city name or IATA code.")
    date: dt.date = Field(description="Day of travel, ISO format YYYY-MM-DD.")

    @field_validator("destination")
    @classmethod
    def _not_origin(cls, value: str, info: ValidationInfo) -> str:
        if value.strip().casefold() == str(info.data.get("origin", "")).strip().casefold():
            raise ValueError("destination must differ from origin")
        return value


class BookFlightInput(FlightQuery):
    """Input of book_flight: a route, a day and the flight to book."""

    flight_id: str = Field(min_length=1, description="A flight_id returned by get_flight_info.")


def _resolve(query: FlightQuery) -> tuple[City, City, tuple[Flight, ...]]:
    inv = inventory()
    origin, destination = inv.require_city(query.origin), inv.require_city(query.destination)
    if origin == destination:
        raise ValueError(f"origin and destination are both {origin.name}")
    if query.date < utcnow().date():
        raise ValueError(f"date {query.date.isoformat()} is in the past")
    return origin, destination, inv.flights(origin, destination)


def _get_flight_info(args: FlightQuery, ctx: ToolContext) -> dict[str, Any]:
    """Find the flights between two cities on a date, with departure times and prices."""
    origin, destination, flights = _resolve(args)
    return {
        "origin": {"code": origin.code, "name": origin.name},
        "destination": {"code": destination.code, "name": destination.name},
        "date": args.date.isoformat(),
        "currency": inventory().currency,
        "flights": [f.model_dump() for f in flights],
    }


def _book_flight(args: BookFlightInput, ctx: ToolContext) -> dict[str, Any]:
    """Book one seat on a flight found by get_flight_info; returns the confirmation number."""
    origin, destination, flights = _resolve(args)
    if args.flight_id not in {f.flight_id for f in flights}:
        offered = ", ".join(f.flight_id for f in flights)
        raise ValueError(
            f"flight_id {args.flight_id!r} does not fly from {origin.code} to "
            f"{destination.code}; flights on this route: {offered}"
        )
    # The toolUseId is the call's identity, so the confirmation is the same on every re-run.
    confirmation = "AGB-" + hashlib.sha256(ctx.tool_use_id.encode()).hexdigest()[:8].upper()
    item = {
        PARTITION_KEY: {"S": agent_pk(ctx.agent_id)},
        SORT_KEY: {"S": booking_sk(ctx.tool_use_id)},
        "origin": {"S": origin.code},
        "destination": {"S": destination.code},
        "date": {"S": args.date.isoformat()},
        "flightId": {"S": args.flight_id},
        "confirmation": {"S": confirmation},
        "createdAt": {"S": utcnow().isoformat()},
    }
    try:
        ctx.dynamodb.put_item(
            TableName=ctx.table_name,
            Item=item,
            ConditionExpression="attribute_not_exists(#pk)",
            ExpressionAttributeNames={"#pk": PARTITION_KEY},
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise
        # Already booked by an earlier execution of this same call: report that booking.
    return {
        "booking_status": "CONFIRMED",
        "flight_id": args.flight_id,
        "confirmation_number": confirmation,
    }


#: The toolset: agent definitions name it ``agentry_flights:registry``.
registry = ToolRegistry()
registry.tool(name="get_flight_info", read_only=True)(_get_flight_info)
registry.tool(name="book_flight")(_book_flight)


def bookings(dynamodb: Any, table_name: str, agent_id: str) -> list[dict[str, Any]]:
    """All bookings the demo tool made for an agent, as plain dicts, oldest key first."""
    deserializer = TypeDeserializer()
    paginator = dynamodb.get_paginator("query")
    pages = paginator.paginate(
        TableName=table_name,
        KeyConditionExpression="#pk = :pk AND begins_with(#sk, :prefix)",
        ExpressionAttributeNames={"#pk": PARTITION_KEY, "#sk": SORT_KEY},
        ExpressionAttributeValues={
            ":pk": {"S": agent_pk(agent_id)},
            ":prefix": {"S": BOOKING_PREFIX},
        },
    )
    return [
        {key: deserializer.deserialize(value) for key, value in item.items()}
        for page in pages
        for item in page.get("Items", [])
    ]
