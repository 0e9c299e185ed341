"""Current models and every profile kind: the catalog at config time, IAM per kind, the pack.

Acceptance of issue #12 (item 2): a copy of dev using a ``global.`` profile plans to the
statements AWS documents, ``agentry check`` passes it, dropping the region-less grant fails the
check; a profile id the catalog does not know, without ``regions``, exits 2 naming the key.
"""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from agentry_platform.lib.model_catalog import (
    Lifecycle,
    ModelCatalog,
    ProfileKind,
    load_catalog,
    profile_kind,
)
from agentry_stacks.cli import app
from agentry_stacks.deploy.config import ConfigError, EnvironmentConfig
from agentry_stacks.offline.check import run_check
from agentry_stacks.offline.plan import MOCK_ACCOUNT_ID, plan_stack

HAIKU = "anthropic.claude-haiku-4-5-20251001-v1:0"
SONNET = "anthropic.claude-sonnet-4-5-20250929-v1:0"
OLD_HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"
GLOBAL_HAIKU = f"global.{HAIKU}"
REGION = "us-east-1"
PROFILE_ARN = f"arn:aws:bedrock:{REGION}:{MOCK_ACCOUNT_ID}:inference-profile/{GLOBAL_HAIKU}"
APP_ARN = f"arn:aws:bedrock:{REGION}:{MOCK_ACCOUNT_ID}:application-inference-profile/a1b2c3d4e5"
PRICE = {"inputPerMillion": 1.0, "outputPerMillion": 5.0}

WriteStack = Callable[[str, dict[str, Any]], Path]


def _allowlist(values: dict[str, Any], profiles: list[dict[str, Any]], default: str) -> None:
    values["agentry:models"] = []
    values["agentry:inferenceProfiles"] = profiles
    values["agentry:defaultModel"] = default
    values["agentry:modelPrices"] = {p["id"]: PRICE for p in profiles}
    for agent in values["agentry:agents"]:
        agent.pop("model", None)


def _config(values: dict[str, Any], today: date | None = None) -> EnvironmentConfig:
    return EnvironmentConfig.from_values("copy", values, today=today)


def _plan_exit(project: Path, stack: str = "copy") -> Any:
    return CliRunner().invoke(app, ["plan", stack, "--project-dir", str(project)])


# --- the catalog -------------------------------------------------------------------------------


def test_catalog_is_dated_sourced_and_knows_the_default_model() -> None:
    catalog = load_catalog()
    assert catalog.checked_on <= date.today()
    assert all(source.startswith("https://docs.aws.amazon.com/") for source in catalog.sources)
    haiku = catalog.model(HAIKU)
    assert haiku is not None
    assert haiku.lifecycle == Lifecycle.ACTIVE
    assert catalog.profile_regions(f"us.{HAIKU}") == [
        "us-east-1",
        "us-east-2",
        "us-west-1",
        "us-west-2",
    ]
    assert REGION in (catalog.profile_regions(GLOBAL_HAIKU) or [])


@pytest.mark.parametrize(
    ("profile_id", "kind"),
    [
        (f"us.{HAIKU}", ProfileKind.GEOGRAPHIC),
        (f"eu.{HAIKU}", ProfileKind.GEOGRAPHIC),
        (f"apac.{HAIKU}", ProfileKind.GEOGRAPHIC),
        (GLOBAL_HAIKU, ProfileKind.GLOBAL),
        (APP_ARN, ProfileKind.APPLICATION),
        (HAIKU, None),
    ],
)
def test_profile_kinds(profile_id: str, kind: ProfileKind | None) -> None:
    assert profile_kind(profile_id) == kind


def test_shipped_stacks_default_to_haiku_4_5_through_a_profile(repo_root: Path) -> None:
    for stack in ("dev", "prod"):
        values = yaml.safe_load((repo_root / f"Pulumi.{stack}.yaml").read_text())["config"]
        assert values["agentry:defaultModel"] == f"us.{HAIKU}", stack


def test_model_past_end_of_life_fails_config(dev_values: dict[str, Any]) -> None:
    # GIVEN dev pointed back at Claude 3.5 Haiku, which Bedrock retired on 2026-06-19
    values = copy.deepcopy(dev_values)
    _allowlist(values, [{"id": f"us.{OLD_HAIKU}"}], f"us.{OLD_HAIKU}")
    # WHEN validated after its end of life THEN config fails naming the key and the date
    with pytest.raises(ConfigError) as caught:
        _config(values, today=date(2026, 7, 1))
    [problem] = caught.value.problems
    assert problem.path == "agentry:inferenceProfiles[0].id"
    assert "reached end of life on 2026-06-19" in problem.reason
    assert HAIKU in problem.reason  # it names an Active replacement
    # AND before that date it was only a warning (announced end of life)
    earlier = _config(values, today=date(2026, 6, 1))
    assert any("until 2026-06-19" in w.reason for w in earlier.warnings())


