"""The recording plan: graph shape, AWS-shaped outputs, runtime isolation between stacks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from agentry_stacks.deploy.config import EnvironmentConfig
from agentry_stacks.offline.plan import MOCK_ACCOUNT_ID, plan_stack


class _Pair(pulumi.ComponentResource):
    """A tiny component: a queue and its DLQ, named from the stack."""

    def __init__(self, name: str) -> None:
        super().__init__("agentry:test:Pair", name, None, None)
        stack = pulumi.get_stack()
        child = pulumi.ResourceOptions(parent=self)
        dlq = aws.sqs.Queue(f"{name}-dlq", name=f"agentry-{stack}-dlq", opts=child)
        self.queue = aws.sqs.Queue(
            f"{name}-queue",
            name=f"agentry-{stack}-queue",
            redrive_policy=dlq.arn.apply(
                lambda arn: json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 3})
            ),
            tags={"Token": pulumi.Output.secret("hidden")},
            opts=child,
        )
        self.register_outputs({"url": self.queue.url})


def _tiny_program(config: EnvironmentConfig) -> None:
    _Pair("steps")
    region = aws.get_region().region
    account = aws.get_caller_identity().account_id
    role = aws.iam.Role("role", name=f"agentry-{config.stack}-role", assume_role_policy="{}")
    fn = aws.lambda_.Function(
        "fn",
        name=f"agentry-{config.stack}-fn",
        role=role.arn,
        runtime=config.lambda_runtime,
        handler="x.handler",
        memory_size=config.worker.memory_mb,
        code=pulumi.FileArchive(str(Path(__file__).parent)),
        description=f"{region}/{account}",
    )
    aws.lambda_.Permission("perm", function=fn, action="lambda:InvokeFunction", principal="x")


def _by_name(graph: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {resource["name"]: resource for resource in graph["resources"]}


def test_graph_records_parents_dependencies_and_outputs(repo_root: Path) -> None:
    # GIVEN a program with a component, a role and a function
    # WHEN it is planned for dev
    graph = plan_stack("dev", project_dir=repo_root, program=_tiny_program)
    resources = _by_name(graph)
    # THEN the document names stack and project, and children point at their component
    assert (graph["stack"], graph["project"]) == ("dev", "agentry")
    component = resources["steps"]
    assert component["type"] == "agentry:test:Pair"
    assert component["parent"] is None
    assert resources["steps-queue"]["parent"] == component["urn"]
    assert resources["steps-queue"]["urn"] == (
        "urn:pulumi:dev::agentry::agentry:test:Pair$aws:sqs/queue:Queue::steps-queue"
    )
    # AND dependencies carry the DLQ, inputs are camelCase and secrets are unwrapped
    queue = resources["steps-queue"]
    assert resources["steps-dlq"]["urn"] in queue["dependencies"]
    assert resources["steps-dlq"]["urn"] in queue["propertyDependencies"]["redrivePolicy"]
    assert json.loads(queue["inputs"]["redrivePolicy"])["deadLetterTargetArn"] == (
        f"arn:aws:sqs:us-east-1:{MOCK_ACCOUNT_ID}:agentry-dev-dlq"
    )
    assert queue["inputs"]["tags"] == {"Token": "hidden"}
    assert queue["outputs"]["url"] == (
        f"https://sqs.us-east-1.amazonaws.com/{MOCK_ACCOUNT_ID}/agentry-dev-queue"
    )
    # AND parents come before their children
    order = [resource["urn"] for resource in graph["resources"]]
    assert order.index(component["urn"]) < order.index(queue["urn"])


def test_outputs_are_shaped_like_aws(repo_root: Path) -> None:
    # GIVEN the tiny program planned for prod
    resources = _by_name(plan_stack("prod", project_dir=repo_root, program=_tiny_program))
    fn, role = resources["fn"], resources["role"]
    # THEN role and function ARNs, and the function's invoke ARN, have AWS's shapes
    assert role["outputs"]["arn"] == f"arn:aws:iam::{MOCK_ACCOUNT_ID}:role/agentry-prod-role"
    assert fn["inputs"]["role"] == role["outputs"]["arn"]
    arn = f"arn:aws:lambda:us-east-1:{MOCK_ACCOUNT_ID}:function:agentry-prod-fn"
    assert fn["outputs"]["arn"] == arn
    assert fn["outputs"]["invokeArn"] == (
        f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{arn}/invocations"
    )
    # AND provider calls were answered (region, account), numbers are ints, assets are relative
    assert fn["inputs"]["description"] == f"us-east-1/{MOCK_ACCOUNT_ID}"
    assert fn["inputs"]["memorySize"] == 1024
    assert isinstance(fn["inputs"]["memorySize"], int)
    assert fn["inputs"]["code"] == {"archive": "tests/stacks"}
    # AND a resource passed as a reference is recorded by URN, never as an object
    assert resources["perm"]["inputs"]["function"]["urn"] == fn["urn"]
    json.dumps(resources)


def test_two_stacks_in_one_process_do_not_mix(repo_root: Path) -> None:
    # GIVEN dev planned, then prod, then dev again in one process
    first = plan_stack("dev", project_dir=repo_root, program=_tiny_program)
    prod = plan_stack("prod", project_dir=repo_root, program=_tiny_program)
    again = plan_stack("dev", project_dir=repo_root, program=_tiny_program)
    # THEN each stack's URNs name only that stack, and a replan is identical
    assert all(r["urn"].startswith("urn:pulumi:prod::") for r in prod["resources"])
    assert all(
        (r["parent"] or "urn:pulumi:prod::").startswith("urn:pulumi:prod::")
        for r in prod["resources"]
    )
    assert json.dumps(first) == json.dumps(again)
