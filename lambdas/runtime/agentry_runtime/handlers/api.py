"""The ``api`` function: API Gateway HTTP API (payload v2) routes over ``AgentService``.

Every route is IAM-authorized: the caller is the principal API Gateway verified
(``identity.caller_of``); callers see and act on their own agents only (an operator on any).

Bad input gets a JSON error naming the field and the reason, and changes nothing stored:
400 (malformed or invalid), 401 (no IAM identity), 404 (unknown agent, or another caller's),
409 (illegal transition, concurrent change, idempotency conflict), 413 (body or text too
large), 429 (the caller's cap of unfinished agents).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agentry_runtime.contract import IDEMPOTENCY_PK, PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE
from agentry_runtime.errors import (
    AgentNotFoundError,
    StaleStepError,
    TooManyAgentsError,
    UnknownToolCallError,
)
from agentry_runtime.identity import Caller, MissingIdentityError, caller_of
from agentry_runtime.observability import logger, metrics, tracer
from agentry_runtime.runtime import Runtime, get_runtime
from agentry_runtime.service import Decision
from agentry_runtime.state import IllegalTransitionError, Status

__all__ = [
    "ApiError",
    "ApprovalsRequest",
    "CancelRequest",
    "CreateAgentRequest",
    "DecisionRequest",
    "FollowUpRequest",
    "ResumeRequest",
    "app",
    "handler",
]

MAX_GOAL_CHARS = 4000
MAX_INSTRUCTION_CHARS = 4000
MAX_PAGE = 100
_MAX_DEPTH = 16
_MAX_INT_DIGITS = 30
_AGENT_ID = re.compile(r"^agent-[0-9a-f]{32}$")
_IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

app = APIGatewayHttpResolver()


class ApiError(Exception):
    """An error answered as ``{"error": {"code", "message", "fields"}}`` with ``status``.

    ``fields`` pairs each offending field with the reason; the message lists them all.
    """

    def __init__(self, status: int, code: str, fields: list[tuple[str, str]]) -> None:
        self.status = status
        self.code = code
        self.fields = [{"field": field, "reason": reason} for field, reason in fields]
        self.message = "; ".join(f"{field}: {reason}" for field, reason in fields)
        super().__init__(self.message)


def _invalid(
    field: str, reason: str, *, status: int = 400, code: str = "ValidationError"
) -> ApiError:
    """One bad field."""
    return ApiError(status, code, [(field, reason)])


class CreateAgentRequest(BaseModel):
    """Body of ``POST /agents``."""

    model_config = ConfigDict(extra="forbid", strict=True)
    goal: str = Field(min_length=1, description="What the agent must achieve.")
    prompt: str | None = Field(default=None, min_length=1, description="First user message.")
    agent: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="Agent definition (default: the stack's).",
    )


class FollowUpRequest(BaseModel):
    """Body of ``POST /agents/{id}/messages``."""

    model_config = ConfigDict(extra="forbid", strict=True)
    text: str = Field(min_length=1, description="The caller's next message to a COMPLETED agent.")


class ResumeRequest(BaseModel):
    """Body of ``POST /agents/{id}/resume``."""

    model_config = ConfigDict(extra="forbid", strict=True)
    instruction: str = Field(min_length=1, description="What the human tells the agent.")


class CancelRequest(BaseModel):
    """Body of ``POST /agents/{id}/cancel`` (optional)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    reason: str | None = Field(default=None, max_length=1000)


class DecisionRequest(BaseModel):
    """One decision of ``POST /agents/{id}/approvals``."""

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)
    tool_use_id: str = Field(alias="toolUseId", min_length=1, max_length=64)
    approve: bool
    reason: str | None = Field(default=None, min_length=1, max_length=1000)


class ApprovalsRequest(BaseModel):
    """Body of ``POST /agents/{id}/approvals``."""

    model_config = ConfigDict(extra="forbid", strict=True)
    decisions: list[DecisionRequest] = Field(min_length=1, max_length=50)

    @field_validator("decisions")
    @classmethod
    def _one_decision_per_call(cls, value: list[DecisionRequest]) -> list[DecisionRequest]:
        ids = [d.tool_use_id for d in value]
        if len(set(ids)) != len(ids):
            raise ValueError("a toolUseId is decided twice")
        return value


_TEXT_LIMITS = {
    "goal": MAX_GOAL_CHARS,
    "prompt": MAX_GOAL_CHARS,
    "instruction": MAX_INSTRUCTION_CHARS,
    "text": MAX_INSTRUCTION_CHARS,
}


