"""The events Lambda hands to the handlers, built for in-process invocation.

The local environment (and tests) call the real handlers exactly the way Lambda would: with an
API Gateway HTTP API payload v2 event, or an SQS batch from an event source mapping, plus a
context object.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

__all__ = [
    "LOCAL_CALLER",
    "LambdaContext",
    "decode_body",
    "http_api_event",
    "iam_context",
    "sqs_event",
]


@dataclass
class LambdaContext:
    """The attributes of the Lambda context object that Powertools reads."""

    function_name: str = "agentry-local"
    memory_limit_in_mb: int = 512
    timeout_ms: int = 60_000
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    invoked_function_arn: str = ""
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""
    _started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        if not self.invoked_function_arn:
            self.invoked_function_arn = (
                f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"
            )
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the (simulated) timeout."""
        return max(0, self.timeout_ms - int((time.monotonic() - self._started) * 1000))


#: The principal of requests made by the local environment's own tooling (an assumed role's
#: session, as a developer's credentials usually are).
LOCAL_CALLER = "arn:aws:sts::123456789012:assumed-role/agentry-local/developer"


def iam_context(principal_arn: str) -> dict[str, Any]:
    """``requestContext.authorizer.iam`` of an IAM-authorized HTTP API request."""
    account = principal_arn.split(":")[4]
    return {
        "accessKey": "ASIA" + hashlib.sha256(principal_arn.encode()).hexdigest()[:16].upper(),
        "accountId": account,
        "callerId": principal_arn.rsplit("/", 1)[-1],
        "cognitoIdentity": None,
        "principalOrgId": None,
        "userArn": principal_arn,
        "userId": principal_arn.rsplit("/", 1)[-1],
    }


def http_api_event(
    method: str,
    path: str,
    *,
    route: str | None = None,
    body: str | dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    path_parameters: dict[str, str] | None = None,
    account_id: str = "123456789012",
    caller: str | None = LOCAL_CALLER,
) -> dict[str, Any]:
    """An API Gateway HTTP API payload v2 event for ``method path``.

    ``caller`` is the IAM principal ARN API Gateway verified (its IAM authorizer context:
    ``requestContext.authorizer.iam``); ``None`` is a request that was not signed.
    """
    text = json.dumps(body) if isinstance(body, dict) else body
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    if text is not None:
        lowered.setdefault("content-type", "application/json")
    request_id = str(uuid.uuid4())
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route or f"{method} {path}",
        "rawPath": path,
        "rawQueryString": urlencode(query or {}),
        "headers": lowered,
        "requestContext": {
            "accountId": account_id,
            "apiId": "local",
            "domainName": "local.execute-api.localhost",
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "agentry-local",
            },
            "requestId": request_id,
            "routeKey": route or f"{method} {path}",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
            "timeEpoch": int(time.time() * 1000),
        },
        "isBase64Encoded": False,
    }
    if caller is not None:
        event["requestContext"]["authorizer"] = {"iam": iam_context(caller)}
    if query:
        event["queryStringParameters"] = dict(query)
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    if text is not None:
        event["body"] = text
    return event


def sqs_event(messages: list[dict[str, Any]], *, queue_arn: str) -> dict[str, Any]:
    """An SQS event source mapping batch from ``receive_message`` results."""
    records = []
    for message in messages:
        attributes = message.get("Attributes", {})
        records.append(
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": {
                    "ApproximateReceiveCount": attributes.get("ApproximateReceiveCount", "1"),
                    "SentTimestamp": attributes.get("SentTimestamp", str(int(time.time() * 1000))),
                    "SenderId": attributes.get("SenderId", "AIDAEVENTBRIDGE"),
                    "ApproximateFirstReceiveTimestamp": attributes.get(
                        "ApproximateFirstReceiveTimestamp", str(int(time.time() * 1000))
                    ),
                },
                "messageAttributes": {},
                "md5OfBody": message.get("MD5OfBody")
                or hashlib.md5(message["Body"].encode(), usedforsecurity=False).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": queue_arn.split(":")[3] if queue_arn.count(":") >= 5 else "us-east-1",
            }
        )
    return {"Records": records}


def decode_body(response: dict[str, Any]) -> Any:
    """The JSON body of an API handler response."""
    body = response.get("body") or ""
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    return json.loads(body) if body else None
