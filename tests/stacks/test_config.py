"""Stack config validation: every class of bad config names its key path and the reason."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from agentry_stacks.cli import app
from agentry_stacks.deploy.config import (
    ConfigError,
    EnvironmentConfig,
    load_stack_config,
    pulumi_config_values,
)

pytestmark = pytest.mark.unit

WriteStack = Callable[[str, dict[str, Any]], Path]


def _plan_fails(project_dir: Path, stack: str = "bad") -> str:
    """Run ``agentry plan`` on a temp project; assert exit 2 and return its stderr."""
    result = CliRunner().invoke(app, ["plan", stack, "--project-dir", str(project_dir)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.stderr
    return result.stderr


def _with(values: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(values)
    if value is None:
        del changed[key]
    else:
        changed[key] = value
    return changed


# --- the committed stacks ---------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_committed_stacks_are_valid(stack: str, repo_root: Path) -> None:
    # GIVEN the committed Pulumi.<stack>.yaml
    # WHEN it is loaded
    config = load_stack_config(stack, project_dir=repo_root)
    # THEN it validates and names its stack
    assert config.stack == stack
    assert config.default_model in {*config.models, *(p.id for p in config.inference_profiles)}


def test_prod_is_stricter_than_dev(repo_root: Path) -> None:
    # GIVEN both committed stacks
    dev = load_stack_config("dev", project_dir=repo_root)
    prod = load_stack_config("prod", project_dir=repo_root)
    # THEN prod protects data and pages humans, and allows fewer models
    assert (prod.point_in_time_recovery, prod.deletion_protection) == (True, True)
    assert prod.customer_managed_key
    assert not dev.customer_managed_key
    assert prod.log_retention_days > dev.log_retention_days
    assert prod.worker.reserved_concurrency is not None
    assert prod.human_emails
    assert prod.alarm_emails
    assert {p.id for p in prod.inference_profiles} < {p.id for p in dev.inference_profiles}
    assert prod.models == []
    assert prod.recovery.max_attempts > dev.recovery.max_attempts


def test_cli_form_round_trips(repo_root: Path) -> None:
    # GIVEN the flat string map the Pulumi CLI hands the program (non-strings as JSON)
    values = pulumi_config_values("prod", project_dir=repo_root)
    assert all(isinstance(value, str) for value in values.values())
    assert json.loads(values["agentry:worker"])["batchSize"] == 1
    # WHEN it is validated as `pulumi up` would
    config = EnvironmentConfig.from_values("prod", values)
    # THEN it equals the YAML's config, and renders back to the same map
    assert config == load_stack_config("prod", project_dir=repo_root)
    assert EnvironmentConfig.from_values("prod", config.to_pulumi_config()) == config


def test_other_namespaces_are_ignored(dev_values: dict[str, Any]) -> None:
    # GIVEN a key of another provider's namespace
    values = _with(dev_values, "aws:profile", "someone")
    # WHEN validated THEN it is not an error
    assert EnvironmentConfig.from_values("dev", values).region == "us-east-1"


# --- one test per class of bad config, through `agentry plan` ---------------------------------


def test_wildcard_model_id(dev_values: dict[str, Any], write_stack: WriteStack) -> None:
    # GIVEN a model allowlist with a wildcard
    values = _with(dev_values, "agentry:models", ["anthropic.claude-*", "amazon.nova-lite-v1:0"])
    # WHEN planned THEN exit 2 naming the element and the reason
    stderr = _plan_fails(write_stack("bad", values))
    assert "agentry:models[0]" in stderr
    assert "wildcards are not allowed" in stderr


def test_malformed_model_id(dev_values: dict[str, Any], write_stack: WriteStack) -> None:
    # GIVEN a model id without the provider prefix
    values = _with(dev_values, "agentry:models", ["amazon.nova-lite-v1:0", "claude 3 haiku"])
    # WHEN planned THEN exit 2 naming the element and the expected shape
    stderr = _plan_fails(write_stack("bad", values))
    assert "agentry:models[1]" in stderr
    assert "not a Bedrock foundation model id" in stderr


def test_wildcard_profile_model(dev_values: dict[str, Any], write_stack: WriteStack) -> None:
    # GIVEN an inference profile whose model has a wildcard
    profiles = copy.deepcopy(dev_values["agentry:inferenceProfiles"])
    profiles[0]["model"] = "anthropic.*"
    stderr = _plan_fails(
        write_stack("bad", _with(dev_values, "agentry:inferenceProfiles", profiles))
    )
    # THEN the nested path is named
    assert "agentry:inferenceProfiles[0].model" in stderr
    assert "wildcards are not allowed" in stderr


def test_unknown_key(dev_values: dict[str, Any], write_stack: WriteStack) -> None:
    # GIVEN a misspelt top-level key and an unknown nested key
    values = _with(dev_values, "agentry:logRetention", 14)
    values["agentry:worker"]["batchsize"] = 3
    # WHEN planned THEN both are reported, one line each
    stderr = _plan_fails(write_stack("bad", values))
    assert "agentry:logRetention: unknown key" in stderr
    assert "agentry:worker.batchsize: unknown key" in stderr


def test_negative_number(dev_values: dict[str, Any], write_stack: WriteStack) -> None:
    # GIVEN a negative receive count
    stderr = _plan_fails(write_stack("bad", _with(dev_values, "agentry:maxReceiveCount", -1)))
    # THEN the key and the bound are named
    assert "agentry:maxReceiveCount" in stderr
    assert "greater than or equal to 1" in stderr


def test_out_of_range_number(dev_values: dict[str, Any], write_stack: WriteStack) -> None:
    # GIVEN a batch size SQS does not allow and a retention CloudWatch does not allow
    values = _with(dev_values, "agentry:logRetentionDays", 10)
    values["agentry:worker"]["batchSize"] = 11
    stderr = _plan_fails(write_stack("bad", values))
    # THEN both keys are named with their reasons
    assert "agentry:worker.batchSize: Input should be less than or equal to 10" in stderr
    assert "agentry:logRetentionDays: 10 is not a CloudWatch Logs retention" in stderr


def test_missing_required_key(dev_values: dict[str, Any], write_stack: WriteStack) -> None:
    # GIVEN a stack without its model client settings
    stderr = _plan_fails(write_stack("bad", _with(dev_values, "agentry:modelClient", None)))
    # THEN the missing key is named
    assert "agentry:modelClient: required key is missing" in stderr


def test_empty_allowlist(dev_values: dict[str, Any], write_stack: WriteStack) -> None:
    # GIVEN a stack with neither direct models nor profiles
    values = _with(dev_values, "agentry:models", [])
    values["agentry:inferenceProfiles"] = []
    # THEN the allowlist is named
    stderr = _plan_fails(write_stack("bad", values))
    assert "agentry:models: name at least one model" in stderr


def test_dangling_reference(dev_values: dict[str, Any], write_stack: WriteStack) -> None:
    # GIVEN a default model that is neither allowed nor a profile
    values = _with(dev_values, "agentry:defaultModel", "meta.llama3-70b-instruct-v1:0")
    stderr = _plan_fails(write_stack("bad", values))
    assert "agentry:defaultModel" in stderr
    assert "neither in agentry:models" in stderr


def test_profile_model_must_be_its_ids(dev_values: dict[str, Any], write_stack: WriteStack) -> None:
    # GIVEN a system profile that claims another foundation model than its id names
    profiles = copy.deepcopy(dev_values["agentry:inferenceProfiles"])
    profiles[0]["model"] = "anthropic.claude-sonnet-4-5-20250929-v1:0"
    values = _with(dev_values, "agentry:inferenceProfiles", profiles)
    stderr = _plan_fails(write_stack("bad", values))
    assert "agentry:inferenceProfiles[0].model" in stderr
    assert "does not route to model" in stderr


def test_bad_region_and_email(dev_values: dict[str, Any], write_stack: WriteStack) -> None:
    # GIVEN a region and an email of the wrong shape
    values = _with(dev_values, "aws:region", "useast1")
    values["agentry:alarmEmails"] = ["ops@example.com", "ops-at-example"]
    stderr = _plan_fails(write_stack("bad", values))
    assert "aws:region: 'useast1' is not an AWS region name" in stderr
    assert "agentry:alarmEmails[1]: 'ops-at-example' is not an email address" in stderr


def test_wrong_type(dev_values: dict[str, Any], write_stack: WriteStack) -> None:
    # GIVEN a boolean key holding a word
    stderr = _plan_fails(
        write_stack("bad", _with(dev_values, "agentry:pointInTimeRecovery", "maybe"))
    )
    assert "agentry:pointInTimeRecovery: Input should be a valid boolean" in stderr


def test_unknown_stack(tmp_path: Path) -> None:
    # GIVEN a project dir without Pulumi.nope.yaml
    # WHEN planned THEN exit 2 with a one-line reason
    stderr = _plan_fails(tmp_path, stack="nope")
    assert "Pulumi.nope.yaml not found" in stderr


def test_one_line_per_problem(dev_values: dict[str, Any]) -> None:
    # GIVEN three independent problems
    values = _with(dev_values, "agentry:maxReceiveCount", 0)
    values["agentry:eventArchiveDays"] = -1
    values["agentry:extra"] = True
    # WHEN validated
    with pytest.raises(ConfigError) as caught:
        EnvironmentConfig.from_values("dev", values)
    # THEN each is one line that starts with its key path
    lines = str(caught.value).splitlines()
    assert len(lines) == len(caught.value.problems) == 3
    assert {line.split(":")[1] for line in lines} == {
        "maxReceiveCount",
        "eventArchiveDays",
        "extra",
    }


def test_json_strings_from_the_cli_are_decoded(dev_values: dict[str, Any]) -> None:
    # GIVEN the worker settings as the CLI passes them (a JSON string) with a bad value
    worker = {**dev_values["agentry:worker"], "memoryMb": 64}
    values = _with(dev_values, "agentry:worker", json.dumps(worker))
    # WHEN validated THEN the nested key is still named
    with pytest.raises(ConfigError, match=r"agentry:worker\.memoryMb: .*128"):
        EnvironmentConfig.from_values("dev", values)
