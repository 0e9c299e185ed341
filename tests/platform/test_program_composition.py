"""The stack program composes every component for a shipped stack config under mocks."""

from __future__ import annotations

import json
from typing import Any

import pulumi
from statelint.linter import Linter

from agentry_stacks.deploy.config import load_stack_config
from agentry_stacks.deploy.program import run

COMPONENTS = {
    "agentry:table:AgentTable",
    "agentry:bus:EventBus",
    "agentry:bus:EventRule",
    "agentry:queue:StepQueue",
    "agentry:function:AgentFunction",
    "agentry:api:HttpApi",
    "agentry:topic:NotificationTopic",
    "agentry:recovery:RecoveryStateMachine",
    "agentry:schedule:Schedule",
    "agentry:alarms:Alarms",
}


@pulumi.runtime.test
def _run_dev() -> None:
    run(load_stack_config("dev"))


def test_dev_program_declares_every_component(mocks: Any) -> None:
    # GIVEN the shipped dev config WHEN the real program runs under mocks (to completion)
    _run_dev()
    # THEN every component is declared, dev has no stack-wide CMK (only the topics' key,
    # since services cannot publish under the AWS managed SNS key), and the definition lints
    types = set(mocks.types.values())
    assert types >= COMPONENTS
    keys = [name for name, typ in mocks.types.items() if typ == "agentry:keys:EncryptionKey"]
    assert keys == ["topics-key"]
    definition = json.loads(mocks.inputs["recovery-state-machine"]["definition"])
    assert Linter.validate(definition) == []
    assert definition["States"]["LoadAgent"]["Parameters"]["TableName"] == "agentry-dev-agents"
    # AND every taggable resource the program declared carries the required tags
    for name, inputs in mocks.inputs.items():
        if "tags" in inputs:
            assert {"Project", "Environment", "ManagedBy"} <= set(inputs["tags"]), name