def test_legacy_model_warns() -> None:
    # GIVEN a catalog in which Haiku 4.5 has gone Legacy
    shipped = load_catalog()
    haiku = shipped.models[HAIKU].model_copy(update={"lifecycle": Lifecycle.LEGACY})
    catalog = ModelCatalog(
        checked_on=shipped.checked_on,
        sources=shipped.sources,
        models={**shipped.models, HAIKU: haiku},
    )
    # THEN using it is valid but warns, naming the model and pointing at Active ones
    finding = catalog.lifecycle(HAIKU, date(2026, 11, 30))
    assert finding.error is None
    assert finding.warning is not None
    assert "Legacy" in finding.warning
    assert SONNET in finding.warning


def test_unknown_profile_without_regions_exits_2_naming_the_key(
    dev_values: dict[str, Any], write_stack: WriteStack
) -> None:
    # GIVEN a profile id the catalog does not know, and no regions for it
    values = copy.deepcopy(dev_values)
    unknown = "us.anthropic.claude-opus-9-20300101-v1:0"
    _allowlist(values, [{"id": unknown}], unknown)
    # WHEN planned THEN exit 2, naming the key and what to add
    result = _plan_exit(write_stack("copy", values))
    assert result.exit_code == 2, result.output
    assert "agentry:inferenceProfiles[0].regions" in result.stderr
    assert "is not in the Bedrock model catalog" in result.stderr
    # AND with its regions given, the same profile is valid
    values["agentry:inferenceProfiles"][0]["regions"] = ["us-east-1", "us-west-2"]
    assert _config(values).resolved_profiles()[0].source == "config"


def test_stack_region_must_be_a_region_of_the_profile(dev_values: dict[str, Any]) -> None:
    values = copy.deepcopy(dev_values)
    _allowlist(values, [{"id": f"eu.{HAIKU}"}], f"eu.{HAIKU}")
    with pytest.raises(ConfigError, match=r"inferenceProfiles\[0\]\.regions: the stack region"):
        _config(values)


def test_application_profile_needs_model_and_regions(dev_values: dict[str, Any]) -> None:
    values = copy.deepcopy(dev_values)
    _allowlist(values, [{"id": APP_ARN}], APP_ARN)
    with pytest.raises(ConfigError) as caught:
        _config(values)
    assert "agentry:inferenceProfiles[0].model" in str(caught.value)
    values["agentry:inferenceProfiles"] = [
        {"id": APP_ARN, "model": HAIKU, "regions": ["us-east-1", "us-east-2"]}
    ]
    [resolved] = _config(values).resolved_profiles()
    assert (resolved.kind, resolved.model) == (ProfileKind.APPLICATION, HAIKU)


def test_every_agent_model_needs_a_price(dev_values: dict[str, Any]) -> None:
    values = copy.deepcopy(dev_values)
    values["agentry:modelPrices"] = {}
    with pytest.raises(ConfigError, match=r"agentry:modelPrices: no price for"):
        _config(values)


# --- the global profile: plan, check, mutation -------------------------------------------------


@pytest.fixture(scope="module")
def global_copy(tmp_path_factory: pytest.TempPathFactory, repo_root: Path) -> Path:
    """A copy of the project whose ``copy`` stack is dev using a global Haiku 4.5 profile."""
    project = tmp_path_factory.mktemp("global")
    for name in ("Pulumi.yaml", "constraints.txt"):
        shutil.copy2(repo_root / name, project / name)
    for folder in ("lambdas", "prompts", "policies"):
        shutil.copytree(
            repo_root / folder,
            project / folder,
            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "venv"),
        )
    values = yaml.safe_load((repo_root / "Pulumi.dev.yaml").read_text())["config"]
    _allowlist(values, [{"id": GLOBAL_HAIKU}], GLOBAL_HAIKU)
    (project / "Pulumi.copy.yaml").write_text(yaml.safe_dump({"config": values}))
    pack = json.loads((repo_root / "policies" / "dev.json").read_text())
    entry = [{"id": GLOBAL_HAIKU, "model": HAIKU}]
    pack["bedrock-model-allowlist"]["inferenceProfiles"] = entry
    pack["bedrock-inference-profile-grants"]["inferenceProfiles"] = entry
    (project / "policies" / "copy.json").write_text(json.dumps(pack, indent=2))
    return project


