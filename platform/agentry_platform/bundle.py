"""The Lambda bundle: a reproducible zip of the runtime and its Linux wheels.

Same source and requirements -> byte-identical zip -> same ``sourceCodeHash``, so ``pulumi up``
shows no code diff for an unchanged runtime. Entries are sorted, timestamps fixed at
1980-01-01, modes fixed, and no host-compiled file (``__pycache__``, ``.pyc``) is included.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

__all__ = [
    "BUILD_DIR",
    "CONSTRAINTS",
    "LAMBDAS_DIR",
    "Bundle",
    "BundleError",
    "build_bundle",
    "requirements",
]

Architecture = Literal["arm64", "x86_64"]

_REPO = Path(__file__).resolve().parents[2]
#: The runtime's source distribution (``lambdas/``) and the gitignored build cache.
LAMBDAS_DIR = _REPO / "lambdas"
BUILD_DIR = _REPO / "build"
#: Exact versions of transitive dependencies, so the bundle's wheels do not drift between builds.
CONSTRAINTS = _REPO / "constraints.txt"

# The Lambda Python runtime already ships these (and the function's boto3 is kept in step with
# the service by AWS); bundling them would add ~20 MB and pin an older SDK over the managed one.
_PROVIDED = frozenset(
    canonicalize_name(name) for name in ("boto3", "botocore", "s3transfer", "jmespath", "urllib3")
)
_PLATFORMS: dict[str, str] = {"arm64": "manylinux2014_aarch64", "x86_64": "manylinux2014_x86_64"}
_EPOCH = (1980, 1, 1, 0, 0, 0)
_FILE_MODE = 0o644 << 16
_SKIP_DIRS = frozenset({"__pycache__", "tests", "bin"})
_SKIP_SUFFIXES = (".pyc", ".pyo")


class BundleError(RuntimeError):
    """The bundle could not be built (bad ``lambdas/pyproject.toml`` or a failed download)."""


@dataclass(frozen=True)
class Bundle:
    """A built bundle: where it is, its sha256 (hex, and base64 for ``sourceCodeHash``)."""

    path: Path
    sha256_hex: str
    sha256_base64: str
    size: int
    runtime_version: str
    architecture: Architecture
    python_version: str


def _pyproject(lambdas_dir: Path) -> dict[str, object]:
    try:
        with (lambdas_dir / "pyproject.toml").open("rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise BundleError(f"{lambdas_dir / 'pyproject.toml'}: cannot be read: {exc}") from exc


def requirements(lambdas_dir: Path = LAMBDAS_DIR) -> list[str]:
    """The runtime's dependencies minus what the Lambda runtime provides, sorted, extras kept."""
    project = _pyproject(lambdas_dir).get("project", {})
    deps = project.get("dependencies", []) if isinstance(project, dict) else []
    kept = [
        str(Requirement(dep))
        for dep in deps
        if canonicalize_name(Requirement(dep).name) not in _PROVIDED
    ]
    return sorted(kept)


def _package_names(lambdas_dir: Path) -> list[str]:
    # The packages setuptools ships (``include = ["agentry_runtime*"]``): top-level dirs only.
    return sorted(
        child.name
        for child in lambdas_dir.iterdir()
        if child.is_dir() and (child / "__init__.py").is_file()
    )


def _runtime_version(lambdas_dir: Path) -> str:
    # The version is declared dynamic (``attr = "agentry_runtime.__version__"``); read the
    # assignment with ast rather than import it, since ``lambdas_dir`` may be any copy.
    dynamic = _pyproject(lambdas_dir).get("tool", {})
    attr = (
        dynamic.get("setuptools", {}).get("dynamic", {}).get("version", {}).get("attr", "")
        if isinstance(dynamic, dict)
        else ""
    )
    module, _, name = str(attr).rpartition(".")
    if not module:
        raise BundleError("lambdas/pyproject.toml: tool.setuptools.dynamic.version.attr is missing")
    source = lambdas_dir.joinpath(*module.split("."), "__init__.py")
    for node in ast.parse(source.read_text(encoding="utf-8")).body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == name for t in node.targets)
            and isinstance(node.value, ast.Constant)
        ):
            return str(node.value.value)
    raise BundleError(f"{source}: no constant assignment to {name}")