def _raw_body() -> str:
    """The request body as text; ``ApiError`` if it is not base64 or UTF-8 when it must be."""
    event = app.current_event
    raw = event.get("body") or ""
    if not isinstance(raw, str):
        raise _invalid("body", "must be text")
    limit = get_runtime().max_request_bytes
    # Checked before decoding: a huge body is refused without being processed.
    if len(raw) > 2 * limit:
        raise _invalid("body", f"larger than {limit} bytes", status=413, code="PayloadTooLarge")
    if event.get("isBase64Encoded"):
        try:
            data = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise _invalid("body", "is not valid base64") from exc
        try:
            raw = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _invalid("body", "is not valid UTF-8") from exc
    try:
        size = len(raw.encode("utf-8"))
    except UnicodeEncodeError as exc:  # lone surrogates from \ud800-style input
        raise _invalid("body", "is not valid UTF-8") from exc
    if size > limit:
        raise _invalid("body", f"larger than {limit} bytes", status=413, code="PayloadTooLarge")
    return raw


def _bounded_int(text: str) -> int:
    # Python refuses ints of more than 4300 digits with a ValueError; refuse far earlier.
    if len(text.lstrip("-")) > _MAX_INT_DIGITS:
        raise ValueError(f"a number of more than {_MAX_INT_DIGITS} digits")
    return int(text)


def _decode(raw: str) -> Any:
    try:
        data = json.loads(raw, parse_int=_bounded_int)
    except json.JSONDecodeError as exc:
        reason = f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        raise _invalid("body", reason, code="MalformedJson") from exc
    except RecursionError as exc:
        raise _invalid("body", "JSON nested too deeply", code="MalformedJson") from exc
    except ValueError as exc:
        raise _invalid("body", f"malformed JSON: {exc}", code="MalformedJson") from exc
    if _depth(data) > _MAX_DEPTH:
        raise _invalid("body", f"JSON nested more than {_MAX_DEPTH} levels", code="MalformedJson")
    return data


def _depth(value: Any, level: int = 0) -> int:
    if level > _MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


def _body(model: type[BaseModel], *, optional: bool = False) -> Any:
    """Parse and validate the JSON body into ``model``; raise ``ApiError`` naming the field."""
    raw = _raw_body()
    if not raw.strip():
        if optional:
            return model()
        raise _invalid("body", "a JSON object is required")
    data = _decode(raw)
    if not isinstance(data, dict):
        raise _invalid("body", "must be a JSON object")
    for name, limit_chars in _TEXT_LIMITS.items():
        value = data.get(name)
        if name not in model.model_fields or not isinstance(value, str):
            continue
        if len(value) > limit_chars:
            reason = f"at most {limit_chars} characters, got {len(value)}"
            raise _invalid(name, reason, status=413, code="PayloadTooLarge")
        if value and not value.strip():
            raise _invalid(name, "must not be blank")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        fields = [
            (".".join(str(p) for p in error["loc"]) or "body", _reason(error))
            for error in exc.errors()
        ]
        raise ApiError(400, "ValidationError", fields) from exc


