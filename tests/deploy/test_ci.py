"""CI for users: the workflow is linted, previews and deploys every stack, and ``make check``
checks every stack found (a new one without its pack config fails, saying what to add)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from support.project import copy_project
from typer.testing import CliRunner

from agentry_stacks.cli import app

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / ".github" / "workflows" / "ci.yml"
ACTIONLINT = Path(sys.executable).parent / "actionlint"


def _workflow() -> dict[str, Any]:
    document = yaml.safe_load(WORKFLOW.read_text())
    # YAML 1.1 reads the `on:` key as True
    document["on"] = document.pop(True, document.get("on"))
    return dict(document)


def _steps(job: dict[str, Any]) -> str:
    return "\n".join(str(step.get("run", "")) + str(step.get("uses", "")) for step in job["steps"])


def test_actionlint_accepts_the_workflows_and_refuses_a_broken_one(tmp_path: Path) -> None:
    shipped = subprocess.run(
        [str(ACTIONLINT), "-color=false", *map(str, WORKFLOW.parent.glob("*.yml"))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert shipped.returncode == 0, shipped.stdout
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("needs: [stacks, preview]", "needs: [nope]"))
    result = subprocess.run(
        [str(ACTIONLINT), "-color=false", str(broken)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert "nope" in result.stdout


def test_make_test_runs_actionlint() -> None:
    assert (
        "$(BIN)/actionlint -color=false .github/workflows/*.yml" in (REPO / "Makefile").read_text()
    )


def test_workflow_tests_checks_previews_and_gates_up_for_every_stack() -> None:
    workflow = _workflow()
    jobs = workflow["jobs"]
    assert "make test" in _steps(jobs["test"])
    # every Pulumi.<stack>.yaml found, as the matrix of the later jobs
    assert "Pulumi.*.yaml" in _steps(jobs["stacks"])
    for name in ("check", "preview", "up"):
        assert jobs[name]["strategy"]["matrix"]["stack"] == (
            "${{ fromJSON(needs.stacks.outputs.stacks) }}"
        ), name
    assert 'agentry check "${{ matrix.stack }}"' in _steps(jobs["check"])
    assert 'agentry limits "${{ matrix.stack }}"' in _steps(jobs["check"])
    preview = _steps(jobs["preview"])
    assert "pulumi preview" in preview
    assert "--policy-pack policies" in preview
    # OIDC: a token is minted per run, no secret is stored
    for name in ("preview", "up"):
        assert jobs[name]["permissions"]["id-token"] == "write"
        assert "aws-actions/configure-aws-credentials" in _steps(jobs[name])
        assert "pulumi/auth-actions" in _steps(jobs[name])
        assert "secrets." not in WORKFLOW.read_text()
    up = jobs["up"]
    assert "pulumi up" in _steps(up)
    assert up["environment"] == "${{ matrix.stack }}"  # gated by the environment's reviewers
    assert "preview" in up["needs"]
    assert "refs/heads/main" in up["if"]


def test_a_new_stack_without_pack_config_fails_saying_what_to_add(tmp_path: Path) -> None:
    # GIVEN a project with a third stack (a copy of dev) and no policies/staging.json
    project = copy_project(tmp_path)
    shutil.copy2(project / "Pulumi.dev.yaml", project / "Pulumi.staging.yaml")
    # WHEN checked THEN exit 2, naming the file to add and what it must hold
    result = CliRunner().invoke(app, ["check", "staging", "--project-dir", str(project)])
    assert result.exit_code == 2
    assert "add policies/staging.json" in result.stderr
    assert "bedrock-model-allowlist" in result.stderr
    # AND make check would reach it: it checks every Pulumi.<stack>.yaml it finds
    listed = subprocess.run(
        ["make", "-s", "-C", str(project), "-f", str(REPO / "Makefile"), "-p", "-n", "check"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    assert "STACKS := dev prod staging" in listed or "STACKS = dev prod staging" in listed
