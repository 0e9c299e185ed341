"""The Bedrock Converse client: builds requests, calls the transport, maps its errors.

boto3's ``bedrock-runtime`` client is the transport (retries in boto3's ``standard`` mode);
Bedrock and the offline model (``offline_model.py``) answer the same wire contract, so the loop
never knows which one it talks to. Point the default client at another endpoint with the SDK's
own ``AWS_ENDPOINT_URL_BEDROCK_RUNTIME`` variable.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from agentry_runtime.errors import (
    ModelError,
    ModelNotAvailableError,
    ModelRejectedError,
    ModelThrottledError,
    ModelUnavailableError,
)
from agentry_runtime.state import TokenUsage

__all__ = [
    "SUMMARY_SYSTEM_PROMPT",
    "ModelClient",
    "ModelSettings",
    "ModelTurn",
    "build_request",
    "estimate_tokens",
    "supports_prompt_caching",
]

SUMMARY_SYSTEM_PROMPT = (
    "You summarise the conversation of an autonomous agent so that it can go on with less "
    "context. Keep every fact still needed to reach the goal: the goal itself, the human's "
    "instructions, tool calls with their inputs and results (identifiers, confirmation "
    "numbers, prices, dates) and what remains to be done. Answer with the summary only."
)

_CACHE_POINT: dict[str, Any] = {"cachePoint": {"type": "default"}}

_THROTTLED = {"ThrottlingException", "TooManyRequestsException", "ServiceQuotaExceededException"}
# Bedrock's answers when the model itself cannot be used from this account: access not granted
# (or no IAM grant) is AccessDeniedException (403); an unknown model or profile id, one not
# offered in the region, or one past end of life is ResourceNotFoundException (404) (Bedrock API
# reference, InvokeModel / Converse errors).
_NOT_AVAILABLE = {"AccessDeniedException", "ResourceNotFoundException"}
_UNAVAILABLE = {
    "InternalServerException",
    "ServiceUnavailableException",
    "ModelNotReadyException",
    "ModelTimeoutException",
}

# Models documented as supporting Converse prompt caching (cachePoint blocks).
_CACHING_MODELS = re.compile(
    r"^(anthropic\.claude-(3-5-haiku|3-7-sonnet|(sonnet|opus|haiku)-4)"
    r"|amazon\.nova-(micro|lite|pro|premier))"
)
# Cross-region inference profile ids prefix the model id with a region group ("us.", "eu.").
_REGION_GROUP = re.compile(r"^(us|eu|apac|us-gov|global|jp|au|ca)\.")


@dataclass(frozen=True)
class ModelSettings:
    """Which model to call and how: output budget, temperature, caching, retries, timeouts."""

    model_id: str
    max_tokens: int = 1024
    temperature: float = 0.0
    prompt_caching: bool | None = None  # None: decide from the model id
    max_attempts: int = 4  # total attempts of boto3's "standard" retry mode
    read_timeout_seconds: float = 120.0
    connect_timeout_seconds: float = 5.0

    def __post_init__(self) -> None:
        if not self.model_id.strip():
            raise ValueError("model_id: must not be empty")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens: must be at least 1, got {self.max_tokens}")
        if not 0.0 <= self.temperature <= 1.0:
            raise ValueError(f"temperature: must be between 0 and 1, got {self.temperature}")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts: must be at least 1, got {self.max_attempts}")
        if self.read_timeout_seconds <= 0 or self.connect_timeout_seconds <= 0:
            raise ValueError("read_timeout_seconds, connect_timeout_seconds: must be positive")

    @property
    def worst_case_seconds(self) -> float:
        """The longest one ``converse`` call can take: every attempt timing out, plus backoff."""
        # The standard retry mode backs off at most 20 s between attempts.
        return (
            self.max_attempts * (self.connect_timeout_seconds + self.read_timeout_seconds)
            + (self.max_attempts - 1) * 20
        )

    @property
    def caching(self) -> bool:
        """Whether requests carry ``cachePoint`` blocks."""
        if self.prompt_caching is None:
            return supports_prompt_caching(self.model_id)
        return self.prompt_caching


@dataclass(frozen=True)
class ModelTurn:
    """One model answer: content blocks exactly as Bedrock returned them, and its cost."""

    content: list[dict[str, Any]]
    stop_reason: str
    usage: TokenUsage
    latency_ms: int

    def text(self) -> str:
        """The text blocks of the answer, joined."""
        return "\n".join(b["text"] for b in self.content if "text" in b)


def supports_prompt_caching(model_id: str) -> bool:
    """Whether the model (or the inference profile's model) supports ``cachePoint`` blocks."""
    base = model_id.rsplit("/", 1)[-1]  # an ARN ends with the model or profile id
    return bool(_CACHING_MODELS.match(_REGION_GROUP.sub("", base, count=1)))


def estimate_tokens(
    *, system: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None
) -> int:
    """An estimate (not a tokenizer) of a prompt's tokens: about 4 characters per token of JSON."""
    payload = json.dumps(
        {"system": system, "messages": messages, "tools": tools or []},
        separators=(",", ":"),
        sort_keys=True,
        default=str,
    )
    return max(1, math.ceil(len(payload) / 4))


def build_request(
    settings: ModelSettings,
    *,
    system: str,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    """The keyword arguments of one ``converse`` call (cache points after the static prefix)."""
    caching = settings.caching
    request: dict[str, Any] = {
        "modelId": settings.model_id,
        "system": [{"text": system}, *([_CACHE_POINT] if caching else [])],
        "messages": messages,
        "inferenceConfig": {
            "maxTokens": settings.max_tokens,
            "temperature": settings.temperature,
        },
    }
    if tools:
        request["toolConfig"] = {"tools": [*tools, *([_CACHE_POINT] if caching else [])]}
    return request


class ModelClient:
    """Calls Converse through an injectable boto3 ``bedrock-runtime`` client."""

    def __init__(self, settings: ModelSettings, *, client: Any | None = None) -> None:
        self._settings = settings
        self._client = client

    @property
    def model_id(self) -> str:
        """The model or inference profile id this client calls."""
        return self._settings.model_id

    @property
    def settings(self) -> ModelSettings:
        """The settings this client was built with."""
        return self._settings

    def converse(
        self,
        *,
        system: str,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
    ) -> ModelTurn:
        """One Converse call; errors become ``ModelThrottledError``, ``ModelUnavailableError``,
        ``ModelNotAvailableError`` or ``ModelRejectedError``."""
        request = build_request(self._settings, system=system, messages=messages, tools=tools)
        started = time.perf_counter()
        with _translate_errors(self._settings.model_id):
            response = self._transport().converse(**request)
        latency_ms = round((time.perf_counter() - started) * 1000)
        try:
            content = response["output"]["message"]["content"]
            stop_reason = response["stopReason"]
        except (KeyError, TypeError) as exc:
            raise ModelUnavailableError(
                f"malformed Converse response from {self.model_id}: missing {exc}"
            ) from exc
        return ModelTurn(
            content=content,
            stop_reason=stop_reason,
            usage=_usage(response.get("usage") or {}),
            latency_ms=latency_ms,
        )

    def summarise(self, transcript: str) -> tuple[str, TokenUsage]:
        """A summary of ``transcript`` (text), and what it cost."""
        turn = self.converse(
            system=SUMMARY_SYSTEM_PROMPT,
            messages=[{"role": "user", "content": [{"text": transcript}]}],
            tools=None,
        )
        text = turn.text().strip()
        if not text:
            raise ModelRejectedError(f"{self.model_id} returned an empty summary")
        return text, turn.usage

    @staticmethod
    def default_client(settings: ModelSettings, *, session: Any | None = None) -> Any:
        """A ``bedrock-runtime`` client (from ``session`` if given) with standard retries."""
        # Imported here so that merely importing the runtime does not load boto3's session.
        import boto3
        from botocore.config import Config

        config = Config(
            # total_max_attempts counts the first call; botocore's max_attempts counts retries.
            retries={"mode": "standard", "total_max_attempts": settings.max_attempts},
            read_timeout=settings.read_timeout_seconds,
            connect_timeout=settings.connect_timeout_seconds,
        )
        return (session or boto3).client("bedrock-runtime", config=config)

    def _transport(self) -> Any:
        if self._client is None:
            self._client = self.default_client(self._settings)
        return self._client


def _usage(raw: Mapping[str, Any]) -> TokenUsage:
    return TokenUsage(
        input_tokens=int(raw.get("inputTokens", 0)),
        output_tokens=int(raw.get("outputTokens", 0)),
        cache_read_input_tokens=int(raw.get("cacheReadInputTokens", 0)),
        cache_write_input_tokens=int(raw.get("cacheWriteInputTokens", 0)),
    )


@contextmanager
def _translate_errors(model_id: str) -> Iterator[None]:
    """Map boto3's errors (after its own retries) to the runtime's typed model errors."""
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        message = f"{code} from {model_id}: {error.get('Message', exc)}"
        own: type[ModelError]
        if code in _THROTTLED or status == 429:
            own = ModelThrottledError
        elif code in _NOT_AVAILABLE:
            own = ModelNotAvailableError
        elif code in _UNAVAILABLE or status >= 500:
            own = ModelUnavailableError
        else:
            own = ModelRejectedError
        raise own(message) from exc
    except (BotoConnectionError, HTTPClientError) as exc:  # unreachable, reset, timed out
        raise ModelUnavailableError(f"{type(exc).__name__} calling {model_id}: {exc}") from exc
    except BotoCoreError as exc:  # no credentials, invalid parameters: retrying cannot help
        raise ModelRejectedError(f"{type(exc).__name__} calling {model_id}: {exc}") from exc
