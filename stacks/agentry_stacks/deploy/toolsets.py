"""The Lambda distributions under ``lambdas/`` and the toolsets they provide.

Each folder of ``lambdas/`` with a ``pyproject.toml`` is a distribution. A distribution that
provides tools declares, in its ``[tool.agentry.toolset]`` table, what it needs from the
platform::

    [tool.agentry.toolset]
    # IAM statements added to the worker's role; ${table_arn}, ${region}, ${account_id} and
    # ${stack} are filled in. Scope every statement to ARNs.
    statements = [{ Sid = "ReadOrders", Action = ["dynamodb:GetItem"], Resource = ["..."] }]
    # Environment variables of the worker function.
    environment = { MY_SETTING = "value" }
    # A function beside the package, called by the stack program with the stack's context,
    # that declares the toolset's own AWS resources (never shipped in a bundle).
    infrastructure = "infrastructure.py:declare"

A toolset is a ``module:attribute`` path into one of these distributions that resolves to a
:class:`~agentry_runtime.tools.ToolRegistry`. Toolsets load from their folders without a
reinstall: a folder is put on ``sys.path`` when one of its packages is asked for.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import threading
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agentry_runtime.agents import TOOLSET_PATTERN
from agentry_runtime.errors import SettingsError
from agentry_runtime.tools import ToolRegistry

__all__ = [
    "RUNTIME_DISTRIBUTION",
    "Distribution",
    "DistributionError",
    "ToolsetDeclaration",
    "Workspace",
    "fill_placeholders",
    "shippable_requirements",
]

#: The distribution every function ships.
RUNTIME_DISTRIBUTION = "agentry-runtime"
_PLACEHOLDER = re.compile(r"\$\{([a-z_]+)\}")
#: What a statement or environment value may refer to.
PLACEHOLDERS = frozenset({"table_arn", "table_name", "region", "account_id", "stack"})


class DistributionError(ValueError):
    """A distribution or toolset cannot be used; the message names it and the reason."""


class ToolsetDeclaration(BaseModel):
    """The ``[tool.agentry.toolset]`` table of a distribution's ``pyproject.toml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    statements: list[dict[str, Any]] = Field(default_factory=list)
    environment: dict[str, str] = Field(default_factory=dict)
    infrastructure: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_./-]+\.py:[A-Za-z_]\w*$")

    @field_validator("statements")
    @classmethod
    def _statements_are_scoped(cls, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for index, statement in enumerate(value):
            missing = [key for key in ("Action", "Resource") if key not in statement]
            if missing:
                raise ValueError(f"[{index}]: needs {' and '.join(missing)}")
            if statement.get("Effect", "Allow") != "Allow":
                raise ValueError(f"[{index}].Effect: a toolset only adds Allow statements")
            for name in _PLACEHOLDER.findall(str(statement)):
                if name not in PLACEHOLDERS:
                    raise ValueError(f"[{index}]: unknown placeholder ${{{name}}}")
        return value

    @field_validator("environment")
    @classmethod
    def _names_are_variables(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or name.startswith("AWS_"):
                raise ValueError(f"{name!r}: not a variable a toolset may set")
            if name.startswith("AGENTRY_") and not name.startswith("AGENTRY_TOOLSET_"):
                raise ValueError(f"{name!r}: AGENTRY_* variables belong to the platform")
        return value


@dataclass(frozen=True)
class Distribution:
    """One folder of ``lambdas/``: its name, version, packages, dependencies, toolset needs."""

    name: str
    version: str
    folder: Path
    packages: tuple[str, ...]
    dependencies: tuple[Requirement, ...]
    toolset: ToolsetDeclaration | None = None

    def resolve(self, values: Mapping[str, str]) -> list[dict[str, Any]]:
        """The declared statements with their placeholders filled in from ``values``."""
        if self.toolset is None:
            return []
        return [_fill(statement, values) for statement in self.toolset.statements]

    def infrastructure_hook(self) -> Callable[..., Any] | None:
        """The declared infrastructure function (loaded from its file), if any."""
        if self.toolset is None or self.toolset.infrastructure is None:
            return None
        relative, _, function = self.toolset.infrastructure.partition(":")
        path = (self.folder / relative).resolve()
        if not path.is_relative_to(self.folder.resolve()) or not path.is_file():
            raise DistributionError(
                f"{self.name}: infrastructure {relative!r} is not a file of {self.folder.name}/"
            )
        module_name = (
            f"agentry_toolset_infrastructure_{canonicalize_name(self.name).replace('-', '_')}"
        )
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise DistributionError(f"{self.name}: cannot load {relative}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
        hook = getattr(module, function, None)
        if not callable(hook):
            raise DistributionError(f"{self.name}: {relative} has no function {function!r}")
        return hook


@dataclass
class Workspace:
    """Every distribution of a project's ``lambdas/`` folder, by name and by package."""

    lambdas_dir: Path
    distributions: dict[str, Distribution] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def discover(cls, lambdas_dir: Path) -> Workspace:
        """Read every ``lambdas/*/pyproject.toml``; ``DistributionError`` naming a bad one."""
        workspace = cls(lambdas_dir)
        if not lambdas_dir.is_dir():
            raise DistributionError(f"{lambdas_dir}: no lambdas folder")
        for pyproject in sorted(lambdas_dir.glob("*/pyproject.toml")):
            dist = _read_distribution(pyproject)
            if dist.name in workspace.distributions:
                raise DistributionError(f"{pyproject}: distribution {dist.name} is defined twice")
            workspace.distributions[dist.name] = dist
        if RUNTIME_DISTRIBUTION not in workspace.distributions:
            raise DistributionError(f"{lambdas_dir}: no {RUNTIME_DISTRIBUTION} distribution")
        return workspace

    @property
    def runtime(self) -> Distribution:
        """The runtime core distribution."""
        return self.distributions[RUNTIME_DISTRIBUTION]

    def providing(self, module: str) -> Distribution | None:
        """The distribution whose packages include ``module``'s top-level package."""
        top = module.split(".", 1)[0]
        return next((d for d in self.distributions.values() if top in d.packages), None)

    def load_toolset(self, path: str) -> tuple[ToolRegistry, Distribution]:
        """The registry at ``module:attribute`` and the distribution providing it."""
        if not re.match(TOOLSET_PATTERN, path):
            raise DistributionError(f"{path!r} is not module:attribute")
        module = path.partition(":")[0]
        dist = self.providing(module)
        if dist is None:
            raise DistributionError(
                f"{path!r}: no distribution under {self.lambdas_dir.name}/ provides "
                f"{module.split('.', 1)[0]!r}"
            )
        if dist.name == RUNTIME_DISTRIBUTION:
            raise DistributionError(f"{path!r}: the runtime is not a toolset")
        self.put_on_path(dist)
        # Imported here, after the folder is on sys.path; the runtime's loader does the rest.
        from agentry_runtime.agents import import_toolset

        try:
            return import_toolset(path), dist
        except SettingsError as exc:
            raise DistributionError(str(exc).removeprefix(f"toolset {path!r}: ")) from exc

    def put_on_path(self, dist: Distribution) -> None:
        """Make ``dist``'s packages importable from its folder (no install needed)."""
        folder = str(dist.folder.resolve())
        with self._lock:
            if all(_importable_from(package, dist.folder) for package in dist.packages):
                return
            if folder not in sys.path:
                sys.path.insert(0, folder)
            importlib.invalidate_caches()

    def closure(self, names: Sequence[str]) -> list[Distribution]:
        """The named distributions and every distribution of ours they depend on, sorted."""
        wanted: dict[str, Distribution] = {}
        pending = list(names)
        while pending:
            name = pending.pop()
            if name in wanted:
                continue
            dist = self.distributions.get(name)
            if dist is None:
                raise DistributionError(
                    f"{name}: not a distribution under {self.lambdas_dir.name}/"
                )
            wanted[name] = dist
            pending.extend(
                canonicalize_name(r.name)
                for r in dist.dependencies
                if canonicalize_name(r.name) in self._own_names()
            )
        return [wanted[name] for name in sorted(wanted)]

    def _own_names(self) -> set[str]:
        return {canonicalize_name(name) for name in self.distributions}


def _importable_from(package: str, folder: Path) -> bool:
    """Whether ``package`` already imports from ``folder`` (an editable install, or sys.path)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return False
    return any(
        Path(location).resolve().parent == folder.resolve()
        for location in spec.submodule_search_locations
    )


def _read_distribution(pyproject: Path) -> Distribution:
    try:
        with pyproject.open("rb") as handle:
            document = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise DistributionError(f"{pyproject}: cannot be read ({exc})") from None
    project = document.get("project")
    if not isinstance(project, dict) or not isinstance(project.get("name"), str):
        raise DistributionError(f"{pyproject}: [project] name is missing")
    folder = pyproject.parent
    packages = tuple(
        sorted(
            child.name
            for child in folder.iterdir()
            if child.is_dir() and (child / "__init__.py").is_file()
        )
    )
    if not packages:
        raise DistributionError(f"{pyproject}: the folder holds no package")
    try:
        dependencies = tuple(Requirement(dep) for dep in project.get("dependencies", []))
    except InvalidRequirement as exc:
        raise DistributionError(f"{pyproject}: [project] dependencies: {exc}") from None
    declared = document.get("tool", {}).get("agentry", {}).get("toolset")
    toolset = None
    if declared is not None:
        try:
            toolset = ToolsetDeclaration.model_validate(declared)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(map(str, error["loc"]))
            reason = str(error["msg"]).removeprefix("Value error, ")
            raise DistributionError(
                f"{pyproject}: [tool.agentry.toolset] {where}: {reason}"
            ) from None
    return Distribution(
        name=canonicalize_name(str(project["name"])),
        version=_version(project, folder, packages),
        folder=folder,
        packages=packages,
        dependencies=dependencies,
        toolset=toolset,
    )


def _version(project: Mapping[str, Any], folder: Path, packages: tuple[str, ...]) -> str:
    if isinstance(project.get("version"), str):
        return str(project["version"])
    # Dynamic versions live in the package's __init__.py (read, not imported).
    for package in packages:
        init = folder / package / "__init__.py"
        match = re.search(r'^__version__\s*=\s*["\']([^"\']+)["\']', init.read_text(), re.M)
        if match:
            return match.group(1)
    raise DistributionError(f"{folder / 'pyproject.toml'}: no version (static or __version__)")


def fill_placeholders(template: str, values: Mapping[str, str]) -> str:
    """``template`` with its ``${name}`` placeholders replaced from ``values``."""
    return str(_fill(template, values))


def _fill(value: Any, values: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return _PLACEHOLDER.sub(lambda m: values[m.group(1)], value)
    if isinstance(value, list):
        return [_fill(item, values) for item in value]
    if isinstance(value, dict):
        return {key: _fill(item, values) for key, item in value.items()}
    return value


def shippable_requirements(lambdas_dir: Path) -> list[str]:
    """The third-party requirements of every distribution that can ship in a bundle: the
    runtime and each toolset (what ``lambdas/bundle.lock`` must cover)."""
    # Imported here: the bundle module is the platform's, and this one is read by it too.
    from agentry_platform.bundle import Source, requirements

    workspace = Workspace.discover(lambdas_dir)
    shipped = [
        dist
        for dist in workspace.distributions.values()
        if dist.name == RUNTIME_DISTRIBUTION or dist.toolset is not None
    ]
    return requirements(
        [
            Source(
                name=dist.name,
                folder=dist.folder,
                packages=dist.packages,
                requirements=tuple(str(r) for r in dist.dependencies),
            )
            for dist in shipped
        ]
    )
