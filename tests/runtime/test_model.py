"""The Converse client against a fake Bedrock endpoint: request shape, retries, error mapping."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.retries.standard import ExponentialBackoff

from agentry_offline.bedrock import FakeBedrockServer, error_response
from agentry_runtime.contract import ErrorType
from agentry_runtime.errors import (
    ModelNotAvailableError,
    ModelRejectedError,
    ModelThrottledError,
    ModelUnavailableError,
)
from agentry_runtime.model import (
    SUMMARY_SYSTEM_PROMPT,
    ModelClient,
    ModelSettings,
    build_request,
    estimate_tokens,
    supports_prompt_caching,
)

CACHING_MODEL = "us.anthropic.claude-sonnet-4-20250514-v1:0"
PLAIN_MODEL = "meta.llama3-70b-instruct-v1:0"
MESSAGES = [{"role": "user", "content": [{"text": "hi"}]}]
TOOLS = [{"toolSpec": {"name": "t", "description": "d", "inputSchema": {"json": {}}}}]


class Scripted:
    """A responder that plays a list of answers, repeating the last one."""

    def __init__(self, *answers: tuple[int, dict[str, str], bytes]) -> None:
        self.answers = list(answers)

    def __call__(self, model_id: str, request: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def _ok(text: str = "hello", usage: dict[str, int] | None = None) -> tuple[int, dict, bytes]:
    body = {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": "end_turn",
        "usage": usage or {"inputTokens": 11, "outputTokens": 7, "totalTokens": 18},
        "metrics": {"latencyMs": 3},
    }
    return 200, {"content-type": "application/json"}, json.dumps(body).encode()


@pytest.fixture(autouse=True)
def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    # boto3 sleeps up to seconds between throttled attempts; the retry decisions are what we
    # test, not the sleeps.
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBedrockServer]:
    """A fake endpoint that default clients reach through the SDK's endpoint variable."""
    with FakeBedrockServer(Scripted(_ok())) as server:
        monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", server.endpoint_url)
        yield server


def _client(max_attempts: int = 3, model: str = CACHING_MODEL) -> ModelClient:
    # The client's own default transport, so its retry configuration is what is tested.
    return ModelClient(ModelSettings(model_id=model, max_attempts=max_attempts, max_tokens=256))


# --- pure helpers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_id", "expected"),
    [
        ("anthropic.claude-3-5-haiku-20241022-v1:0", True),
        ("us.anthropic.claude-3-7-sonnet-20250219-v1:0", True),
        ("eu.anthropic.claude-sonnet-4-20250514-v1:0", True),
        ("anthropic.claude-opus-4-1-20250805-v1:0", True),
        ("amazon.nova-lite-v1:0", True),
        ("arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-pro-v1:0", True),
        ("anthropic.claude-3-haiku-20240307-v1:0", False),
        ("meta.llama3-70b-instruct-v1:0", False),
        ("us.mistral.pixtral-large-2502-v1:0", False),
    ],
)
def test_supports_prompt_caching_by_model_id(model_id: str, expected: bool) -> None:
    # GIVEN a model or inference profile id WHEN asked THEN caching support follows the family
    assert supports_prompt_caching(model_id) is expected


def test_build_request_adds_cache_points_only_for_caching_models() -> None:
    # GIVEN settings for a caching and a non-caching model, and one forced off
    cached = build_request(ModelSettings(CACHING_MODEL), system="s", messages=MESSAGES, tools=TOOLS)
    plain = build_request(ModelSettings(PLAIN_MODEL), system="s", messages=MESSAGES, tools=TOOLS)
    forced = build_request(
        ModelSettings(CACHING_MODEL, prompt_caching=False),
        system="s",
        messages=MESSAGES,
        tools=None,
    )
    # THEN cache points close the system prompt and the tool list only where supported
    cache_point = {"cachePoint": {"type": "default"}}
    assert cached["system"] == [{"text": "s"}, cache_point]
    assert cached["toolConfig"] == {"tools": [*TOOLS, cache_point]}
    assert plain["system"] == [{"text": "s"}]
    assert plain["toolConfig"] == {"tools": TOOLS}
    assert forced["system"] == [{"text": "s"}]
    assert "toolConfig" not in forced
    assert cached["inferenceConfig"] == {"maxTokens": 1024, "temperature": 0.0}


