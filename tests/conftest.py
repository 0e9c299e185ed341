"""Root of the suite: pytest puts this folder on sys.path, so ``support`` is importable.

The layers (see ``docs/testing.md``): a test marked ``unit`` does no I/O: no moto, no sockets
(a socket it opens fails the test), no subprocess. Everything under ``tests/unit`` is marked so
here; a pure test elsewhere says ``pytestmark = pytest.mark.unit``. ``make test-fast`` runs
``pytest -m unit``; tests slower than about ten seconds are marked ``slow``.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

UNIT_FOLDER = Path(__file__).parent / "unit"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test of ``tests/unit`` as ``unit``."""
    for item in items:
        if UNIT_FOLDER in item.path.parents:
            item.add_marker(pytest.mark.unit)


@pytest.fixture(autouse=True)
def _unit_tests_open_no_socket(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ``unit`` test that connects anywhere (AWS, a fake endpoint, moto's server) fails."""
    if request.node.get_closest_marker("unit") is not None:

        def refuse(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError(f"a unit test opened a connection {args!r}: it must do no I/O")

        monkeypatch.setattr(socket.socket, "connect", refuse)
        monkeypatch.setattr(socket.socket, "connect_ex", refuse)
        monkeypatch.setattr(socket, "create_connection", refuse)
