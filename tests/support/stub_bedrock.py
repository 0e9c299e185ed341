"""A ``bedrock-runtime`` client in process: Converse requests go to an offline responder, no I/O.

:class:`StubBedrock` has the one method the runtime calls, ``converse(**params)``, and takes it
the way boto3 and the fake endpoint (``agentry_offline.bedrock.FakeBedrockServer``) would, minus
the socket:

1. the parameters are checked against the Converse model (``ParamValidationError``, as botocore
   raises before sending) and serialised to the JSON body and path botocore would send;
2. the endpoint's own ``handle`` routes, records (``requests``) and answers it: the body is
   first checked by ``agentry_offline.bedrock.validate_request`` (``400 ValidationException``
   otherwise), then handed to the responder (``OfflineModel``, ``ScriptedModel``, or any
   ``(model_id, body) -> (status, headers, body)``);
3. botocore's parser reads the answer: a 2xx returns the parsed response; anything else raises
   the modeled ``ClientError`` botocore raises for it, so ``ModelClient``'s translation runs;
4. what boto3's ``standard`` retry mode retries (throttling, 5xx; botocore's own checkers
   decide) is retried up to ``total_max_attempts``, without the back-off's sleep.
"""

from __future__ import annotations

from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.retries.standard import RetryContext, StandardRetryConditions
from botocore.serialize import create_serializer

from agentry_offline.bedrock import FakeBedrockServer, Responder, error_response, validate_request
from support import wire

__all__ = ["StubBedrock"]

_SERVICE = "bedrock-runtime"
_OPERATION = "Converse"


class StubBedrock:
    """``bedrock-runtime``'s ``converse``, answered in process by a responder."""

    def __init__(self, responder: Responder, *, total_max_attempts: int = 4) -> None:
        self.responder = responder
        self.total_max_attempts = total_max_attempts
        self.exceptions = wire.exceptions(_SERVICE)
        self._endpoint = FakeBedrockServer(_validated(responder))  # never started: no socket

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every request body received (``modelId`` included), retries too, in order."""
        return self._endpoint.requests

    def converse(self, **params: Any) -> dict[str, Any]:
        """One Converse call, as a boto3 client with the ``standard`` retry mode makes it."""
        wire.validate_params(_SERVICE, _OPERATION, params)
        model = wire.operation_model(_SERVICE, _OPERATION)
        request = create_serializer("rest-json").serialize_to_request(params, model)
        conditions = StandardRetryConditions(max_attempts=self.total_max_attempts)
        attempt = 0
        while True:
            attempt += 1
            status, headers, body = self._endpoint.handle(request["url_path"], request["body"])
            headers = {**headers, "x-amzn-RequestId": self._endpoint.next_request_id()}
            parsed = wire.parse_response(_SERVICE, _OPERATION, status, headers, body)
            context = RetryContext(
                attempt_number=attempt,
                operation_model=model,
                parsed_response=parsed,
                http_response=AWSResponse("", status, headers, None),
            )
            retry = status >= 300 and conditions.is_retryable(context)
            if not retry:
                metadata = parsed["ResponseMetadata"]
                metadata.update(context.get_retry_metadata(), RetryAttempts=attempt - 1)
                if status < 300:
                    return parsed
                code = parsed.get("Error", {}).get("Code")
                raise self.exceptions.from_code(code)(parsed, _OPERATION)


def _validated(responder: Responder) -> Responder:
    """The responder behind Bedrock's own request validation."""

    def answer(model_id: str, request: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        problem = validate_request(request)
        if problem is not None:
            return error_response(400, "ValidationException", problem)
        return responder(model_id, request)

    return answer
