"""Bedrock Converse at the wire level: a local endpoint, and the checks Bedrock makes.

moto intercepts every botocore client and has no ``converse``, so tests and the local
environment run a real HTTP endpoint instead: :class:`FakeBedrockServer` listens on
127.0.0.1 and hands each ``POST /model/<modelId>/converse`` body to a *responder*. Point a
client at it with ``AWS_ENDPOINT_URL_BEDROCK_RUNTIME`` or ``endpoint_url=``, and the real boto3
path runs: serialisation, signing, retries, error parsing. :func:`validate_request` answers
why Bedrock would reject a request, so every responder validates the way Bedrock does.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from jsonschema import Draft202012Validator, FormatChecker, SchemaError

__all__ = [
    "FakeBedrockServer",
    "Responder",
    "error_response",
    "tool_specs",
    "validate_request",
]

#: ``(model_id, request body) -> (status, headers, body)``.
Responder = Callable[[str, dict[str, Any]], tuple[int, dict[str, str], bytes]]

_CONVERSE_PATH = re.compile(r"^/model/(?P<model_id>[^/]+)/converse$")
_JSON = {"content-type": "application/json"}


def error_response(status: int, code: str, message: str) -> tuple[int, dict[str, str], bytes]:
    """A Bedrock-style error: botocore reads the code from ``x-amzn-ErrorType``."""
    body = json.dumps({"message": message}).encode()
    return status, {**_JSON, "x-amzn-ErrorType": code}, body


class FakeBedrockServer:
    """A Converse endpoint on 127.0.0.1 (a free port) that answers with any responder."""

    def __init__(self, responder: Responder) -> None:
        self.responder = responder
        self.endpoint_url = ""
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._ids = itertools.count(1)

    def start(self) -> FakeBedrockServer:
        """Listen and serve in a background thread; sets ``endpoint_url``."""
        if self._server is not None:
            return self
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        host, port = server.server_address[:2]
        self.endpoint_url = f"http://{host!s}:{port}"
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeBedrockServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def handle(self, path: str, raw: bytes) -> tuple[int, dict[str, str], bytes]:
        """Answer one request: route, parse, record, and ask the responder."""
        match = _CONVERSE_PATH.match(path.split("?", 1)[0])
        if match is None:
            return error_response(404, "UnknownOperationException", f"no operation at {path}")
        model_id = unquote(match["model_id"])
        try:
            body = json.loads(raw or b"{}")
        except ValueError as exc:
            return error_response(400, "SerializationException", f"request body: {exc}")
        if not isinstance(body, dict):
            return error_response(400, "SerializationException", "request body: not an object")
        with self._lock:
            self.requests.append({"modelId": model_id, **body})
        try:
            return self.responder(model_id, body)
        except Exception as exc:  # a broken responder must show up in the test, not hang it
            return error_response(500, "InternalServerException", f"responder failed: {exc!r}")

    def next_request_id(self) -> str:
        """A fresh ``x-amzn-RequestId``."""
        return f"offline-{next(self._ids):08d}"


def _handler_for(owner: FakeBedrockServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length") or 0))
            status, headers, body = owner.handle(self.path, raw)
            self.send_response(status)
            for name, value in {**headers, "x-amzn-RequestId": owner.next_request_id()}.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # tests read ``owner.requests``; access logs would only be noise

    return Handler


# --- validation, as Bedrock does it ------------------------------------------------------------

_BLOCK_KINDS = ("text", "toolUse", "toolResult", "cachePoint")
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def tool_specs(tool_config: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The ``toolSpec`` of each tool of a Converse ``toolConfig``, by name."""
    tools = (tool_config or {}).get("tools", [])
    return {t["toolSpec"]["name"]: t["toolSpec"] for t in tools if "toolSpec" in t}


def validate_request(request: dict[str, Any]) -> str | None:
    """Why Bedrock would reject this request, or None."""
    return (
        _check_system(request.get("system"))
        or _check_inference(request.get("inferenceConfig"))
        or _check_tool_config(request.get("toolConfig"))
        or _check_messages(request.get("messages"), request.get("toolConfig"))
    )


def _check_system(system: Any) -> str | None:
    if system is None:
        return None
    if not isinstance(system, list):
        return "system: must be a list of content blocks"
    for i, block in enumerate(system):
        kind = _kind(block, ("text", "cachePoint"))
        if kind is None:
            return f"system.{i}: must have exactly one of text, cachePoint"
        if problem := _check_leaf(f"system.{i}", kind, block[kind]):
            return problem
    return None


