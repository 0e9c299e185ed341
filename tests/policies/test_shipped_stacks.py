"""The shipped stacks pass, and mutations of the prod graph are caught by rule and resource."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mutations import (
    MUTATIONS,
    PREVIEW_MUTATIONS,
    Mutation,
    find,
    mutated,
    unknown_then_violation,
)
from typer.testing import CliRunner

from agentry_policies.documents import Decision, Request, evaluate, parse_document
from agentry_runtime.contract import EVENT_SOURCE
from agentry_stacks.cli import app
from agentry_stacks.offline.check import CheckReport, load_pack_config, pack_config_path, run_check

_ROOT = Path(__file__).resolve().parents[2]
_ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
_OUTSIDER = "meta.llama3-70b-instruct-v1:0"


def _check(stack: str, graph: dict[str, Any]) -> CheckReport:
    return run_check(graph, load_pack_config(pack_config_path(stack, _ROOT)))


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_shipped_stack_has_no_mandatory_violation(
    graphs: dict[str, dict[str, Any]], stack: str
) -> None:
    report = _check(stack, graphs[stack])
    assert report.mandatory == 0, [v.message for v in report.violations]


# --- mutations of the prod graph ------------------------------------------------------------


def _worker_policy(graph: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The worker role's policy resource and its parsed document."""
    (resource,) = [
        r
        for r in graph["resources"]
        if r["type"] == _ROLE_POLICY and str(r["inputs"].get("role", "")).endswith("worker-role")
    ]
    return resource, json.loads(resource["inputs"]["policy"])


def _edit_worker_policy(graph: dict[str, Any], edit: Callable[[list[dict[str, Any]]], None]) -> str:
    resource, document = _worker_policy(graph)
    edit(document["Statement"])
    resource["inputs"]["policy"] = json.dumps(document)
    return str(resource["name"])


def _plain_bedrock_grant(statements: list[dict[str, Any]]) -> dict[str, Any]:
    """The worker's unconditioned Bedrock grant (the inference profile's own ARN)."""
    return next(
        s for s in statements if "bedrock:InvokeModel" in s["Action"] and "Condition" not in s
    )


def _add_bedrock_star(statements: list[dict[str, Any]]) -> None:
    statements.append({"Effect": "Allow", "Action": "bedrock:*", "Resource": "*"})


def _widen_bedrock_resource(statements: list[dict[str, Any]]) -> None:
    _plain_bedrock_grant(statements)["Resource"] = "*"


def _add_outside_model(statements: list[dict[str, Any]]) -> None:
    statements.append(
        {
            "Effect": "Allow",
            "Action": "bedrock:InvokeModel",
            "Resource": f"arn:aws:bedrock:us-east-1::foundation-model/{_OUTSIDER}",
        }
    )


def _drop_profile_models(statements: list[dict[str, Any]]) -> None:
    statements[:] = [s for s in statements if "Condition" not in s]


@pytest.mark.parametrize(
    ("mutation", "rules"),
    [
        (_add_bedrock_star, {"iam-no-service-wildcard", "bedrock-invoke-scoped"}),
        (_widen_bedrock_resource, {"bedrock-invoke-scoped", "iam-no-wildcard-resource"}),
        (_add_outside_model, {"bedrock-model-allowlist"}),
        (_drop_profile_models, {"bedrock-inference-profile-grants"}),
    ],
    ids=["bedrock-star", "resource-star", "model-outside-allowlist", "profile-without-models"],
)
def test_worker_policy_mutation_is_caught(
    graphs: dict[str, dict[str, Any]],
    mutation: Callable[[list[dict[str, Any]]], None],
    rules: set[str],
) -> None:
    # GIVEN the prod graph with the worker's role policy mutated
    graph = copy.deepcopy(graphs["prod"])
    name = _edit_worker_policy(graph, mutation)
    # WHEN checked THEN each expected rule reports the worker policy as mandatory
    report = _check("prod", graph)
    caught = {
        v.policy for v in report.violations if v.resource == name and v.enforcement == "mandatory"
    }
    assert rules <= caught, [v.message for v in report.violations]