def test_estimate_tokens_is_deterministic_and_grows_with_the_prompt() -> None:
    # GIVEN two prompts, one longer WHEN estimated THEN the estimate is stable and ordered
    short = estimate_tokens(system="s", messages=MESSAGES)
    longer = estimate_tokens(system="s" * 400, messages=MESSAGES, tools=TOOLS)
    assert short == estimate_tokens(system="s", messages=MESSAGES)
    assert longer >= short + 100


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model_id": " "}, "model_id: must not be empty"),
        ({"max_tokens": 0}, "max_tokens: must be at least 1"),
        ({"temperature": 1.5}, "temperature: must be between 0 and 1"),
        ({"max_attempts": 0}, "max_attempts: must be at least 1"),
    ],
)
def test_settings_name_a_bad_field(kwargs: dict[str, Any], message: str) -> None:
    # GIVEN one bad value WHEN the settings are built THEN the error names the field
    with pytest.raises(ValueError, match=message):
        ModelSettings(**{"model_id": PLAIN_MODEL, **kwargs})


def test_caching_follows_the_model_unless_set() -> None:
    assert ModelSettings(CACHING_MODEL).caching is True
    assert ModelSettings(PLAIN_MODEL).caching is False
    assert ModelSettings(PLAIN_MODEL, prompt_caching=True).caching is True


# --- over the wire -------------------------------------------------------------------------------


def test_converse_sends_the_built_request_and_parses_the_turn(fake: FakeBedrockServer) -> None:
    # GIVEN a server that answers with usage including cache reads
    usage = {"inputTokens": 5, "outputTokens": 2, "totalTokens": 40, "cacheReadInputTokens": 33}
    fake.responder = Scripted(_ok("hi there", usage))
    # WHEN the client converses with tools
    turn = _client().converse(system="be brief", messages=MESSAGES, tools=TOOLS)
    # THEN the wire request is the built one
    (request,) = fake.requests
    assert request["modelId"] == CACHING_MODEL
    assert request["system"] == [{"text": "be brief"}, {"cachePoint": {"type": "default"}}]
    assert request["inferenceConfig"] == {"maxTokens": 256, "temperature": 0.0}
    assert request["toolConfig"]["tools"][0] == TOOLS[0]
    assert request["messages"] == MESSAGES
    # AND the turn carries content, stop reason and usage as returned
    assert turn.content == [{"text": "hi there"}]
    assert turn.stop_reason == "end_turn"
    assert (turn.usage.input_tokens, turn.usage.output_tokens) == (5, 2)
    assert turn.usage.cache_read_input_tokens == 33
    assert turn.latency_ms >= 0


def test_default_client_uses_the_session_and_standard_retries(fake: FakeBedrockServer) -> None:
    # GIVEN a boto3 session and settings with 2 attempts
    session = boto3.session.Session(region_name="eu-west-1")
    # WHEN the default transport is built from them
    client = ModelClient.default_client(ModelSettings(PLAIN_MODEL, max_attempts=2), session=session)
    # THEN it is a bedrock-runtime client in standard mode that follows the endpoint variable
    assert client.meta.service_model.service_name == "bedrock-runtime"
    assert client.meta.region_name == "eu-west-1"
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 2}
    assert client.meta.endpoint_url == fake.endpoint_url


def test_throttling_is_retried_by_boto3_then_succeeds(fake: FakeBedrockServer) -> None:
    # GIVEN two throttles, then an answer
    throttle = error_response(429, "ThrottlingException", "slow down")
    fake.responder = Scripted(throttle, throttle, _ok("finally"))
    # WHEN the client converses with 3 attempts
    turn = _client(max_attempts=3).converse(system="s", messages=MESSAGES, tools=None)
    # THEN boto3 retried and the third attempt's answer is returned
    assert turn.content == [{"text": "finally"}]
    assert len(fake.requests) == 3


def test_persistent_throttling_becomes_model_throttled(fake: FakeBedrockServer) -> None:
    # GIVEN a server that always throttles
    fake.responder = Scripted(error_response(429, "ThrottlingException", "slow down"))
    # WHEN the client converses THEN, after every attempt, the error is typed and retryable
    with pytest.raises(ModelThrottledError, match=r"ThrottlingException .*slow down") as caught:
        _client(max_attempts=2).converse(system="s", messages=MESSAGES, tools=None)
    assert caught.value.retryable is True
    assert isinstance(caught.value.__cause__, ClientError)
    assert len(fake.requests) == 2


@pytest.mark.parametrize(
    ("status", "code"),
    [(500, "InternalServerException"), (503, "ServiceUnavailableException"), (502, "Whatever")],
)
def test_server_errors_become_model_unavailable(
    fake: FakeBedrockServer, status: int, code: str
) -> None:
    # GIVEN a server that always fails
    fake.responder = Scripted(error_response(status, code, "boom"))
    # WHEN the client converses THEN boto3 retried and the error is ModelUnavailable
    with pytest.raises(ModelUnavailableError, match=code) as caught:
        _client(max_attempts=2).converse(system="s", messages=MESSAGES, tools=None)
    assert caught.value.retryable is True
    assert len(fake.requests) == 2