def _check_inference(config: Any) -> str | None:
    if config is None:
        return None
    if not isinstance(config, dict):
        return "inferenceConfig: must be an object"
    max_tokens = config.get("maxTokens")
    if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
        return f"inferenceConfig.maxTokens: must be an integer of at least 1, got {max_tokens!r}"
    for key in ("temperature", "topP"):
        value = config.get(key)
        if value is not None and (not isinstance(value, int | float) or not 0 <= value <= 1):
            return f"inferenceConfig.{key}: must be between 0 and 1, got {value!r}"
    stops = config.get("stopSequences", [])
    if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops):
        return "inferenceConfig.stopSequences: must be a list of non-empty strings"
    return None


def _check_tool_config(config: Any) -> str | None:
    if config is None:
        return None
    tools = config.get("tools") if isinstance(config, dict) else None
    if not isinstance(tools, list) or not tools:
        return "toolConfig.tools: must contain at least one tool"
    names: set[str] = set()
    for i, tool in enumerate(tools):
        kind = _kind(tool, ("toolSpec", "cachePoint"))
        if kind is None:
            return f"toolConfig.tools.{i}: must have exactly one of toolSpec, cachePoint"
        if kind == "cachePoint":
            if problem := _check_leaf(f"toolConfig.tools.{i}", kind, tool[kind]):
                return problem
            continue
        spec = tool["toolSpec"]
        name = spec.get("name")
        if not isinstance(name, str) or not _TOOL_NAME.match(name):
            return f"toolConfig.tools.{i}.toolSpec.name: must match {_TOOL_NAME.pattern}"
        if name in names:
            return f"toolConfig.tools.{i}.toolSpec.name: tool name {name!r} is not unique"
        names.add(name)
        schema = (spec.get("inputSchema") or {}).get("json")
        if not isinstance(schema, dict):
            return f"toolConfig.tools.{i}.toolSpec.inputSchema.json: must be a JSON schema object"
        if problem := _schema_problem(json.dumps(schema, sort_keys=True)):
            return f"toolConfig.tools.{i}.toolSpec.inputSchema.json: invalid schema: {problem}"
    choice = config.get("toolChoice")
    if choice is not None and "tool" in choice and choice["tool"].get("name") not in names:
        return "toolConfig.toolChoice.tool.name: must name a tool of toolConfig.tools"
    return None


@functools.lru_cache(maxsize=512)
def _schema_problem(schema: str) -> str | None:
    """Why a tool's input schema (JSON text) is not a valid JSON schema, or None.

    Checking a schema against the metaschema costs ~10 ms, and every request of an agent
    carries the same few schemas: each distinct one is checked once.
    """
    try:
        Draft202012Validator.check_schema(json.loads(schema))
    except SchemaError as exc:
        return str(exc.message)
    return None


def _check_messages(messages: Any, tool_config: dict[str, Any] | None) -> str | None:
    if not isinstance(messages, list) or not messages:
        return "messages: must contain at least one message"
    specs = tool_specs(tool_config)
    seen_ids: set[str] = set()
    pending: dict[str, dict[str, Any]] = {}  # toolUse blocks of the previous assistant turn
    for i, message in enumerate(messages):
        where = f"messages.{i}"
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("user", "assistant"):
            return f"{where}.role: must be user or assistant, got {role!r}"
        if i == 0 and role != "user":
            return "A conversation must start with a user message (messages.0.role)."
        if i > 0 and role == messages[i - 1].get("role"):
            return f"{where}.role: a conversation must alternate between user and assistant roles"
        content = message.get("content")
        if not isinstance(content, list) or not content:
            return f"{where}.content: must contain at least one content block"
        uses: dict[str, dict[str, Any]] = {}
        results: dict[str, str] = {}
        for j, block in enumerate(content):
            bwhere = f"{where}.content.{j}"
            kind = _kind(block, _BLOCK_KINDS)
            if kind is None:
                return f"{bwhere}: must have exactly one of {', '.join(_BLOCK_KINDS)}"
            if kind in ("toolUse", "toolResult") and tool_config is None:
                return (
                    f"{bwhere}: the toolConfig field must be defined when using toolUse and "
                    "toolResult content blocks"
                )
            if kind == "toolUse":
                problem = _check_tool_use(bwhere, role, block[kind], seen_ids)
                if problem:
                    return problem
                uses[block[kind]["toolUseId"]] = block[kind]
            elif kind == "toolResult":
                problem = _check_tool_result(bwhere, role, block[kind], pending, results)
                if problem:
                    return problem
                results[block[kind]["toolUseId"]] = block[kind].get("status", "success")
            elif problem := _check_leaf(bwhere, kind, block[kind]):
                return problem
        if role == "user":
            if unanswered := sorted(set(pending) - set(results)):
                return (
                    f"{where}: toolUse ids {unanswered} of messages.{i - 1} have no toolResult; "
                    "every toolUse must be answered in the next user turn"
                )
            if problem := _check_answered_inputs(where, pending, results, specs):
                return problem
        pending = uses
    if pending:
        return (
            f"messages.{len(messages) - 1}: toolUse ids {sorted(pending)} have no toolResult; "
            "every toolUse must be answered in the next user turn"
        )
    return None