def _reason(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field"
    if error["type"] == "missing":
        return "required field is missing"
    return str(error["msg"])


def _agent_id(raw: str) -> str:
    if not _AGENT_ID.match(raw):
        raise _invalid("id", "not an agent id (agent-<32 hex digits>)")
    logger.append_keys(agent_id=raw)
    return raw


def _caller() -> Caller:
    """The request's caller; ``MissingIdentityError`` (401) without one."""
    return caller_of(app.current_event.raw_event)


def _query(allowed: set[str]) -> dict[str, str]:
    """The query parameters, refusing unknown ones by name."""
    params = app.current_event.query_string_parameters or {}
    unknown = sorted(set(params) - allowed)
    if unknown:
        # A parameter without a name ("?=x") is named by what it is.
        fields = [(name or "query", "unknown query parameter") for name in unknown]
        raise ApiError(400, "ValidationError", fields)
    return dict(params)


def _limit(params: dict[str, str], default: int = 50) -> int:
    raw = params.get("limit", str(default))
    # isdigit() alone accepts digits such as "²" that int() rejects (found by tests/fuzz); the
    # length check comes first, as int() refuses a few thousand digits with a ValueError.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 3 or not 1 <= int(raw) <= MAX_PAGE:
        raise _invalid("limit", f"an integer from 1 to {MAX_PAGE}")
    return int(raw)


def _json(status: int, body: dict[str, Any]) -> Response[str]:
    return Response(status_code=status, content_type="application/json", body=json.dumps(body))


# --- routes ---------------------------------------------------------------------------------


@app.post("/agents")
@tracer.capture_method
def create_agent() -> Response[str]:
    """Start an agent; an ``Idempotency-Key`` header makes client retries return the same one."""
    request = _body(CreateAgentRequest)
    agents = get_runtime().agents
    if request.agent is not None and request.agent not in agents:
        raise _invalid("agent", f"no agent {request.agent!r}; agents: {', '.join(agents.names())}")
    caller = _caller()
    key = app.current_event.headers.get("idempotency-key")
    if key is None:
        created = _create(request, caller)
    else:
        if not _IDEMPOTENCY_KEY.match(key):
            raise _invalid("Idempotency-Key", "1 to 128 characters of letters, digits and . _ : -")
        # Keys are the caller's own: another caller's same key is another request.
        created = _idempotent_create()(
            request={
                "idempotencyKey": f"{caller.principal} {key}",
                "caller": {"principal": caller.principal, "account": caller.account},
                "body": request.model_dump(mode="json"),
            }
        )
    logger.append_keys(agent_id=created["agentId"])
    metrics.add_metric(name="AgentsCreated", unit="Count", value=1)
    return _json(202, created)


def _create(request: CreateAgentRequest, caller: Caller) -> dict[str, Any]:
    header = get_runtime().service.create(
        request.goal, request.prompt, agent=request.agent, caller=caller
    )
    return {"agentId": header.agent_id, "agent": header.agent, "status": str(header.status)}


_IDEMPOTENCY_CONFIG = IdempotencyConfig(
    event_key_jmespath="idempotencyKey",
    payload_validation_jmespath="body",
    expires_after_seconds=24 * 3600,
)
# The idempotent create function of the runtime it was built for (one per container in Lambda;
# rebuilt when another runtime is injected, so it never writes to a stale table or client).
_idempotent: tuple[Runtime, Any] | None = None


def _idempotent_create() -> Any:
    """``_create`` behind Powertools idempotency, keyed by the header, checked against the body."""
    global _idempotent
    runtime = get_runtime()
    if _idempotent is None or _idempotent[0] is not runtime:
        persistence = DynamoDBPersistenceLayer(
            table_name=runtime.store.table_name,
            key_attr=PARTITION_KEY,
            sort_key_attr=SORT_KEY,
            static_pk_value=IDEMPOTENCY_PK,
            expiry_attr=TTL_ATTRIBUTE,
            boto3_client=runtime.store.client,
        )

        @idempotent_function(
            data_keyword_argument="request",
            persistence_store=persistence,
            config=_IDEMPOTENCY_CONFIG,
        )
        def create(request: dict[str, Any]) -> dict[str, Any]:
            return _create(
                CreateAgentRequest.model_validate(request["body"]), Caller(**request["caller"])
            )

        _idempotent = (runtime, create)
    return _idempotent[1]


@app.get("/agents")
@tracer.capture_method
def list_agents() -> Response[str]:
    """The caller's own agents, newest first (``status``, ``limit``, ``cursor``)."""
    caller = _caller()
    params = _query({"status", "limit", "cursor"})
    limit = _limit(params, default=25)
    status = None
    if "status" in params:
        try:
            status = Status(params["status"])
        except ValueError:
            raise _invalid("status", f"one of {', '.join(s.value for s in Status)}") from None
    try:
        page = get_runtime().service.owned(
            caller, limit=limit, cursor=params.get("cursor"), status=status
        )
    except ValueError as exc:  # the store names the field: "cursor: <reason>"
        raise _invalid("cursor", str(exc).removeprefix("cursor: ")) from exc
    return _json(200, page)


@app.get("/agents/<agent_id>")
@tracer.capture_method
def get_agent(agent_id: str) -> Response[str]:
    """The agent in the article's shape."""
    return _json(200, get_runtime().service.view(_agent_id(agent_id), caller=_caller()))


@app.delete("/agents/<agent_id>")
@tracer.capture_method
def delete_agent(agent_id: str) -> Response[str]:
    """Remove every item of the agent (cancelling it first if it still runs)."""
    agent = _agent_id(agent_id)
    deleted = get_runtime().service.delete(agent, caller=_caller())
    metrics.add_metric(name="AgentsDeleted", unit="Count", value=1)
    return _json(200, {"agentId": agent, "deleted": True, "items": deleted})


@app.get("/agents/<agent_id>/messages")
@tracer.capture_method
def get_messages(agent_id: str) -> Response[str]:
    """One page of the agent's messages (``limit``, ``cursor`` query parameters)."""
    agent = _agent_id(agent_id)
    caller = _caller()
    params = _query({"limit", "cursor"})
    limit = _limit(params)
    try:
        page = get_runtime().service.messages(
            agent, limit=limit, cursor=params.get("cursor"), caller=caller
        )
    except ValueError as exc:  # the store names the field: "cursor: <reason>"
        raise _invalid("cursor", str(exc).removeprefix("cursor: ")) from exc
    return _json(200, page)


@app.post("/agents/<agent_id>/messages")
@tracer.capture_method
def follow_up(agent_id: str) -> Response[str]:
    """Continue a COMPLETED agent's conversation: it plans again with a fresh step budget."""
    agent = _agent_id(agent_id)
    caller = _caller()
    request = _body(FollowUpRequest)
    header = get_runtime().service.follow_up(agent, request.text, caller=caller)
    return _json(202, {"agentId": agent, "status": str(header.status), "step": header.step})


@app.post("/agents/<agent_id>/resume")
@tracer.capture_method
def resume_agent(agent_id: str) -> Response[str]:
    """Give an agent that waits for a human an instruction, and let it plan again."""
    agent = _agent_id(agent_id)
    caller = _caller()
    request = _body(ResumeRequest)
    header = get_runtime().service.resume(agent, request.instruction, caller=caller)
    return _json(202, {"agentId": agent, "status": str(header.status), "step": header.step})


@app.post("/agents/<agent_id>/cancel")
@tracer.capture_method
def cancel_agent(agent_id: str) -> Response[str]:
    """Cancel an agent that has not ended."""
    agent = _agent_id(agent_id)
    caller = _caller()
    _body(CancelRequest, optional=True)
    header = get_runtime().service.cancel(agent, caller=caller)
    return _json(200, {"agentId": agent, "status": str(header.status)})


@app.get("/agents/<agent_id>/approvals")
@tracer.capture_method
def get_approvals(agent_id: str) -> Response[str]:
    """The calls of the agent's plan that wait for a person, with their inputs."""
    agent = _agent_id(agent_id)
    return _json(200, get_runtime().service.approvals(agent, caller=_caller()))


@app.post("/agents/<agent_id>/approvals")
@tracer.capture_method
def decide(agent_id: str) -> Response[str]:
    """Approve or reject held calls; once all are decided, the agent acts."""
    agent = _agent_id(agent_id)
    caller = _caller()
    request = _body(ApprovalsRequest)
    decisions = [Decision(d.tool_use_id, d.approve, d.reason) for d in request.decisions]
    view = get_runtime().service.decide(agent, decisions, caller=caller)
    metrics.add_metric(name="ApprovalDecisions", unit="Count", value=len(decisions))
    return _json(200, view)


# --- errors ---------------------------------------------------------------------------------


@app.exception_handler(ApiError)
def _api_error(exc: ApiError) -> Response[str]:
    return _json(
        exc.status, {"error": {"code": exc.code, "message": exc.message, "fields": exc.fields}}
    )


# Errors raised below the routes, each answered as one bad field.
_FIELD_ERRORS: dict[type[Exception], tuple[int, str, str, str]] = {
    AgentNotFoundError: (404, "AgentNotFound", "id", "no such agent"),
    StaleStepError: (
        409,
        "ConcurrentUpdate",
        "status",
        "the agent changed while the request ran; read it and retry",
    ),
    IdempotencyAlreadyInProgressError: (
        409,
        "IdempotencyConflict",
        "Idempotency-Key",
        "a request with this key is still in progress",
    ),
    IdempotencyValidationError: (
        409,
        "IdempotencyConflict",
        "Idempotency-Key",
        "already used with a different body",
    ),
    MissingIdentityError: (
        401,
        "Unauthenticated",
        "authorization",
        "sign the request with AWS credentials (SigV4); the routes use IAM authorization",
    ),
}


@app.exception_handler(TooManyAgentsError)
def _too_many(exc: TooManyAgentsError) -> Response[str]:
    reason = f"{exc}; cancel, finish or delete one first"
    return _api_error(_invalid("agents", reason, status=429, code="TooManyAgents"))


@app.exception_handler(UnknownToolCallError)
def _unknown_call(exc: UnknownToolCallError) -> Response[str]:
    return _api_error(_invalid("decisions", f"{exc}: it does not wait for a decision"))


@app.exception_handler(list(_FIELD_ERRORS))
def _field_error(exc: Exception) -> Response[str]:
    kind = next(cls for cls in type(exc).__mro__ if cls in _FIELD_ERRORS)
    status, code, field, reason = _FIELD_ERRORS[kind]
    return _api_error(_invalid(field, reason, status=status, code=code))


@app.exception_handler(IllegalTransitionError)
def _conflict(exc: IllegalTransitionError) -> Response[str]:
    reason = f"the agent is {exc.current}: {exc}"
    return _api_error(_invalid("status", reason, status=409, code="IllegalTransition"))


@app.not_found
def _no_route(exc: NotFoundError) -> Response[str]:
    path = app.current_event.raw_path
    return _api_error(_invalid("path", f"no such route: {path}", status=404, code="NotFound"))


@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True
)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point (``contract.Handler.API``)."""
    # Powertools uses the remaining time to expire in-progress records of timed-out calls.
    _IDEMPOTENCY_CONFIG.register_lambda_context(context)
    return app.resolve(event, context)