@pytest.mark.parametrize(
    ("status", "code"),
    [(403, "AccessDeniedException"), (404, "ResourceNotFoundException")],
)
def test_access_and_unknown_model_become_model_not_available(
    fake: FakeBedrockServer, status: int, code: str
) -> None:
    # GIVEN Bedrock refuses the model itself (access not granted, no such model here, EOL)
    fake.responder = Scripted(error_response(status, code, "no access to this model"))
    # WHEN the client converses THEN it fails at once with the typed, non-retryable error
    with pytest.raises(ModelNotAvailableError, match=f"{code} from .*no access") as caught:
        _client(max_attempts=4).converse(system="s", messages=MESSAGES, tools=None)
    assert caught.value.error_type == ErrorType.MODEL_NOT_AVAILABLE
    assert caught.value.retryable is False
    assert len(fake.requests) == 1
    # AND it is neither throttling nor the retryable server-side ModelUnavailable
    assert not isinstance(caught.value, ModelThrottledError | ModelUnavailableError)


@pytest.mark.parametrize(
    ("status", "code"),
    [(400, "ValidationException"), (424, "ModelErrorException")],
)
def test_client_errors_become_model_rejected_without_retry(
    fake: FakeBedrockServer, status: int, code: str
) -> None:
    # GIVEN a server that rejects the request
    fake.responder = Scripted(error_response(status, code, "no good"))
    # WHEN the client converses THEN it fails at once with a non-retryable typed error
    with pytest.raises(ModelRejectedError, match=f"{code} from .*no good") as caught:
        _client(max_attempts=4).converse(system="s", messages=MESSAGES, tools=None)
    assert caught.value.retryable is False
    assert len(fake.requests) == 1


def test_unreachable_endpoint_becomes_model_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN an endpoint that no longer listens
    server = FakeBedrockServer(Scripted(_ok())).start()
    server.stop()
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", server.endpoint_url)
    # WHEN the client converses THEN the connection error is typed as unavailable
    with pytest.raises(ModelUnavailableError, match="EndpointConnectionError"):
        _client(max_attempts=1).converse(system="s", messages=MESSAGES, tools=None)


def test_an_injected_client_is_used_as_the_transport() -> None:
    # GIVEN a transport object that records calls
    class Recorder:
        def __init__(self) -> None:
            self.calls: list[dict[str, Any]] = []

        def converse(self, **kwargs: Any) -> dict[str, Any]:
            self.calls.append(kwargs)
            return json.loads(_ok("injected")[2])

    recorder = Recorder()
    # WHEN a client built with it converses
    turn = ModelClient(ModelSettings(PLAIN_MODEL), client=recorder).converse(
        system="s", messages=MESSAGES, tools=TOOLS
    )
    # THEN the injected transport got the built request
    assert turn.text() == "injected"
    expected = build_request(ModelSettings(PLAIN_MODEL), system="s", messages=MESSAGES, tools=TOOLS)
    assert recorder.calls == [expected]


def test_malformed_response_becomes_model_unavailable(fake: FakeBedrockServer) -> None:
    # GIVEN a 200 answer without a message
    fake.responder = Scripted((200, {"content-type": "application/json"}, b'{"usage": {}}'))
    # WHEN the client converses THEN the gap is reported, typed
    with pytest.raises(ModelUnavailableError, match="malformed Converse response"):
        _client().converse(system="s", messages=MESSAGES, tools=None)


def test_summarise_sends_the_summary_prompt_and_one_user_turn(fake: FakeBedrockServer) -> None:
    # GIVEN a server that answers with a summary
    fake.responder = Scripted(_ok("the gist", {"inputTokens": 9, "outputTokens": 3}))
    # WHEN a transcript is summarised
    text, usage = _client(model=PLAIN_MODEL).summarise("user: book\nassistant: done")
    # THEN the request is the summary prompt, the transcript as a user turn, and no tools
    (request,) = fake.requests
    assert request["system"] == [{"text": SUMMARY_SYSTEM_PROMPT}]
    assert request["messages"] == [
        {"role": "user", "content": [{"text": "user: book\nassistant: done"}]}
    ]
    assert "toolConfig" not in request
    assert (text, usage.input_tokens, usage.output_tokens) == ("the gist", 9, 3)
    assert SUMMARY_SYSTEM_PROMPT.startswith("You summarise")
