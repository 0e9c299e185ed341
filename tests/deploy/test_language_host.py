"""``pulumi up`` from a fresh clone: what Pulumi's language host installs is enough to run the
program (acceptance of issue #12, item 1).

A fresh clone (the files git would check out) gets a clean virtualenv built exactly as the host
builds it from ``stacks/requirements.txt``, then the program (``stacks/__main__.py``) runs under
Pulumi's mocks from the program directory. Without the requirements file the host installs
nothing and the program cannot even import ``pulumi``. Needs PyPI (pip's cache makes reruns fast).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from language_host import HostProject, install_dependencies, run_program_under_mocks

from agentry_platform.bundle import BUILD_DIR

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def _fresh_clone(destination: Path) -> Path:
    """The files a clone of the working tree would hold: tracked and not ignored."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        check=True,
        capture_output=True,
    ).stdout.decode()
    for relative in filter(None, listed.split("\0")):
        source = REPO / relative
        if source.is_file():
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def test_requirements_name_every_distribution_of_ours() -> None:
    # Every agentry-* distribution is installed from its folder, so pip never looks one up on an
    # index (a name-only dependency such as agentry-offline would be, from PyPI).
    lines = (REPO / "stacks" / "requirements.txt").read_text().splitlines()
    editable = {line.removeprefix("-e ").strip() for line in lines if line.startswith("-e ")}
    folders = {
        ("." if path.parent.name == "stacks" else f"../{path.parent.relative_to(REPO)}")
        for path in REPO.glob("**/pyproject.toml")
        if ".venv" not in path.parts and path.parent != REPO and "build" not in path.parts
    }
    assert editable == folders
    assert "-c ../constraints.txt" in lines
    assert not [line for line in lines if "://" in line or line.startswith("/")]


def test_fresh_clone_runs_only_with_the_requirements_file(tmp_path: Path) -> None:
    # GIVEN a fresh clone whose requirements file is not there (yet)
    project = HostProject.read(_fresh_clone(tmp_path / "clone"))
    assert project.program_dir == project.root / "stacks"
    requirements = project.program_dir / "requirements.txt"
    kept = requirements.read_bytes()
    requirements.unlink()
    # WHEN `pulumi install` runs THEN the host stops after pip itself: an empty virtualenv
    assert install_dependencies(project) is False
    # AND the program fails at its first import
    failed = run_program_under_mocks(project, "dev")
    assert failed.returncode != 0
    assert "No module named 'pulumi'" in failed.stderr

    # GIVEN the requirements file back WHEN `pulumi install` runs again (the same virtualenv)
    requirements.write_bytes(kept)
    assert install_dependencies(project) is True
    # THEN the program, run from its directory under mocks with dev's config, declares the stack
    result = run_program_under_mocks(project, "dev", env={"AGENTRY_BUILD_DIR": str(BUILD_DIR)})
    assert result.returncode == 0, result.stderr[-3000:]
    types = json.loads(result.stdout.strip().splitlines()[-1])["types"]
    assert types.count("aws:lambda/function:Function") >= 2
    assert "aws:sfn/stateMachine:StateMachine" in types
    assert "aws:cloudwatch/dashboard:Dashboard" in types
    assert len(types) > 60
