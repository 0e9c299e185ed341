"""The real program, planned for dev and prod: what each environment must contain."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from agentry_platform.lib.model_catalog import ProfileKind
from agentry_runtime import __version__ as runtime_version
from agentry_runtime.contract import Env
from agentry_stacks.cli import app
from agentry_stacks.deploy.config import EnvironmentConfig, load_stack_config
from agentry_stacks.offline.plan import MOCK_ACCOUNT_ID
from agentry_stacks.offline.views import event_flow, mermaid

#: Every kind of resource an environment must declare.
REQUIRED_TYPES = {
    "aws:cloudwatch/eventBus:EventBus",
    "aws:cloudwatch/eventArchive:EventArchive",
    "aws:cloudwatch/eventRule:EventRule",
    "aws:cloudwatch/eventTarget:EventTarget",
    "aws:sqs/queue:Queue",
    "aws:dynamodb/table:Table",
    "aws:lambda/function:Function",
    "aws:lambda/eventSourceMapping:EventSourceMapping",
    "aws:cloudwatch/logGroup:LogGroup",
    "aws:iam/role:Role",
    "aws:iam/rolePolicy:RolePolicy",
    "aws:sfn/stateMachine:StateMachine",
    "aws:sns/topic:Topic",
    "aws:apigatewayv2/api:Api",
    "aws:apigatewayv2/stage:Stage",
    "aws:apigatewayv2/route:Route",
    "aws:cloudwatch/metricAlarm:MetricAlarm",
}


def _config(graph: dict[str, Any], repo_root: Path) -> EnvironmentConfig:
    return load_stack_config(graph["stack"], project_dir=repo_root)


def _of_type(graph: dict[str, Any], typ: str) -> list[dict[str, Any]]:
    return [resource for resource in graph["resources"] if resource["type"] == typ]


def _statements(graph: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for policy in _of_type(graph, "aws:iam/rolePolicy:RolePolicy"):
        document = json.loads(policy["inputs"]["policy"])
        statements = document["Statement"]
        for statement in statements if isinstance(statements, list) else [statements]:
            found.append((policy["inputs"]["role"], statement))
    return found


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def test_every_resource_kind_exists_under_a_component(graph: dict[str, Any]) -> None:
    # GIVEN the planned stack
    by_urn = {resource["urn"]: resource for resource in graph["resources"]}
    # THEN every required kind is declared
    assert {resource["type"] for resource in graph["resources"]} >= REQUIRED_TYPES
    # AND every AWS resource is parented to an agentry: component
    orphans = [
        resource["urn"]
        for resource in graph["resources"]
        if resource["type"].startswith("aws:")
        and not (resource["parent"] and by_urn[resource["parent"]]["type"].startswith("agentry:"))
    ]
    assert orphans == []


def test_physical_names_and_tags(graph: dict[str, Any], repo_root: Path) -> None:
    # GIVEN the stack's config
    config = _config(graph, repo_root)
    expected_tags = {"Project": "agentry", "Environment": config.stack, **config.tags}
    for typ in ("aws:sqs/queue:Queue", "aws:lambda/function:Function", "aws:sns/topic:Topic"):
        for resource in _of_type(graph, typ):
            # THEN named resources carry an explicit agentry-<stack>- name and the stack's tags
            assert resource["inputs"]["name"].startswith(f"agentry-{config.stack}-"), resource
            assert expected_tags.items() <= resource["inputs"]["tags"].items(), resource["urn"]


def _expected_bedrock(config: EnvironmentConfig) -> set[tuple[str, str, str]]:
    """(action, resource, condition) the config allows, in the shape AWS documents per kind of
    profile, computed from the config alone."""
    invoke, region = "bedrock:InvokeModel", config.region
    allowed = {
        (invoke, f"arn:aws:bedrock:{region}::foundation-model/{model}", "")
        for model in config.models
    }
    for profile in config.resolved_profiles():
        profile_arn = (
            profile.id
            if profile.kind == ProfileKind.APPLICATION
            else f"arn:aws:bedrock:{region}:{MOCK_ACCOUNT_ID}:inference-profile/{profile.id}"
        )
        via = {"bedrock:InferenceProfileArn": profile_arn}
        if profile.kind == ProfileKind.GLOBAL:
            # Bedrock user guide, global cross-Region inference: three documented grants.
            allowed |= {
                (invoke, profile_arn, _equals({"aws:RequestedRegion": region})),
                (
                    invoke,
                    f"arn:aws:bedrock:{region}::foundation-model/{profile.model}",
                    _equals({"aws:RequestedRegion": region, **via}),
                ),
                (
                    invoke,
                    f"arn:aws:bedrock:::foundation-model/{profile.model}",
                    _equals({"aws:RequestedRegion": "unspecified", **via}),
                ),
            }
            continue
        allowed.add((invoke, profile_arn, ""))
        allowed |= {
            (invoke, f"arn:aws:bedrock:{dest}::foundation-model/{profile.model}", _equals(via))
            for dest in profile.regions
        }
    return allowed


def _equals(values: dict[str, str]) -> str:
    return json.dumps({"StringEquals": values}, sort_keys=True)


def test_worker_bedrock_access_is_exactly_the_config(
    graph: dict[str, Any], repo_root: Path
) -> None:
    # GIVEN the worker role's statements that mention Bedrock
    config = _config(graph, repo_root)
    worker_role = f"agentry-{config.stack}-worker-role"
    granted = {
        (
            action,
            resource,
            json.dumps(statement.get("Condition"), sort_keys=True)
            if statement.get("Condition")
            else "",
        )
        for role, statement in _statements(graph)
        if role == worker_role
        for action in _as_list(statement["Action"])
        if action.lower().startswith("bedrock:")
        for resource in _as_list(statement["Resource"])
    }
    # THEN they are exactly the models, profiles and destination regions the config allows
    assert granted == _expected_bedrock(config)
    # AND no other role may call Bedrock
    others = [
        role
        for role, statement in _statements(graph)
        if role != worker_role
        and any(a.lower().startswith("bedrock:") for a in _as_list(statement.get("Action")))
    ]
    assert others == []


def test_no_statement_is_a_wildcard_grant(graph: dict[str, Any]) -> None:
    # GIVEN every IAM statement of every role
    for role, statement in _statements(graph):
        actions = [action.lower() for action in _as_list(statement.get("Action"))]
        # THEN none uses NotAction, grants "*", or any bedrock wildcard
        assert "NotAction" not in statement, role
        assert "NotResource" not in statement, role
        assert "*" not in actions, role
        assert not [a for a in actions if a.startswith("bedrock:") and "*" in a], role


def test_table_protection_follows_config(graph: dict[str, Any], repo_root: Path) -> None:
    # GIVEN the stack's config and its table
    config = _config(graph, repo_root)
    [table] = [t for t in _of_type(graph, "aws:dynamodb/table:Table") if t["name"] == "table-table"]
    inputs = table["inputs"]
    # THEN PITR and deletion protection are what the config says (both on in prod)
    assert bool(inputs.get("pointInTimeRecovery", {}).get("enabled")) is (
        config.point_in_time_recovery
    )
    assert bool(inputs.get("deletionProtectionEnabled")) is config.deletion_protection
    assert inputs["ttl"] == {"enabled": True, "attributeName": "ttl"}
    if graph["stack"] == "prod":
        assert inputs["pointInTimeRecovery"]["enabled"]
        assert inputs["deletionProtectionEnabled"]
        assert inputs["serverSideEncryption"]["kmsKeyArn"].startswith("arn:aws:kms:")


def test_every_queue_but_a_dlq_has_a_redrive_policy(graph: dict[str, Any], repo_root: Path) -> None:
    # GIVEN the queues and the ARNs other queues and targets dead-letter into
    config = _config(graph, repo_root)
    queues = _of_type(graph, "aws:sqs/queue:Queue")
    dead_letter_arns = (
        {
            json.loads(q["inputs"]["redrivePolicy"])["deadLetterTargetArn"]
            for q in queues
            if q["inputs"].get("redrivePolicy")
        }
        | {
            t["inputs"]["deadLetterConfig"]["arn"]
            for t in _of_type(graph, "aws:cloudwatch/eventTarget:EventTarget")
            if t["inputs"].get("deadLetterConfig")
        }
        | {
            # a stream mapping's on-failure destination is the DLQ of the records it gives up on
            m["inputs"]["destinationConfig"]["onFailure"]["destinationArn"]
            for m in _of_type(graph, "aws:lambda/eventSourceMapping:EventSourceMapping")
            if m["inputs"].get("destinationConfig")
        }
    )
    # THEN every queue is a DLQ or redrives into one, after the configured receive count
    for queue in queues:
        if queue["outputs"]["arn"] in dead_letter_arns:
            continue
        policy = json.loads(queue["inputs"]["redrivePolicy"])
        assert policy["deadLetterTargetArn"] in {q["outputs"]["arn"] for q in queues}
        assert policy["maxReceiveCount"] == config.max_receive_count


def test_functions_are_traced_logged_and_stamped(graph: dict[str, Any], repo_root: Path) -> None:
    # GIVEN the functions and the log groups of the plan
    config = _config(graph, repo_root)
    retention = {
        group["inputs"]["name"]: group["inputs"].get("retentionInDays")
        for group in _of_type(graph, "aws:cloudwatch/logGroup:LogGroup")
    }
    functions = _of_type(graph, "aws:lambda/function:Function")
    assert len(functions) >= 2
    for function in functions:
        inputs = function["inputs"]
        version = inputs["environment"]["variables"][Env.RUNTIME_VERSION.value]
        # THEN tracing is active, on the configured runtime and architecture
        assert inputs["tracingConfig"] == {"mode": "Active"}
        assert inputs["runtime"] == config.lambda_runtime
        assert inputs["architectures"] == [config.lambda_architecture]
        # AND its log group exists with the configured retention
        log_group = (inputs.get("loggingConfig") or {}).get("logGroup") or (
            f"/aws/lambda/{inputs['name']}"
        )
        assert retention.get(log_group) == config.log_retention_days
        # AND the runtime version (the bundled package's own) is stamped as tag, environment
        # variable and description
        assert version == runtime_version
        assert inputs["tags"]["RuntimeVersion"] == version
        assert version in inputs["description"]


def test_event_flow_is_derived_from_the_graph(graph: dict[str, Any]) -> None:
    # GIVEN the event flow read from the plan
    nodes, edges = event_flow(graph)
    label = nodes
    stack = graph["stack"]
    pairs = {(label[e.source], label[e.target]) for e in edges}
    # THEN it runs API -> api function -> table -> announcer -> bus -> queue -> worker ->
    # Bedrock and table, and bus -> recovery state machine -> human topic
    assert (f"agentry-{stack}-api", f"agentry-{stack}-api") in pairs  # the HTTP API -> function
    assert (f"agentry-{stack}-api", f"agentry-{stack}-agents") in pairs
    assert (f"agentry-{stack}-agents", f"agentry-{stack}-announcer") in pairs
    assert (f"agentry-{stack}-announcer", f"agentry-{stack}-bus") in pairs
    assert (f"agentry-{stack}-worker", f"agentry-{stack}-agents") in pairs
    # AND only the announcer publishes
    assert {target for source, target in pairs if target == f"agentry-{stack}-bus"}
    assert {s for s, t in pairs if t == f"agentry-{stack}-bus"} == {f"agentry-{stack}-announcer"}
    assert (f"agentry-{stack}-bus", f"agentry-{stack}-steps") in pairs
    assert (f"agentry-{stack}-steps", f"agentry-{stack}-worker") in pairs
    assert (f"agentry-{stack}-worker", "Amazon Bedrock") in pairs
    assert (f"agentry-{stack}-bus", f"agentry-{stack}-recovery") in pairs
    assert (f"agentry-{stack}-recovery", f"agentry-{stack}-needs-human") in pairs
    assert mermaid(graph).startswith("flowchart LR\n")


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_plan_json_prints_the_document(stack: str, graphs: dict[str, dict[str, Any]]) -> None:
    # WHEN `agentry plan STACK --json` runs
    result = CliRunner().invoke(app, ["plan", stack, "--json"])
    # THEN it exits 0 with exactly the graph document
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document == graphs[stack]
    assert {"type", "name", "urn", "parent", "dependencies", "inputs", "outputs"} <= set(
        document["resources"][0]
    )


def test_plan_table_and_mermaid() -> None:
    # WHEN the table and the diagram are printed for prod
    runner = CliRunner()
    table = runner.invoke(app, ["plan", "prod"], env={"COLUMNS": "250"})
    diagram = runner.invoke(app, ["plan", "prod", "--mermaid"])
    both = runner.invoke(app, ["plan", "prod", "--mermaid", "--json"])
    # THEN both succeed and show key settings / the flow; combining the flags is a usage error
    assert table.exit_code == 0
    assert "tracing Active" in table.stdout
    assert "PITR on" in table.stdout
    assert diagram.exit_code == 0
    assert "Amazon Bedrock" in diagram.stdout
    assert both.exit_code == 2
