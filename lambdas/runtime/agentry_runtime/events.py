"""Publishing Agentry events on the EventBridge bus."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel

from agentry_runtime.contract import EVENT_SOURCE, DetailType
from agentry_runtime.errors import PublishError


class Publisher:
    """Puts typed Agentry events on one bus; the boto3 ``events`` client is injectable."""

    def __init__(self, bus_name: str, *, client: Any | None = None) -> None:
        self.bus_name = bus_name
        self._client = client

    @property
    def client(self) -> Any:
        """The boto3 EventBridge client (created on first use)."""
        if self._client is None:
            self._client = boto3.client("events")
        return self._client

    def publish(self, detail_type: DetailType, detail: BaseModel) -> None:
        """Publish one event; raise ``PublishError`` unless EventBridge accepted it."""
        entry = {
            "Source": EVENT_SOURCE,
            "DetailType": str(detail_type),
            "Detail": detail.model_dump_json(by_alias=True),
            "EventBusName": self.bus_name,
        }
        try:
            response = self.client.put_events(Entries=[entry])
        except (ClientError, BotoCoreError) as exc:
            raise PublishError(f"put_events to {self.bus_name} failed: {exc}") from exc
        if response.get("FailedEntryCount", 0):
            failed = response["Entries"][0]
            raise PublishError(
                f"put_events to {self.bus_name} rejected the event: "
                f"{failed.get('ErrorCode')}: {failed.get('ErrorMessage')}"
            )
