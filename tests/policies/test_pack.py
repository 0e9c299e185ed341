"""The pack as the Pulumi CLI loads it: registration, metadata and the shipped pack configs."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
import yaml

from agentry_policies import ALL_POLICIES, PACK_NAME
from agentry_stacks.deploy.config import load_stack_config
from agentry_stacks.offline.allowlist import compare_allowlists
from agentry_stacks.offline.check import validate_pack_config

_ROOT = Path(__file__).resolve().parents[2]
_PACK = _ROOT / "policies"
_KEBAB = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


def _pack_call() -> ast.Call:
    tree = ast.parse((_PACK / "__main__.py").read_text(encoding="utf-8"))
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "PolicyPack"
    ]
    assert len(calls) == 1, "__main__.py must construct exactly one PolicyPack"
    return calls[0]


def test_main_registers_exactly_the_policies_the_offline_check_runs() -> None:
    # GIVEN __main__.py (never imported: PolicyPack blocks forever) WHEN its call is parsed
    keywords = {kw.arg: kw.value for kw in _pack_call().keywords}
    # THEN it passes list(ALL_POLICIES), the tuple run_check uses by default, and the pack name
    assert ast.unparse(keywords["policies"]) == "list(ALL_POLICIES)"
    assert ast.unparse(keywords["name"]) == "PACK_NAME"
    assert ast.unparse(keywords["enforcement_level"]) == "PACK_ENFORCEMENT_LEVEL"
    assert PACK_NAME == "agentry-guardrails"
    from agentry_stacks.offline import check

    assert check.run_check.__defaults__ == (ALL_POLICIES,)


def test_policies_have_unique_kebab_names_descriptions_and_schemas() -> None:
    names = [policy.name for policy in ALL_POLICIES]
    assert len(names) == len(set(names))
    for policy in ALL_POLICIES:
        assert _KEBAB.match(policy.name), policy.name
        assert len(policy.description) > 20, policy.name
        assert policy.config_schema is not None, policy.name


def test_pack_manifest_and_requirements() -> None:
    manifest = yaml.safe_load((_PACK / "PulumiPolicy.yaml").read_text(encoding="utf-8"))
    assert manifest["runtime"]["name"] == "python"
    assert manifest["runtime"]["options"]["virtualenv"]
    lines = (_PACK / "requirements.txt").read_text(encoding="utf-8").splitlines()
    requirements = [line for line in lines if line and not line.startswith("#")]
    assert requirements
    assert all("==" in line for line in requirements)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_pack_config_is_valid_and_mirrors_the_stack_allowlist(stack: str) -> None:
    # GIVEN the stack's pack config and its Pulumi config
    pack = json.loads((_PACK / f"{stack}.json").read_text(encoding="utf-8"))
    config = yaml.safe_load((_ROOT / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8"))["config"]
    # WHEN validated like the CLI does THEN it is accepted
    validate_pack_config(pack)
    # AND its own allowlists (kept apart, as a guardrail) agree with the stack's, profile regions
    # from the model catalog included
    assert config["agentry:models"] == pack["bedrock-model-allowlist"]["allowedModels"]
    stack_config = load_stack_config(stack, project_dir=_ROOT)
    assert compare_allowlists(stack_config, pack, pack_file=f"policies/{stack}.json") == []


def test_some_rules_are_advisory_in_dev_and_mandatory_in_prod() -> None:
    def level(stack: str, name: str) -> str:
        entry = json.loads((_PACK / f"{stack}.json").read_text(encoding="utf-8")).get(name, {})
        return entry if isinstance(entry, str) else entry.get("enforcementLevel", "mandatory")

    relaxed = [p.name for p in ALL_POLICIES if level("dev", p.name) == "advisory"]
    assert relaxed
    assert all(level("prod", name) == "mandatory" for name in relaxed)


def test_readme_lists_every_rule_with_its_enforcement_per_stack() -> None:
    # GIVEN the table generated from the pack and the stacks' pack configs
    from readme_rules import README, current_table, rules_table

    # THEN the README holds exactly that table (rewrite: python tests/policies/readme_rules.py)
    assert current_table(README.read_text(encoding="utf-8")) == rules_table()
