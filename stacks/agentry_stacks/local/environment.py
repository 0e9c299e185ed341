"""``LocalEnvironment``: the stack's workflow on this machine, built from its resource graph.

Inside one ``mock_aws`` (with moto's Step Functions interpreter) it creates the graph's
data-plane resources (:mod:`~agentry_stacks.local.resources`), runs the graph's functions
in-process (:mod:`~agentry_stacks.local.functions`), feeds the worker from its queue
(:mod:`~agentry_stacks.local.delivery`), starts the recovery state machine from the error rule
(:mod:`~agentry_stacks.local.bridge`), and answers Bedrock Converse with an offline model on
127.0.0.1 (``AWS_ENDPOINT_URL_BEDROCK_RUNTIME``, restored on exit)::

    with LocalEnvironment("dev", fail_tools=["book_flight"]) as env:
        agent_id = env.start("Book a flight from New York to San Francisco for tomorrow")
        env.run_until_idle()
        assert env.agent(agent_id)["status"] == "NEEDS_HUMAN"
"""

from __future__ import annotations

import copy
import io
import json
import logging
import os
import re
import tempfile
import threading
import time
import uuid
import zipfile
from collections import Counter
from collections.abc import Collection, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any
from unittest import mock

import boto3
from moto import mock_aws

from agentry_flights import bookings
from agentry_offline.bedrock import FakeBedrockServer, Responder
from agentry_offline.events import LOCAL_CALLER, decode_body, http_api_event
from agentry_offline.faults import FailOnce, with_tool_faults
from agentry_offline.model import Faults, OfflineModel, OfflineResponder
from agentry_offline.script import Script, ScriptedModel
from agentry_runtime.agents import AgentsFile
from agentry_runtime.contract import (
    AGENTS_FILE_NAME,
    META_SK,
    PARTITION_KEY,
    SORT_KEY,
    TASK_ROOT_VARIABLE,
    Env,
    HeaderAttr,
    Status,
)
from agentry_runtime.errors import AgentNotFoundError, AgentryError
from agentry_runtime.observability import logger as runtime_logger
from agentry_runtime.runtime import Runtime
from agentry_runtime.settings import FunctionSettings
from agentry_runtime.tools import ToolRegistry
from agentry_stacks.deploy.agents import workspace
from agentry_stacks.deploy.config import project_root
from agentry_stacks.deploy.toolsets import DistributionError
from agentry_stacks.local.bridge import Execution, StepFunctionsBridge, transform_input
from agentry_stacks.local.delivery import QueuePoller
from agentry_stacks.local.functions import LocalFunction
from agentry_stacks.local.progress import EventKind, LocalEvent, ProgressCallback
from agentry_stacks.local.resources import (
    LOCAL_STALE_AFTER_SECONDS,
    LocalResources,
    TopicBridge,
    build_resources,
)
from agentry_stacks.local.streams import StreamPoller
from agentry_stacks.offline.graph import (
    FUNCTION,
    LocalGraph,
    LocalGraphError,
    Resource,
    arn_of,
)

__all__ = ["LocalApiError", "LocalEnvironment", "LocalEnvironmentError"]

_SERVICES = ("dynamodb", "sqs", "sns", "events", "stepfunctions", "iam")


class LocalEnvironmentError(ValueError):
    """The environment cannot be built as asked (bad option, unknown tool, unusable graph)."""


class LocalApiError(RuntimeError):
    """The api function answered an unexpected status; ``status`` and ``body`` say why."""

    def __init__(self, method: str, path: str, status: int, body: Any) -> None:
        super().__init__(f"{method} {path}: {status} {json.dumps(body)}")
        self.status = status
        self.body = body


