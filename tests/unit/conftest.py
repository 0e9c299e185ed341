"""The unit layer: the loop's and the store's logic on in-memory AWS, with no I/O.

Every test under ``tests/unit`` is marked ``unit`` (by the root ``conftest.py``), which forbids
sockets for its duration; moto is never started here. ``MemoryWorld`` wires the real loop,
store and service over ``MemoryDynamoDB`` and ``StubBedrock``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from support.memory_world import MemoryWorld


@pytest.fixture
def memory_world() -> Callable[..., MemoryWorld]:
    """Makes unit worlds (``MemoryWorld`` keyword arguments: responder, tools, settings...)."""

    def make(**kwargs: Any) -> MemoryWorld:
        return MemoryWorld(**kwargs)

    return make
