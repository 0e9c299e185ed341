"""botocore's machinery for in-process fakes: request validation, errors as botocore raises them.

A fake client that answers in process skips the HTTP round trip, but nothing else a caller could
notice: parameters are checked against the service model exactly as botocore checks them before
sending (``ParamValidationError``), and an error answer is parsed by botocore's response parser
and raised as the service's modeled exception class (a ``ClientError`` subclass), with the same
``response`` dict (``Error``, ``ResponseMetadata``, modeled fields such as ``Item`` or
``CancellationReasons``) a real client would give.
"""

from __future__ import annotations

import functools
import itertools
import json
from typing import Any

import botocore.session
from botocore.awsrequest import HeadersDict
from botocore.errorfactory import BaseClientExceptions, ClientExceptionsFactory
from botocore.exceptions import ClientError, ParamValidationError
from botocore.model import OperationModel, ServiceModel
from botocore.parsers import create_parser
from botocore.validate import ParamValidator

__all__ = [
    "client_error",
    "exceptions",
    "json_error",
    "operation_model",
    "parse_response",
    "request_id",
    "service_model",
    "validate_params",
]

_ids = itertools.count(1)


@functools.cache
def service_model(service: str) -> ServiceModel:
    """The service's model as botocore loads it (once per process)."""
    return botocore.session.get_session().get_service_model(service)


@functools.cache
def exceptions(service: str) -> BaseClientExceptions:
    """The service's modeled exception classes, as ``client.exceptions`` holds them."""
    return ClientExceptionsFactory().create_client_exceptions(service_model(service))


def operation_model(service: str, operation: str) -> OperationModel:
    """The model of one operation (``Query``, ``Converse``)."""
    return service_model(service).operation_model(operation)


def validate_params(service: str, operation: str, params: dict[str, Any]) -> None:
    """Raise ``ParamValidationError`` as botocore does for parameters its model refuses."""
    report = ParamValidator().validate(params, operation_model(service, operation).input_shape)
    if report.has_errors():
        raise ParamValidationError(report=report.generate_report())


def request_id() -> str:
    """A fresh request id for ``ResponseMetadata``."""
    return f"in-process-{next(_ids):08d}"


def parse_response(
    service: str, operation: str, status: int, headers: dict[str, str], body: bytes
) -> dict[str, Any]:
    """Parse an HTTP answer the way botocore's endpoint does (modeled error fields included)."""
    model = operation_model(service, operation)
    parser = create_parser(service_model(service).resolved_protocol)
    response = {"status_code": status, "headers": HeadersDict(headers), "body": body}
    parsed: dict[str, Any] = parser.parse(response, model.output_shape)
    code = parsed.get("Error", {}).get("Code")
    if status >= 300 and code is not None:
        shape = service_model(service).shape_for_error_code(code)
        if shape is not None:
            parsed.update(parser.parse(response, shape))
    parsed.setdefault("ResponseMetadata", {})["RetryAttempts"] = 0
    return parsed


def client_error(
    service: str, operation: str, status: int, headers: dict[str, str], body: bytes
) -> ClientError:
    """The exception botocore raises for an error answer: the modeled class for its code."""
    parsed = parse_response(service, operation, status, headers, body)
    code = parsed.get("Error", {}).get("Code")
    error_class: type[ClientError] = exceptions(service).from_code(code)
    return error_class(parsed, operation)


def json_error(service: str, operation: str, code: str, message: str, **fields: Any) -> ClientError:
    """A 400 error of a JSON-protocol service (DynamoDB) as the service would send it."""
    model = service_model(service)
    version = model.metadata.get("targetPrefix", "").rsplit("_", 1)[-1]
    shape = model.shape_for_error_code(code)
    # Services spell the message member either way (DynamoDB: ``message``, but ``Message`` for
    # TransactionCanceledException); the body carries it as the error's shape names it.
    key = "Message" if shape is not None and "Message" in shape.members else "message"
    body = {"__type": f"com.amazonaws.{service}.v{version}#{code}", key: message, **fields}
    headers = {"x-amzn-requestid": request_id(), "content-type": "application/x-amz-json-1.0"}
    return client_error(service, operation, 400, headers, json.dumps(body).encode())