class LocalEnvironment:
    """The stack's data plane in moto, its functions in-process and an offline model."""

    def __init__(
        self,
        stack: str = "dev",
        *,
        fail_tools: Collection[str] = (),
        fail_once_tools: Collection[str] = (),
        throttle: int = 0,
        duplicate_events: bool = False,
        project_dir: Path | None = None,
        model: Responder | None = None,
        graph: Mapping[str, Any] | None = None,
        on_event: ProgressCallback | None = None,
        script: Script | None = None,
    ) -> None:
        if throttle < 0:
            raise LocalEnvironmentError(f"throttle: must be 0 or more, got {throttle}")
        if model is not None and script is not None:
            raise LocalEnvironmentError("model, script: give one or the other")
        self.stack = stack
        self.duplicate_events = duplicate_events
        self.project_dir = project_dir or project_root()
        faults = Faults(throttle=throttle)
        self.model: Responder = model or (
            ScriptedModel(script, faults=faults) if script else OfflineModel(faults=faults)
        )
        self.events: list[LocalEvent] = []
        self.executions: list[Execution] = []
        self._fail_tools = tuple(fail_tools)
        self._fail_once_tools = tuple(fail_once_tools)
        self._fail_once = FailOnce()
        self._graph_document = graph
        self._callbacks: list[ProgressCallback] = [on_event] if on_event else []
        self._model_calls: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._agents: dict[str, dict[str, Any]] = {}  # agent id -> last observed view
        self._notifications: list[dict[str, Any]] = []
        self._dead_letter_count = 0
        self._saved_log_stream: Any = None
        self.runtime_logs = io.StringIO()
        self._open = False

    # --- lifecycle --------------------------------------------------------------------------

    def __enter__(self) -> LocalEnvironment:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def open(self) -> LocalEnvironment:
        """Plan the stack (unless a graph was given) and build everything; see the module doc."""
        if self._open:
            return self
        document = self._graph_document or self._plan()
        self.graph = LocalGraph(document)
        region = self._region()
        self._task_root = self._unpack_agents_file()
        self._check_tool_names()
        self._aws = mock_aws(config={"stepfunctions": {"execute_state_machine": True}})
        self._aws.start()
        self._server = FakeBedrockServer(self._respond).start()
        self._environ = mock.patch.dict(
            os.environ,
            {
                "AWS_DEFAULT_REGION": region,
                "AWS_REGION": region,
                "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": self._server.endpoint_url,
            },
        )
        self._environ.start()
        self._open = True
        try:
            self._build(region)
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Stop the model endpoint, leave moto and restore the process environment."""
        if not self._open:
            return
        self._open = False
        if self._saved_log_stream is not None:
            _swap_log_stream(self._saved_log_stream)
            self._saved_log_stream = None
        self._server.stop()
        self._environ.stop()
        self._aws.stop()
        self._task_root.cleanup()

    def _plan(self) -> dict[str, Any]:
        # Imported late: planning loads Pulumi; a caller with a graph does not pay for it.
        from agentry_stacks.deploy.config import ConfigError
        from agentry_stacks.offline.plan import plan_stack

        try:
            return plan_stack(self.stack, project_dir=self.project_dir)
        except ConfigError as exc:
            raise LocalEnvironmentError(f"stack {self.stack}: {exc}") from exc

    def _region(self) -> str:
        try:
            return self.graph.region()
        except LocalGraphError as exc:
            raise LocalEnvironmentError(str(exc)) from exc

    def _unpack_agents_file(self) -> tempfile.TemporaryDirectory[str]:
        """The bundle's agents file, in a task root of its own (as Lambda unpacks the zip)."""
        archives = {self.graph.code_archive(f) for f in self.graph.of_type(FUNCTION)}
        if len(archives) != 1:
            raise LocalEnvironmentError(f"functions: expected one bundle, found {len(archives)}")
        (archive,) = archives
        path = Path(archive) if Path(archive).is_absolute() else self.project_dir / archive
        try:
            with zipfile.ZipFile(path) as bundle:
                content = bundle.read(AGENTS_FILE_NAME)
        except (OSError, KeyError, zipfile.BadZipFile) as exc:
            raise LocalEnvironmentError(f"bundle {archive}: no {AGENTS_FILE_NAME} ({exc})") from exc
        root = tempfile.TemporaryDirectory(prefix="agentry-task-root-")
        (Path(root.name) / AGENTS_FILE_NAME).write_bytes(content)
        self.agents_file = AgentsFile.model_validate_json(content)
        return root

    def _check_tool_names(self) -> None:
        known = {tool.name for spec in self.agents_file.agents.values() for tool in spec.tools}
        for option, names in (
            ("fail_tools", self._fail_tools),
            ("fail_once_tools", self._fail_once_tools),
        ):
            if unknown := sorted(set(names) - known):
                raise LocalEnvironmentError(
                    f"{option}: unknown tool {unknown[0]!r}; tools: {', '.join(sorted(known))}"
                )

    def _build(self, region: str) -> None:
        session = boto3.session.Session(region_name=region)
        self.clients = {name: session.client(name) for name in _SERVICES}
        self._fail_once.reset()
        # Keep the runtime's Powertools log lines off the terminal, like CloudWatch Logs.
        self.runtime_logs = io.StringIO()
        self._saved_log_stream = _swap_log_stream(self.runtime_logs)
        try:
            self.resources: LocalResources = build_resources(self.graph, self.clients)
            self.functions = {
                arn_of(r): LocalFunction.from_graph(_local_time_scale(r), self._make_runtime)
                for r in self.graph.of_type(FUNCTION)
            }
            self.api = self.functions[arn_of(self.graph.api_function())]
            self._routes = [_route_pattern(key) for key in self.graph.route_keys()]
            self._pollers = [
                QueuePoller(
                    m,
                    self._function(m.function_arn),
                    self.clients["sqs"],
                    duplicate=self.duplicate_events,
                )
                for m in self.resources.mappings
            ]
            self._stream_pollers = [
                StreamPoller(
                    m,
                    self._function(m.function_arn),
                    session,
                    self.clients["sqs"],
                    region=region,
                    duplicate=self.duplicate_events,
                )
                for m in self.resources.stream_mappings
            ]
            self._scheduled = [self._function(s.function_arn) for s in self.resources.schedules]
        except LocalGraphError as exc:
            raise LocalEnvironmentError(str(exc)) from exc
        self._bridges = [
            StepFunctionsBridge(
                b,
                self.clients["sqs"],
                self.clients["stepfunctions"],
                duplicate=self.duplicate_events,
            )
            for b in self.resources.bridges
        ]

    def _function(self, arn: str) -> LocalFunction:
        for function_arn, function in self.functions.items():
            if function_arn in arn or arn.endswith(f":function:{function.name}"):
                return function
        raise LocalGraphError(f"{arn}: the event source mapping names no function of the graph")

    def _make_runtime(self, environ: Mapping[str, str]) -> Runtime:
        return self.make_runtime(environ)

    def make_runtime(self, environ: Mapping[str, str], *, session: Any | None = None) -> Runtime:
        """A function's runtime from its environment, as Lambda builds it from the bundle.

        Toolsets load from their folders with this environment's tool faults; ``session``
        (e.g. a role's credentials) makes every client of the runtime.
        """
        # Lambda unpacks the bundle as the task root; the agents file is all we need of it.
        task_environ = {**environ, TASK_ROOT_VARIABLE: self._task_root.name}
        try:
            return Runtime.from_env(
                task_environ, session=session, toolset_loader=self._load_toolset
            )
        except AgentryError as exc:
            raise LocalGraphError(str(exc)) from exc

    def _load_toolset(self, path: str) -> ToolRegistry:
        """A toolset from its folder under ``lambdas/`` (no reinstall), with the tool faults."""
        try:
            registry, _ = workspace(self.project_dir.resolve() / "lambdas").load_toolset(path)
        except DistributionError as exc:
            raise LocalEnvironmentError(f"toolset {path!r}: {exc}") from exc
        return with_tool_faults(
            registry,
            failing=self._fail_tools,
            fail_once=self._fail_once_tools,
            memory=self._fail_once,
        )

    def set_tool_faults(
        self, *, failing: Collection[str] = (), fail_once: Collection[str] = ()
    ) -> None:
        """Change which tools fail, as a redeploy would: every function gets a fresh runtime."""
        self._fail_tools, self._fail_once_tools = tuple(failing), tuple(fail_once)
        for function in self.functions.values():
            function.runtime = self._make_runtime(function.environment)

    def subscribe(self, callback: ProgressCallback) -> None:
        """Call ``callback`` with every later :class:`LocalEvent`."""
        self._callbacks.append(callback)

    # --- the API, through the api function -----------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        query: dict[str, str] | None = None,
        caller: str | None = LOCAL_CALLER,
    ) -> tuple[int, Any]:
        """Invoke the api function with an HTTP API v2 event for a route of the graph, signed
        by ``caller`` (an IAM principal ARN, as API Gateway's IAM authorizer passes it)."""
        route = self.route_of(method, path)
        if route is None:
            return 404, {"message": "Not Found"}  # API Gateway's answer for an unknown route
        response = self.api.invoke(
            http_api_event(
                method, path, route=route, body=body, headers=headers, query=query, caller=caller
            )
        )
        return int(response["statusCode"]), decode_body(response)

    def route_of(self, method: str, path: str) -> str | None:
        """The route key of the graph's HTTP API that ``method path`` matches, if any."""
        return next(
            (key for key, pattern in self._routes if pattern.match(f"{method} {path}")), None
        )

    def watch_agent(self, agent_id: str) -> None:
        """Report ``agent_id``'s status and tool changes as events, as for agents started
        with :meth:`start` (for agents created through :meth:`call`)."""
        self._agents.setdefault(agent_id, {})

    def start(self, goal: str, *, agent: str | None = None) -> str:
        """Start an agent with ``goal`` (``POST /agents``), of the named definition; its id."""
        request = {"goal": goal} if agent is None else {"goal": goal, "agent": agent}
        body = self._expect(202, "POST", "/agents", request)
        agent_id = str(body["agentId"])
        self._agents.setdefault(agent_id, {})
        self._observe()
        return agent_id

    def agent(self, agent_id: str) -> dict[str, Any]:
        """The agent as ``GET /agents/{id}`` shows it (to the local caller)."""
        return dict(self._expect(200, "GET", f"/agents/{agent_id}"))

    def agent_as(self, agent_id: str, caller: str) -> dict[str, Any]:
        """The agent as ``GET /agents/{id}`` shows it to ``caller`` (a principal ARN)."""
        status, body = self.call("GET", f"/agents/{agent_id}", caller=caller)
        if status != 200:
            raise LocalApiError("GET", f"/agents/{agent_id}", status, body)
        return dict(body)

    def resume(self, agent_id: str, instruction: str) -> dict[str, Any]:
        """Give a waiting agent an instruction (``POST /agents/{id}/resume``)."""
        self._agents.setdefault(agent_id, {})
        return dict(
            self._expect(202, "POST", f"/agents/{agent_id}/resume", {"instruction": instruction})
        )

    def cancel(self, agent_id: str) -> dict[str, Any]:
        """Cancel an agent (``POST /agents/{id}/cancel``)."""
        return dict(self._expect(200, "POST", f"/agents/{agent_id}/cancel"))

    def approvals(self, agent_id: str) -> dict[str, Any]:
        """The calls that wait for a person (``GET /agents/{id}/approvals``)."""
        return dict(self._expect(200, "GET", f"/agents/{agent_id}/approvals"))

    def decide(self, agent_id: str, *, approve: bool, reason: str | None = None) -> dict[str, Any]:
        """Approve or reject every pending call (``POST /agents/{id}/approvals``)."""
        pending = [c for c in self.approvals(agent_id)["calls"] if c["decision"] == "PENDING"]
        decisions = [
            {
                "toolUseId": c["toolUseId"],
                "approve": approve,
                **({"reason": reason} if reason else {}),
            }
            for c in pending
        ]
        return dict(
            self._expect(200, "POST", f"/agents/{agent_id}/approvals", {"decisions": decisions})
        )

    def _expect(self, status: int, method: str, path: str, body: Any = None) -> Any:
        got, answer = self.call(method, path, body)
        self._observe()
        if got != status:
            raise LocalApiError(method, path, got, answer)
        return answer

    # --- running ----------------------------------------------------------------------------

    def run_until_idle(self, timeout: float = 60.0) -> None:
        """Deliver queued events and run recoveries until nothing is in flight."""
        deadline = time.monotonic() + timeout
        while True:
            progressed = False
            # The stream first: every commit is announced before the queues are polled again.
            for stream in self._stream_pollers:
                while stream.poll() is not None:
                    progressed = True
                    _check(deadline, timeout)
            for poller in self._pollers:
                while poller.poll() is not None:
                    progressed = True
                    self._observe()
                    _check(deadline, timeout)
            for topic in self.resources.topic_bridges:
                if self._publish_bridged(topic):
                    progressed = True
                    self._observe()
            for bridge in self._bridges:
                for execution in bridge.pump():
                    progressed = True
                    self.executions.append(execution)
                    self._report_execution(execution)
                    self._observe()
                    _check(deadline, timeout)
            if not progressed:
                self._observe()
                return

    def expire_approvals(self) -> int:
        """Move every approval window to its end, as waiting the window out would (local time
        is compressed); how many agents were waiting. The reconciler's next run acts on them."""
        dynamodb = self.clients["dynamodb"]
        waiting = dynamodb.scan(
            TableName=self.resources.table_name,
            FilterExpression="#sk = :meta AND #status = :waiting",
            ExpressionAttributeNames={"#sk": SORT_KEY, "#status": HeaderAttr.STATUS.value},
            ExpressionAttributeValues={
                ":meta": {"S": META_SK},
                ":waiting": {"S": Status.AWAITING_APPROVAL.value},
            },
            ConsistentRead=True,
        )["Items"]
        for item in waiting:
            dynamodb.update_item(
                TableName=self.resources.table_name,
                Key={PARTITION_KEY: item[PARTITION_KEY], SORT_KEY: item[SORT_KEY]},
                UpdateExpression="SET approvalDeadline = :past",
                ExpressionAttributeValues={":past": {"N": "1"}},
            )
        return len(waiting)

    def reconcile(self) -> list[dict[str, Any]]:
        """Run the stack's scheduled functions once (the reconciler), as their schedule would;
        what each returned. Locally an agent counts as stalled at once (time is compressed)."""
        results = []
        for function in self._scheduled:
            results.append(function.invoke(_scheduled_event()))
        self._observe()
        return results

    def notifications(self) -> list[dict[str, Any]]:
        """Every SNS delivery so far: ``topicArn``, ``subject`` and ``message`` (JSON if it is)."""
        self._collect_notifications()
        return list(self._notifications)

    def dlq_messages(self) -> list[dict[str, Any]]:
        """The messages now in the dead-letter queues: ``queue`` and ``body`` (JSON if it is)."""
        sqs = self.clients["sqs"]
        found = []
        for dlq_url in sorted(set(self.resources.dead_letter_queues.values())):
            handles = []
            while True:
                # Hidden while we page through them, then made visible again below.
                messages = sqs.receive_message(
                    QueueUrl=dlq_url,
                    MaxNumberOfMessages=10,
                    VisibilityTimeout=30,
                    WaitTimeSeconds=0,
                ).get("Messages", [])
                if not messages:
                    break
                for message in messages:
                    handles.append(message["ReceiptHandle"])
                    found.append(
                        {
                            "queue": dlq_url.rsplit("/", 1)[-1],
                            "messageId": message["MessageId"],
                            "body": _maybe_json(message["Body"]),
                        }
                    )
            for handle in handles:
                sqs.change_message_visibility(
                    QueueUrl=dlq_url, ReceiptHandle=handle, VisibilityTimeout=0
                )
        return found

    def deliveries(self) -> Counter[str]:
        """How many times each SQS message id was received for a function."""
        total: Counter[str] = Counter()
        for poller in self._pollers:
            total.update(poller.received)
        return total

    def bookings(self, agent_id: str) -> list[dict[str, Any]]:
        """The bookings the flight demo's tool stored for an agent."""
        return bookings(self.clients["dynamodb"], self.resources.table_name, agent_id)

    def model_failure(self) -> str | None:
        """Why the offline model could not answer (a script ran out, an unknown tool), if so."""
        return self.model.failure if isinstance(self.model, OfflineResponder) else None

    def settings(self) -> FunctionSettings:
        """The settings the worker function runs with (its environment, read as it reads it)."""
        worker = next(iter(f for f in self.functions.values() if f is not self.api), self.api)
        return FunctionSettings.from_environment(worker.environment)

    # --- observing --------------------------------------------------------------------------

    def _respond(self, model_id: str, request: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        status, headers, body = self.model(model_id, request)
        with self._lock:  # the fake endpoint serves from its own threads
            self._model_calls.append(
                {"modelId": model_id, "status": status, "error": headers.get("x-amzn-ErrorType")}
            )
        return status, headers, body

    def _emit(
        self,
        kind: EventKind,
        message: str,
        agent_id: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        event = LocalEvent(kind=kind, message=message, agent_id=agent_id, data=data or {})
        self.events.append(event)
        for callback in self._callbacks:
            callback(event)

    def _observe(self) -> None:
        with self._lock:
            calls, self._model_calls = self._model_calls, []
        for call in calls:
            outcome = "ok" if call["status"] == 200 else f"{call['status']} {call['error']}"
            self._emit(EventKind.MODEL, f"Converse {call['modelId']}: {outcome}", data=call)
        for agent_id, before in list(self._agents.items()):
            try:
                view = self.api.runtime.service.view(agent_id)
            except AgentNotFoundError:  # deleted through the API: nothing more to report
                del self._agents[agent_id]
                continue
            self._agents[agent_id] = view
            self._compare(agent_id, before, view)
        self._collect_notifications()
        self._count_dead_letters()

    def _compare(self, agent_id: str, before: dict[str, Any], view: dict[str, Any]) -> None:
        if before.get("status") != view["status"]:
            self._emit(
                EventKind.STATUS,
                f"{agent_id} {before.get('status', '-')} -> {view['status']}",
                agent_id,
                {"status": view["status"]},
            )
        seen = {p["toolUseId"]: p["status"] for p in before.get("plan", [])}
        for entry in view["plan"]:
            if seen.get(entry["toolUseId"]) != entry["status"]:
                self._emit(
                    EventKind.TOOL,
                    f"{entry['toolName']}({json.dumps(entry['parameters'])}) {entry['status']}",
                    agent_id,
                    {"tool": entry["toolName"], "status": entry["status"]},
                )

    def _report_execution(self, execution: Execution) -> None:
        detail = execution.event.get("detail", {})
        agent_id = detail.get("agentId")
        self._emit(
            EventKind.RECOVERY,
            f"{execution.name}: {detail.get('errorType')} at step {detail.get('step')} "
            f"-> {execution.status}",
            agent_id,
            {"execution": execution.arn, "status": execution.status},
        )

    def _publish_bridged(self, topic: TopicBridge) -> int:
        """Publish what a rule delivered to a topic's bridge queue; how many messages."""
        sqs, sns = self.clients["sqs"], self.clients["sns"]
        published = 0
        while messages := sqs.receive_message(
            QueueUrl=topic.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        ).get("Messages", []):
            for message in messages:
                body = message["Body"]
                if topic.transform is not None:
                    body = transform_input(*topic.transform, json.loads(body))
                sns.publish(TopicArn=topic.topic_arn, Message=body)
                sqs.delete_message(QueueUrl=topic.queue_url, ReceiptHandle=message["ReceiptHandle"])
                published += 1
        return published

    def _collect_notifications(self) -> None:
        sqs = self.clients["sqs"]
        for topic_arn, url in self.resources.recorders.items():
            while messages := sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", []):
                for message in messages:
                    envelope = json.loads(message["Body"])
                    notification = {
                        "topicArn": topic_arn,
                        "subject": envelope.get("Subject"),
                        "message": _maybe_json(envelope.get("Message", "")),
                    }
                    self._notifications.append(notification)
                    content = notification["message"]
                    agent_id = content.get("agentId") if isinstance(content, dict) else None
                    self._emit(
                        EventKind.NOTIFICATION,
                        f"{topic_arn.rsplit(':', 1)[-1]}: {notification['subject']}",
                        agent_id,
                        notification,
                    )
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    def _count_dead_letters(self) -> None:
        total = 0
        for dlq_url in set(self.resources.dead_letter_queues.values()):
            attributes = self.clients["sqs"].get_queue_attributes(
                QueueUrl=dlq_url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )["Attributes"]
            total += int(attributes["ApproximateNumberOfMessages"])
            total += int(attributes["ApproximateNumberOfMessagesNotVisible"])
        if total > self._dead_letter_count:
            self._emit(
                EventKind.DEAD_LETTER,
                f"{total} message(s) in dead-letter queues",
                data={"count": total},
            )
        self._dead_letter_count = total


def _scheduled_event() -> dict[str, Any]:
    """The event EventBridge hands a function on a schedule."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "detail": {},
    }


def _local_time_scale(function: Resource) -> Resource:
    """The function as the local environment runs it: the reconciler sees stalls at once."""
    variables = (function.get("inputs", {}).get("environment") or {}).get("variables") or {}
    raw = variables.get(Env.RECONCILER.value)
    if not isinstance(raw, str):
        return function
    settings = {**json.loads(raw), "staleAfterSeconds": LOCAL_STALE_AFTER_SECONDS}
    scaled = copy.deepcopy(dict(function))
    scaled["inputs"]["environment"]["variables"][Env.RECONCILER.value] = json.dumps(settings)
    return scaled


def _route_pattern(route_key: str) -> tuple[str, re.Pattern[str]]:
    """A route key (``GET /agents/{id}``) and the regex of the requests it matches."""
    pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(route_key))
    return route_key, re.compile(f"^{pattern}$")


def _swap_log_stream(stream: Any) -> Any:
    """Point the runtime's Powertools logger at ``stream``; the stream it had."""
    handler = runtime_logger.registered_handler
    if isinstance(handler, logging.StreamHandler):
        return handler.setStream(stream)
    return None


def _maybe_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _check(deadline: float, timeout: float) -> None:
    if time.monotonic() > deadline:
        raise TimeoutError(f"the local environment was still busy after {timeout} s")
