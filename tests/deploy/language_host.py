"""Pulumi's Python language host, as far as installing and starting a program goes.

No Pulumi CLI can run here, so this follows its source (pulumi/pulumi, ``sdk/python/toolchain/
pip.go`` and ``sdk/python/cmd/pulumi-language-python/main.go``): with ``toolchain: pip`` and a
``virtualenv`` option, ``pulumi install``/``pulumi up`` create the virtualenv under the project
root if it is missing, run ``python -m pip install --upgrade pip setuptools wheel`` in it, then,
only if ``requirements.txt`` exists in the program directory (``main:``), ``python -m pip install
-r requirements.txt`` from that directory. The program then runs with the program directory as
its working directory, its ``__main__.py`` executed by the virtualenv's interpreter.
"""

from __future__ import annotations

import os
import subprocess
import venv
from dataclasses import dataclass
from pathlib import Path

import yaml

__all__ = ["HostProject", "install_dependencies", "run_program_under_mocks"]

#: Runs ``<program dir>/__main__.py`` under recording mocks with a stack's config, the way the
#: host's exec script runs it (pulumi imported first), and prints the resource types it declared.
_DRIVER = r"""
import json, runpy, sys
from pathlib import Path

import pulumi  # the host's exec script imports the SDK first
from pulumi import runtime
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from agentry_stacks.offline.plan import RecordingMocks, RecordingMonitor
from agentry_stacks.deploy.config import pulumi_config_values

project, stack = Path(sys.argv[1]), sys.argv[2]
mocks = RecordingMocks(region="us-east-1")
monitor = RecordingMonitor(mocks)
runtime.set_all_config(pulumi_config_values(stack, project_dir=project))
runtime.set_mocks(mocks, project="agentry", stack=stack, preview=False, monitor=monitor)
_sync_await(run_pulumi_func(lambda: runpy.run_path(".", run_name="__main__")))
print(json.dumps({"types": sorted(r["type"] for r in monitor.records)}))
"""


@dataclass(frozen=True)
class HostProject:
    """What the host reads from ``Pulumi.yaml``."""

    root: Path
    toolchain: str
    virtualenv: Path
    program_dir: Path

    @classmethod
    def read(cls, root: Path) -> HostProject:
        """Parse the project file as the host does (``runtime.options`` and ``main``)."""
        document = yaml.safe_load((root / "Pulumi.yaml").read_text(encoding="utf-8"))
        runtime = document["runtime"]
        options = runtime.get("options", {}) if isinstance(runtime, dict) else {}
        return cls(
            root=root,
            toolchain=str(options.get("toolchain", "pip")),
            virtualenv=root / str(options["virtualenv"]),
            program_dir=root / str(document.get("main", ".")),
        )

    @property
    def python(self) -> Path:
        """The virtualenv's interpreter."""
        return self.virtualenv / "bin" / "python"


def _pip(project: HostProject, *args: str) -> None:
    subprocess.run(
        [str(project.python), "-m", "pip", "install", "--disable-pip-version-check", *args],
        cwd=project.program_dir,
        check=True,
        capture_output=True,
        text=True,
        # The departures, for speed only (what is installed is the same): no byte-compiling
        # (pulumi-aws alone is thousands of modules; Python compiles on import), and our
        # distributions built with the setuptools the host just upgraded in the virtualenv
        # rather than one isolated build environment each.
        env={**os.environ, "PIP_NO_COMPILE": "1", "PIP_NO_BUILD_ISOLATION": "0"},
    )


def install_dependencies(project: HostProject) -> bool:
    """``pulumi install``: returns whether a requirements file was installed."""
    if project.toolchain != "pip":
        raise ValueError(f"toolchain: {project.toolchain!r} is not the pip toolchain")
    if not (project.virtualenv / "bin" / "python").is_file():  # `python -m venv` once
        venv.EnvBuilder(with_pip=True).create(project.virtualenv)
    _pip(project, "--upgrade", "pip", "setuptools", "wheel")
    if not (project.program_dir / "requirements.txt").is_file():
        return False  # the host stops here: an empty virtualenv
    _pip(project, "-r", "requirements.txt")
    return True


def run_program_under_mocks(
    project: HostProject, stack: str, *, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Start the program from its directory with the virtualenv's interpreter, under mocks."""
    return subprocess.run(
        [str(project.python), "-c", _DRIVER, str(project.root), stack],
        cwd=project.program_dir,
        capture_output=True,
        text=True,
        check=False,
        env={
            **{k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}},
            **(env or {}),
            "PYTHONNOUSERSITE": "1",
        },
        timeout=600,
    )
