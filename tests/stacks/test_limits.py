"""The limits check: settings on different resources agree, on the shipped graphs and any other.

Acceptance of issue #12 (item 3): the check fails on a stack copy whose batch cannot finish
inside the function timeout, and on one whose key policy lacks a service grant.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from support.project import copy_project
from typer.testing import CliRunner

from agentry_platform.lib.limits import (
    StepBudget,
    api_concurrency_needed,
    environment_bytes,
    worst_model_call_seconds,
)
from agentry_runtime.model import ModelSettings
from agentry_stacks.cli import app
from agentry_stacks.offline.limits import CHECKS, check_limits

Graph = dict[str, Any]


def _find(graph: Graph, name: str) -> dict[str, Any]:
    return next(r for r in graph["resources"] if r["name"] == name)


def _edit_policy(resource: dict[str, Any], key: str, edit: Callable[[list[Any]], None]) -> None:
    document = json.loads(resource["inputs"][key])
    edit(document["Statement"])
    resource["inputs"][key] = json.dumps(document)


def _messages(graph: Graph, check: str) -> list[str]:
    return [f"{f.resource}: {f.message}" for f in check_limits(graph).findings if f.check == check]


# --- the formulas ------------------------------------------------------------------------------


def test_worst_model_call_is_the_workers_own_bound() -> None:
    # The worker: 120 s read, 4 attempts, 5 s connect: 4 x 125 s + 3 backoffs of 20 s
    call = worst_model_call_seconds(read_timeout=120, connect_timeout=5, max_attempts=4)
    assert call == 560
    # the very bound a chaining worker uses to decide whether a next step fits
    settings = ModelSettings(
        model_id="m", read_timeout_seconds=120, connect_timeout_seconds=5, max_attempts=4
    )
    assert call == settings.worst_case_seconds
    budget = StepBudget(model_call_seconds=call, tool_timeout_seconds=30, batch_size=5)
    # A batch of 5 plan steps (summary + plan each) takes far longer than a 120 s timeout
    assert budget.batch_seconds == 5 * (2 * 560 + 5)


def test_api_concurrency_is_the_burst_or_rate_times_timeout() -> None:
    assert api_concurrency_needed(burst=200, rate=100, timeout_seconds=10) == 1000
    assert api_concurrency_needed(burst=100, rate=20, timeout_seconds=5) == 100


def test_environment_size_counts_the_json_object() -> None:
    assert environment_bytes({"A": "b"}) == len('{"A":"b"}')


# --- the shipped stacks ------------------------------------------------------------------------


def test_shipped_stacks_pass_and_every_check_looks_at_something(
    graphs: dict[str, Graph],
) -> None:
    for stack, graph in graphs.items():
        report = check_limits(graph)
        assert report.findings == [], stack
        assert set(report.examined) == set(CHECKS)
        assert all(count >= 1 for count in report.examined.values()), (stack, report.examined)


def test_make_check_runs_the_limits_of_every_stack(repo_root: Path) -> None:
    makefile = (repo_root / "Makefile").read_text()
    assert "$(BIN)/agentry limits $$stack" in makefile
    assert "wildcard Pulumi.*.yaml" in makefile


# --- a batch that cannot finish ----------------------------------------------------------------


def test_stack_copy_whose_batch_cannot_finish_fails(
    dev_values: dict[str, Any], tmp_path: Path
) -> None:
    # GIVEN a copy of dev with the worker: batches of 5, 120 s read timeout, 4 attempts
    values = copy.deepcopy(dev_values)
    values["agentry:worker"].update({"timeoutSeconds": 120, "batchSize": 5})
    values["agentry:modelClient"] = {"readTimeoutSeconds": 120, "maxAttempts": 4}
    project = copy_project(tmp_path)
    (project / "Pulumi.copy.yaml").write_text(yaml.safe_dump({"config": values}))
    # WHEN the limits are checked THEN exit 1, naming the worker and the numbers
    result = CliRunner().invoke(app, ["limits", "copy", "--project-dir", str(project)])
    assert result.exit_code == 1, result.output
    assert "worker-batch: worker-function: a batch of 5 step record(s)" in result.stdout
    assert "more than the function timeout 120 s" in result.stdout


def test_visibility_timeout_below_six_function_timeouts(graphs: dict[str, Graph]) -> None:
    graph = copy.deepcopy(graphs["prod"])
    _find(graph, "steps-queue")["inputs"]["visibilityTimeoutSeconds"] = 600
    [message] = _messages(graph, "worker-batch")
    assert message.startswith("steps-queue: visibility timeout 600 s is less than 6 x")


def test_worker_without_model_client_settings(graphs: dict[str, Graph]) -> None:
    graph = copy.deepcopy(graphs["dev"])
    del _find(graph, "worker-function")["inputs"]["environment"]["variables"][
        "AGENTRY_MODEL_MAX_ATTEMPTS"
    ]
    [message] = _messages(graph, "worker-batch")
    assert "model calls are unbounded" in message


# --- api concurrency ---------------------------------------------------------------------------


def test_api_reserved_below_its_throttle(graphs: dict[str, Graph]) -> None:
    # GIVEN prod's api as it shipped before: 20 reserved, the stage admitting a 200 burst
    graph = copy.deepcopy(graphs["prod"])
    _find(graph, "api-function")["inputs"]["reservedConcurrentExecutions"] = 20
    _find(graph, "http-stage")["inputs"]["defaultRouteSettings"].update(
        {"throttlingBurstLimit": 200, "throttlingRateLimit": 100}
    )
    [message] = _messages(graph, "api-concurrency")
    assert message.startswith("api-function: reserves 20 concurrent executions")
    assert "5xx instead of 429" in message


# --- environment and state machines ------------------------------------------------------------


def test_environment_over_4_kb(graphs: dict[str, Graph]) -> None:
    graph = copy.deepcopy(graphs["dev"])
    _find(graph, "api-function")["inputs"]["environment"]["variables"]["BIG"] = "x" * 4096
    [message] = _messages(graph, "environment-size")
    assert message.startswith("api-function: its environment is")


def test_statelint_finds_a_broken_definition(graphs: dict[str, Graph]) -> None:
    graph = copy.deepcopy(graphs["dev"])
    machine = _find(graph, "recovery-state-machine")
    definition = json.loads(machine["inputs"]["definition"])
    definition["StartAt"] = "NoSuchState"
    machine["inputs"]["definition"] = json.dumps(definition)
    assert _messages(graph, "statelint")


# --- key use -----------------------------------------------------------------------------------


def _drop_service(service: str) -> Callable[[list[Any]], None]:
    def edit(statements: list[Any]) -> None:
        statements[:] = [s for s in statements if s.get("Principal") != {"Service": service}]

    return edit


def test_stack_copy_whose_key_policy_lacks_a_service_grant_fails(
    graphs: dict[str, Graph], tmp_path: Path, repo_root: Path
) -> None:
    # GIVEN prod's graph with the key policy's EventBridge statement removed
    graph = copy.deepcopy(graphs["prod"])
    _edit_policy(_find(graph, "key-key"), "policy", _drop_service("events.amazonaws.com"))
    graph_file = tmp_path / "graph.json"
    graph_file.write_text(json.dumps(graph))
    # WHEN checked THEN exit 1, naming the key, the service and the queues it delivers to
    result = CliRunner().invoke(
        app, ["limits", "prod", "--graph", str(graph_file), "--project-dir", str(repo_root)]
    )
    assert result.exit_code == 1, result.output
    assert "key-use: key-key: its policy does not let events.amazonaws.com" in result.stdout
    assert "steps-queue (eventbridge-to-sqs)" in result.stdout


def test_undocumented_condition_on_the_eventbridge_grant(graphs: dict[str, Graph]) -> None:
    # GIVEN the condition prod used to put on EventBridge's use of the key (aws:SourceAccount)
    graph = copy.deepcopy(graphs["prod"])

    def add_condition(statements: list[Any]) -> None:
        for statement in statements:
            if statement.get("Principal") == {"Service": "events.amazonaws.com"}:
                statement["Condition"] = {"StringEquals": {"aws:SourceAccount": "123456789012"}}

    _edit_policy(_find(graph, "key-key"), "policy", add_condition)
    messages = _messages(graph, "key-use")
    # THEN the grant no longer works as documented, and the condition key is named
    assert any("does not let events.amazonaws.com kms:GenerateDataKey" in m for m in messages)
    assert any("['aws:SourceAccount'], which AWS does not document" in m for m in messages)


def test_service_grant_nothing_uses_is_reported(graphs: dict[str, Graph]) -> None:
    graph = copy.deepcopy(graphs["dev"])

    def add_events(statements: list[Any]) -> None:
        statements.append(
            {
                "Effect": "Allow",
                "Principal": {"Service": "states.amazonaws.com"},
                "Action": ["kms:Decrypt"],
                "Resource": "*",
            }
        )

    _edit_policy(_find(graph, "topics-key-key"), "policy", add_events)
    [message] = _messages(graph, "key-use")
    assert "nothing in the stack uses it through states.amazonaws.com" in message


def test_extra_action_for_a_service_is_reported(graphs: dict[str, Graph]) -> None:
    graph = copy.deepcopy(graphs["prod"])

    def widen(statements: list[Any]) -> None:
        for statement in statements:
            if statement.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}:
                statement["Action"] = [*statement["Action"], "kms:CreateGrant"]

    _edit_policy(_find(graph, "key-key"), "policy", widen)
    [message] = _messages(graph, "key-use")
    assert "grants cloudwatch.amazonaws.com ['kms:CreateGrant'] beyond" in message


def test_alarm_topic_on_the_aws_managed_key_is_reported(graphs: dict[str, Graph]) -> None:
    # GIVEN dev's alarm topic back on alias/aws/sns, as it shipped before
    graph = copy.deepcopy(graphs["dev"])
    _find(graph, "alarms-topic-topic")["inputs"]["kmsMasterKeyId"] = "alias/aws/sns"
    # AND its human topic, which the approval rule delivers to
    _find(graph, "humans-topic")["inputs"]["kmsMasterKeyId"] = "alias/aws/sns"
    messages = _messages(graph, "key-use")
    assert any(
        m.startswith("alarms-topic-topic: CloudWatch alarms publish to it") for m in messages
    )
    assert any(m.startswith("humans-topic: EventBridge rules publish to it") for m in messages)


def test_role_publishing_to_an_encrypted_topic_needs_the_key(graphs: dict[str, Graph]) -> None:
    # GIVEN prod's recovery role without its kms statement
    graph = copy.deepcopy(graphs["prod"])

    def drop_kms(statements: list[Any]) -> None:
        statements[:] = [s for s in statements if s.get("Sid") != "UseDataKey"]

    _edit_policy(_find(graph, "recovery-policy"), "policy", drop_kms)
    messages = _messages(graph, "key-use")
    assert any(
        m.startswith("agentry-prod-recovery-role: publishes to an encrypted topic")
        for m in messages
    )


def test_an_encrypted_bus_needs_its_documented_grant(graphs: dict[str, Graph]) -> None:
    # GIVEN prod's bus (and archive) encrypted with the stack's key, the key policy unchanged
    graph = copy.deepcopy(graphs["prod"])
    key_arn = _find(graph, "key-key")["outputs"]["arn"]
    _find(graph, "events-bus")["inputs"]["kmsKeyIdentifier"] = key_arn
    messages = _messages(graph, "key-use")
    # THEN EventBridge's bus path (DescribeKey among its calls) is missing from the policy
    assert any("does not let events.amazonaws.com kms:DescribeKey" in m for m in messages)
    assert any("(eventbridge-bus)" in m for m in messages)


def test_encrypted_state_machine_data_needs_the_role_to_use_the_key(
    graphs: dict[str, Graph],
) -> None:
    # GIVEN prod's recovery state machine with its data encrypted by the stack's key
    graph = copy.deepcopy(graphs["prod"])
    key_arn = _find(graph, "key-key")["outputs"]["arn"]
    _find(graph, "recovery-state-machine")["inputs"]["encryptionConfiguration"] = {
        "kmsKeyId": key_arn,
        "type": "CUSTOMER_MANAGED_KMS_KEY",
    }
    # THEN its role, which may use the key, passes; without the statement it is named
    assert _messages(graph, "key-use") == []

    def drop_kms(statements: list[Any]) -> None:
        statements[:] = [s for s in statements if s.get("Sid") != "UseDataKey"]

    _edit_policy(_find(graph, "recovery-policy"), "policy", drop_kms)
    assert any(
        "runs a state machine whose data is encrypted" in m for m in _messages(graph, "key-use")
    )
