"""Agentry's demo toolset: look up flights between US cities and book one, exactly once.

Agent definitions name it ``agentry_flights:registry``.
"""

from agentry_flights.tools import BOOKING_PREFIX, bookings, inventory, registry

__version__ = "0.1.0"

__all__ = ["BOOKING_PREFIX", "__version__", "bookings", "inventory", "registry"]
