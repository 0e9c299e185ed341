"""A copy of the project in a temporary folder, for tests that add toolsets or stacks."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_IGNORED = shutil.ignore_patterns(
    ".venv", "venv", "build", ".git", "__pycache__", "*.egg-info", ".*_cache", ".hypothesis"
)


def copy_project(destination: Path) -> Path:
    """Copy what ``pulumi up`` reads (stack files, lambdas, prompts, policies) into a folder."""
    for name in ("Pulumi.yaml", "constraints.txt"):
        shutil.copy2(REPO / name, destination / name)
    for stack_file in REPO.glob("Pulumi.*.yaml"):
        shutil.copy2(stack_file, destination / stack_file.name)
    for folder in ("lambdas", "prompts", "policies", "scripts"):
        if (REPO / folder).is_dir():
            shutil.copytree(REPO / folder, destination / folder, ignore=_IGNORED)
    return destination


def tree_digest(folder: Path) -> str:
    """A digest of every file's path and content under ``folder`` (caches left out)."""
    hasher = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and ".egg-info" not in str(path):
            hasher.update(path.relative_to(folder).as_posix().encode())
            hasher.update(path.read_bytes())
    return hasher.hexdigest()