@pytest.fixture(scope="module")
def global_graph(global_copy: Path) -> dict[str, Any]:
    return plan_stack("copy", project_dir=global_copy)


def _worker_bedrock(graph: dict[str, Any]) -> list[dict[str, Any]]:
    [policy] = [
        r
        for r in graph["resources"]
        if r["type"] == "aws:iam/rolePolicy:RolePolicy" and r["name"] == "worker-policy"
    ]
    document = json.loads(policy["inputs"]["policy"])
    return [s for s in document["Statement"] if "bedrock:InvokeModel" in s["Action"]]


def test_global_profile_plans_to_the_documented_statements(global_graph: dict[str, Any]) -> None:
    # THEN the worker gets exactly the three grants of the Bedrock user guide's global shape
    granted = {
        (tuple(s["Resource"]), json.dumps(s.get("Condition"), sort_keys=True))
        for s in _worker_bedrock(global_graph)
    }
    via = {"bedrock:InferenceProfileArn": PROFILE_ARN}
    assert granted == {
        ((PROFILE_ARN,), json.dumps({"StringEquals": {"aws:RequestedRegion": REGION}})),
        (
            (f"arn:aws:bedrock:{REGION}::foundation-model/{HAIKU}",),
            json.dumps({"StringEquals": {"aws:RequestedRegion": REGION, **via}}, sort_keys=True),
        ),
        (
            (f"arn:aws:bedrock:::foundation-model/{HAIKU}",),
            json.dumps(
                {"StringEquals": {"aws:RequestedRegion": "unspecified", **via}}, sort_keys=True
            ),
        ),
    }


def test_agentry_check_passes_the_global_copy(global_copy: Path) -> None:
    result = CliRunner().invoke(app, ["check", "copy", "--project-dir", str(global_copy)])
    assert result.exit_code == 0, result.output


def _drop_region_less_grant(graph: dict[str, Any]) -> dict[str, Any]:
    mutated = copy.deepcopy(graph)
    for resource in mutated["resources"]:
        if resource["name"] == "worker-policy":
            document = json.loads(resource["inputs"]["policy"])
            document["Statement"] = [
                s for s in document["Statement"] if "arn:aws:bedrock:::" not in str(s["Resource"])
            ]
            resource["inputs"]["policy"] = json.dumps(document)
    return mutated


def test_dropping_the_region_less_grant_fails_the_check(
    global_graph: dict[str, Any], global_copy: Path, tmp_path: Path
) -> None:
    # GIVEN the global copy's graph without the region-less foundation-model statement
    graph_file = tmp_path / "graph.json"
    graph_file.write_text(json.dumps(_drop_region_less_grant(global_graph)))
    # WHEN checked THEN exit 1, the profile-grants rule naming the missing region-less grant
    result = CliRunner().invoke(
        app,
        ["check", "copy", "--graph", str(graph_file), "--json", "--project-dir", str(global_copy)],
    )
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    [violation] = [v for v in report["violations"] if v["enforcement"] == "mandatory"]
    assert violation["policy"] == "bedrock-inference-profile-grants"
    assert "arn:aws:bedrock:::foundation-model/" + HAIKU in violation["message"]


def test_region_less_grant_without_unspecified_condition_is_refused(
    global_graph: dict[str, Any], global_copy: Path
) -> None:
    # GIVEN the region-less grant kept but without its aws:RequestedRegion condition
    mutated = copy.deepcopy(global_graph)
    for resource in mutated["resources"]:
        if resource["name"] == "worker-policy":
            document = json.loads(resource["inputs"]["policy"])
            for statement in document["Statement"]:
                if "arn:aws:bedrock:::" in str(statement["Resource"]):
                    del statement["Condition"]["StringEquals"]["aws:RequestedRegion"]
            resource["inputs"]["policy"] = json.dumps(document)
    pack = json.loads((global_copy / "policies" / "copy.json").read_text())
    # THEN both the scoping rule and the profile-grants rule refuse it
    report = run_check(mutated, pack)
    assert {v.policy for v in report.violations if v.enforcement == "mandatory"} == {
        "bedrock-invoke-scoped",
        "bedrock-inference-profile-grants",
    }


