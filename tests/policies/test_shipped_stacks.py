"""The shipped stacks pass, and mutations of the prod graph are caught by rule and resource."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agentry_stacks.offline.check import CheckReport, load_pack_config, pack_config_path, run_check
from agentry_stacks.offline.plan import plan_stack

_ROOT = Path(__file__).resolve().parents[2]
_ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
_OUTSIDER = "meta.llama3-70b-instruct-v1:0"


@pytest.fixture(scope="session")
def graphs() -> dict[str, dict[str, Any]]:
    """The dev and prod graphs, planned once per session (planning runs the whole program)."""
    return {stack: plan_stack(stack, project_dir=_ROOT) for stack in ("dev", "prod")}


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


def _plain_model_grant(statements: list[dict[str, Any]]) -> dict[str, Any]:
    return next(
        s
        for s in statements
        if "bedrock:InvokeModel" in s["Action"]
        and "Condition" not in s
        and all(":foundation-model/" in r for r in s["Resource"])
    )


def _add_bedrock_star(statements: list[dict[str, Any]]) -> None:
    statements.append({"Effect": "Allow", "Action": "bedrock:*", "Resource": "*"})


def _widen_bedrock_resource(statements: list[dict[str, Any]]) -> None:
    _plain_model_grant(statements)["Resource"] = "*"


def _add_outside_model(statements: list[dict[str, Any]]) -> None:
    grant = _plain_model_grant(statements)
    grant["Resource"] = [
        *grant["Resource"],
        f"arn:aws:bedrock:us-east-1::foundation-model/{_OUTSIDER}",
    ]


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