def _resource(
    graph: dict[str, Any], type_: str, predicate: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    return next(r for r in graph["resources"] if r["type"] == type_ and predicate(r))


def test_pitr_turned_off_is_caught(graphs: dict[str, dict[str, Any]]) -> None:
    graph = copy.deepcopy(graphs["prod"])
    table = _resource(graph, "aws:dynamodb/table:Table", lambda r: True)
    table["inputs"]["pointInTimeRecovery"] = {"enabled": False}
    report = _check("prod", graph)
    assert ("dynamodb-pitr", table["name"], "mandatory") in {
        (v.policy, v.resource, v.enforcement) for v in report.violations
    }


def test_queue_redrive_removed_is_caught(graphs: dict[str, dict[str, Any]]) -> None:
    graph = copy.deepcopy(graphs["prod"])
    queue = _resource(graph, "aws:sqs/queue:Queue", lambda r: "redrivePolicy" in r["inputs"])
    del queue["inputs"]["redrivePolicy"]
    report = _check("prod", graph)
    assert ("sqs-redrive", queue["name"], "mandatory") in {
        (v.policy, v.resource, v.enforcement) for v in report.violations
    }


# --- every gap of #13 and #11, through `agentry check prod --graph` ---------------------------


def _cli_check(tmp_path: Path, graph: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    path = tmp_path / "graph.json"
    path.write_text(json.dumps(graph), encoding="utf-8")
    args = ["check", graph["stack"], "--graph", str(path), "--json", "--project-dir", str(_ROOT)]
    result = CliRunner().invoke(app, args)
    return result.exit_code, json.loads(result.stdout)


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.id)
def test_mutation_of_prod_fails_agentry_check(
    graphs: dict[str, dict[str, Any]], mutation: Mutation, tmp_path: Path
) -> None:
    # GIVEN the prod graph with one realistic misconfiguration
    graph = mutated(graphs["prod"], mutation)
    # WHEN `agentry check prod --graph` runs THEN it exits 1, naming the rule and the resource
    exit_code, report = _cli_check(tmp_path, graph)
    assert exit_code == 1, report
    found = {(v["policy"], v["resource"], v["enforcement"]) for v in report["violations"]}
    assert (mutation.policy, mutation.resource, "mandatory") in found, found


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_first_preview_passes_with_advisory_notes_only(
    preview_graphs: dict[str, dict[str, Any]], stack: str
) -> None:
    # GIVEN a stack's first preview: ARNs and the documents built from them are unknown
    report = _check(stack, preview_graphs[stack])
    # THEN nothing blocks, and what cannot be judged yet is an advisory note naming the input
    assert report.mandatory == 0, [
        v.message for v in report.violations if v.enforcement == "mandatory"
    ]
    notes = [v for v in report.violations if "during preview" in v.message]
    assert notes
    assert all(v.enforcement == "advisory" for v in notes)


@pytest.mark.parametrize("mutation", PREVIEW_MUTATIONS, ids=lambda m: m.id)
def test_mandatory_rules_that_can_decide_block_a_first_preview(
    preview_graphs: dict[str, dict[str, Any]], mutation: Mutation
) -> None:
    # GIVEN the first-preview prod graph with a misconfiguration that does not depend on an ARN
    report = _check("prod", mutated(preview_graphs["prod"], mutation))
    # THEN the rule still decides, and blocks
    found = {(v.policy, v.resource, v.enforcement) for v in report.violations}
    assert (mutation.policy, mutation.resource, "mandatory") in found, found


def test_unknown_value_of_one_resource_does_not_downgrade_others(
    graphs: dict[str, dict[str, Any]],
) -> None:
    # GIVEN the api policy is not known yet (it is checked first) and the worker's grants bedrock:*
    graph = unknown_then_violation(graphs["prod"])
    name = "worker-policy"
    # WHEN checked
    report = _check("prod", graph)
    levels = {(v.policy, v.resource): v.enforcement for v in report.violations}
    # THEN the api policy gets an advisory note, and the worker's violation stays mandatory
    assert levels[("bedrock-invoke-scoped", "api-policy")] == "advisory"
    assert levels[("bedrock-invoke-scoped", name)] == "mandatory"
    assert report.mandatory >= 2  # iam-no-service-wildcard too


def test_forged_agent_error_by_an_outsider_is_refused_by_the_bus_policy(
    graphs: dict[str, dict[str, Any]],
) -> None:
    # GIVEN the planned prod bus policy, read by the pack's own document evaluator
    graph = graphs["prod"]
    policy = find(graph, "events-policy")["inputs"]["policy"]
    document = parse_document(policy, "events-policy.policy", "resource")
    bus = find(graph, "events-bus")["outputs"]["arn"]
    account = bus.split(":")[4]
    forged = {"events:source": EVENT_SOURCE, "events:detail-type": "Agent Error"}

    def decide(principal: str) -> Decision:
        return evaluate([document], Request(principal, "events:PutEvents", bus, forged))

    # WHEN a role of the same account that the stack does not declare puts an Agent Error
    # THEN the bus policy refuses it explicitly (an identity policy cannot override that)
    assert decide(f"arn:aws:iam::{account}:role/ops-automation") is Decision.EXPLICIT_DENY
    # AND the platform's one publisher, the announcer, is not refused
    assert decide(find(graph, "announcer-role")["outputs"]["arn"]) is not Decision.EXPLICIT_DENY
    # AND the functions that only commit to the table are refused like any outsider
    for role in ("worker-role", "api-role", "reconciler-role", "recovery-role"):
        assert decide(find(graph, role)["outputs"]["arn"]) is Decision.EXPLICIT_DENY
    # AND events of other sources are none of the bus policy's business
    other = Request(
        f"arn:aws:iam::{account}:role/ops", "events:PutEvents", bus, {"events:source": "ops"}
    )
    assert evaluate([document], other) is Decision.IMPLICIT_DENY