def _kind(block: Any, allowed: tuple[str, ...]) -> str | None:
    if not isinstance(block, dict) or len(block) != 1:
        return None
    (kind,) = block
    return kind if kind in allowed else None


def _check_leaf(where: str, kind: str, value: Any) -> str | None:
    if kind == "text" and (not isinstance(value, str) or not value.strip()):
        return f"{where}.text: the text field is blank; add text to the content block"
    if kind == "cachePoint" and value != {"type": "default"}:
        return f"{where}.cachePoint: type must be 'default'"
    return None


def _check_tool_use(where: str, role: str, use: Any, seen_ids: set[str]) -> str | None:
    if role != "assistant":
        return f"{where}: toolUse blocks are only allowed in assistant turns"
    if not isinstance(use, dict) or not isinstance(use.get("toolUseId"), str):
        return f"{where}.toolUse.toolUseId: required string"
    if not use["toolUseId"] or use["toolUseId"] in seen_ids:
        return f"{where}.toolUse.toolUseId: {use['toolUseId']!r} must be non-empty and unique"
    seen_ids.add(use["toolUseId"])
    if not isinstance(use.get("name"), str) or not use["name"]:
        return f"{where}.toolUse.name: required string"
    if not isinstance(use.get("input"), dict):
        return f"{where}.toolUse.input: must be a JSON object"
    return None


def _check_tool_result(
    where: str,
    role: str,
    result: Any,
    pending: dict[str, dict[str, Any]],
    answered: dict[str, str],
) -> str | None:
    if role != "user":
        return f"{where}: toolResult blocks are only allowed in user turns"
    if not isinstance(result, dict) or not isinstance(result.get("toolUseId"), str):
        return f"{where}.toolResult.toolUseId: required string"
    tool_use_id = result["toolUseId"]
    if tool_use_id not in pending:
        return (
            f"{where}.toolResult.toolUseId: {tool_use_id!r} does not match a toolUse of the "
            "immediately preceding assistant turn"
        )
    if tool_use_id in answered:
        return f"{where}.toolResult.toolUseId: {tool_use_id!r} is answered twice"
    if result.get("status", "success") not in ("success", "error"):
        return f"{where}.toolResult.status: must be success or error"
    content = result.get("content")
    if not isinstance(content, list) or not content:
        return f"{where}.toolResult.content: must contain at least one block"
    for k, block in enumerate(content):
        if _kind(block, ("text", "json")) is None:
            return f"{where}.toolResult.content.{k}: must have exactly one of text, json"
    return None


def _check_answered_inputs(
    where: str,
    pending: dict[str, dict[str, Any]],
    results: dict[str, str],
    specs: dict[str, dict[str, Any]],
) -> str | None:
    # Stricter than Bedrock on purpose, to catch loop bugs: a call answered as a *success* must
    # name an offered tool and match its schema. A bad call answered with an error result is
    # how a model learns of its mistake, so it stays valid history.
    for tool_use_id, use in pending.items():
        if results.get(tool_use_id) != "success":
            continue
        spec = specs.get(use["name"])
        if spec is None:
            return f"{where}: toolUse {tool_use_id!r} names unknown tool {use['name']!r}"
        validator = Draft202012Validator(
            spec["inputSchema"]["json"], format_checker=FormatChecker()
        )
        errors = sorted(validator.iter_errors(use["input"]), key=lambda e: list(e.path))
        if errors:
            details = "; ".join(
                f"{'.'.join(map(str, e.path)) or '(input)'}: {e.message}" for e in errors
            )
            return f"{where}: toolUse {tool_use_id!r} input does not match its schema: {details}"
    return None