def _digest(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _install_dependencies(
    reqs: list[str], architecture: Architecture, python_version: str, cache_dir: Path
) -> Path:
    constraints = CONSTRAINTS.read_text(encoding="utf-8") if CONSTRAINTS.is_file() else ""
    key = _digest(*reqs, _PLATFORMS[architecture], python_version, "cp", constraints)[:24]
    target = cache_dir / "lambda-deps" / key
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{key}-", dir=target.parent))
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        "--platform", _PLATFORMS[architecture], "--only-binary=:all:",
        "--python-version", python_version, "--implementation", "cp",
        "--target", str(staging), "--no-compile", *reqs,
        *(["--constraint", str(CONSTRAINTS)] if constraints else []),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise BundleError(f"pip could not fetch {reqs} for {architecture}: {result.stderr[-2000:]}")
    try:
        # Atomic publish: a concurrent build (pytest-xdist) of the same key may have won.
        staging.rename(target)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _walk(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS]
        for filename in filenames:
            if not filename.endswith(_SKIP_SUFFIXES):
                yield Path(dirpath, filename)


def _provided_roots(deps_dir: Path) -> set[str]:
    # Transitive dependencies (aws-xray-sdk pulls botocore) land in the target too; drop every
    # top-level file or folder that a provided distribution's RECORD lists.
    roots: set[str] = set()
    for info in deps_dir.glob("*.dist-info"):
        name = info.name.removesuffix(".dist-info").rpartition("-")[0]
        if canonicalize_name(name) in _PROVIDED and (info / "RECORD").is_file():
            for line in (info / "RECORD").read_text(encoding="utf-8").splitlines():
                roots.add(line.split(",", 1)[0].split("/", 1)[0])
    return roots


def _entries(lambdas_dir: Path, deps_dir: Path) -> dict[str, Path]:
    entries: dict[str, Path] = {}
    provided = _provided_roots(deps_dir)
    for path in _walk(deps_dir):
        name = path.relative_to(deps_dir).as_posix()
        if name.split("/", 1)[0] not in provided:
            entries[name] = path
    for package in _package_names(lambdas_dir):
        for path in _walk(lambdas_dir / package):
            entries[path.relative_to(lambdas_dir).as_posix()] = path
    return entries


def _inputs_key(entries: dict[str, Path], deps_key: str) -> str:
    hasher = hashlib.sha256(deps_key.encode())
    for name in sorted(entries):
        hasher.update(name.encode())
        hasher.update(hashlib.sha256(entries[name].read_bytes()).digest())
    return hasher.hexdigest()[:24]


def _write_zip(entries: dict[str, Path], dest: Path) -> None:
    tmp = dest.with_suffix(f".{os.getpid()}.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.external_attr = _FILE_MODE
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, whatever the building host is
            archive.writestr(info, entries[name].read_bytes(), compresslevel=9)
    tmp.replace(dest)


def _sha256(path: Path) -> bytes:
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            hasher.update(chunk)
    return hasher.digest()


def build_bundle(
    *,
    architecture: Architecture = "arm64",
    python_version: str = "3.12",
    lambdas_dir: Path = LAMBDAS_DIR,
    cache_dir: Path = BUILD_DIR,
) -> Bundle:
    """Build (or reuse) the bundle of ``lambdas_dir`` for a Lambda architecture and Python."""
    if architecture not in _PLATFORMS:
        raise BundleError(f"architecture: {architecture!r} is not one of {sorted(_PLATFORMS)}")
    reqs = requirements(lambdas_dir)
    version = _runtime_version(lambdas_dir)
    deps_dir = _install_dependencies(reqs, architecture, python_version, cache_dir)
    entries = _entries(lambdas_dir, deps_dir)
    key = _inputs_key(entries, deps_dir.name)
    dest = (
        cache_dir
        / "bundles"
        / f"agentry-runtime-{version}-{architecture}-py{python_version}-{key}.zip"
    )
    if not dest.is_file():
        dest.parent.mkdir(parents=True, exist_ok=True)
        _write_zip(entries, dest)
    digest = _sha256(dest)
    return Bundle(
        path=dest,
        sha256_hex=digest.hex(),
        sha256_base64=base64.b64encode(digest).decode("ascii"),
        size=dest.stat().st_size,
        runtime_version=version,
        architecture=architecture,
        python_version=python_version,
    )