def test_check_reports_an_allowlist_mismatch_with_both_values(
    global_copy: Path, tmp_path: Path
) -> None:
    # GIVEN the pack config still allowlisting the us. profile while the stack uses global.
    project = tmp_path / "project"
    shutil.copytree(global_copy, project)
    pack_file = project / "policies" / "copy.json"
    pack = json.loads(pack_file.read_text())
    pack["bedrock-model-allowlist"]["inferenceProfiles"] = [
        {"id": f"us.{HAIKU}", "model": HAIKU, "regions": ["us-east-1"]}
    ]
    pack_file.write_text(json.dumps(pack))
    # WHEN checked THEN the mismatch is reported with both values
    result = CliRunner().invoke(app, ["check", "copy", "--json", "--project-dir", str(project)])
    assert result.exit_code == 1, result.output
    findings = [
        v for v in json.loads(result.stdout)["violations"] if v["policy"] == "stack-pack-allowlist"
    ]
    assert findings, result.stdout
    message = findings[0]["message"]
    assert GLOBAL_HAIKU in message
    assert f"us.{HAIKU}" in message
    assert "Pulumi.copy.yaml" in message
    assert "policies/copy.json" in message


# --- an application profile: plan and check ----------------------------------------------------


def test_application_profile_plans_and_checks(
    global_copy: Path, tmp_path: Path, repo_root: Path
) -> None:
    # GIVEN a copy of dev using an application inference profile (copied from the us. profile)
    project = tmp_path / "app"
    shutil.copytree(global_copy, project)
    values = yaml.safe_load((repo_root / "Pulumi.dev.yaml").read_text())["config"]
    regions = ["us-east-1", "us-east-2", "us-west-2"]
    _allowlist(values, [{"id": APP_ARN, "model": HAIKU, "regions": regions}], APP_ARN)
    (project / "Pulumi.app.yaml").write_text(yaml.safe_dump({"config": values}))
    pack = json.loads((project / "policies" / "copy.json").read_text())
    entry = [{"id": APP_ARN, "model": HAIKU, "regions": regions}]
    pack["bedrock-model-allowlist"]["inferenceProfiles"] = entry
    pack["bedrock-inference-profile-grants"]["inferenceProfiles"] = entry
    (project / "policies" / "app.json").write_text(json.dumps(pack))
    # WHEN planned THEN the profile ARN and the model in each of its regions, through it
    graph = plan_stack("app", project_dir=project)
    granted = {
        (tuple(s["Resource"]), json.dumps(s.get("Condition"), sort_keys=True))
        for s in _worker_bedrock(graph)
    }
    via = json.dumps({"StringEquals": {"bedrock:InferenceProfileArn": APP_ARN}})
    assert granted == {
        ((APP_ARN,), "null"),
        (tuple(f"arn:aws:bedrock:{r}::foundation-model/{HAIKU}" for r in regions), via),
    }
    # AND agentry check passes it
    result = CliRunner().invoke(app, ["check", "app", "--project-dir", str(project)])
    assert result.exit_code == 0, result.output
    # AND without one region's model grant the pack refuses it, naming the region
    mutated = copy.deepcopy(graph)
    for resource in mutated["resources"]:
        if resource["name"] == "worker-policy":
            document = json.loads(resource["inputs"]["policy"])
            for statement in document["Statement"]:
                if "Condition" in statement and "bedrock:InferenceProfileArn" in str(statement):
                    statement["Resource"] = statement["Resource"][:2]
            resource["inputs"]["policy"] = json.dumps(document)
    report = run_check(mutated, pack)
    [violation] = [v for v in report.violations if v.enforcement == "mandatory"]
    assert violation.policy == "bedrock-inference-profile-grants"
    assert "us-west-2" in violation.message


def test_plan_warns_about_a_model_the_catalog_does_not_know(
    dev_values: dict[str, Any], write_stack: WriteStack, repo_root: Path
) -> None:
    # GIVEN dev with a direct model the catalog has no record of
    values = copy.deepcopy(dev_values)
    values["agentry:models"] = ["amazon.nova-lite-v1:0"]
    project = write_stack("copy", values)
    for folder in ("lambdas", "prompts"):
        shutil.copytree(
            repo_root / folder,
            project / folder,
            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
        )
    # WHEN planned THEN it plans, and warns naming the key
    result = _plan_exit(project)
    assert result.exit_code == 0, result.output
    assert "warning: agentry:models[0]: amazon.nova-lite-v1:0 is not in the" in result.stderr
