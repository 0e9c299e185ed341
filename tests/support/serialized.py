"""A boto3 client wrapper for concurrency tests on moto."""

from __future__ import annotations

import threading
from typing import Any


class SerializedClient:
    """A boto3 client whose calls run one at a time.

    moto's DynamoDB is not thread-safe (a cancelled transaction restores a deep copy of the
    whole table, undoing a concurrent writer's items), while each real DynamoDB call is atomic.
    Serialising calls keeps what concurrency tests exercise real: the interleaving of calls.
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attribute(*args, **kwargs)

        return call
