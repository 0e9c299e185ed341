"""The Lambda bundle: a reproducible zip of the runtime, a stack's toolsets and their wheels.

Same sources, files and requirements -> byte-identical zip -> same ``sourceCodeHash``, so
``pulumi up`` shows no code diff for an unchanged stack. Entries are sorted, timestamps fixed at
1980-01-01, modes fixed, and no host-compiled file (``__pycache__``, ``.pyc``) is included.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from agentry_platform.bundle_lock import (
    MARKER,
    BundleLock,
    LockError,
    read_constraints,
    verify_installed,
)

__all__ = [
    "BUILD_DIR",
    "CONSTRAINTS",
    "LAMBDAS_DIR",
    "LOCK_FILE",
    "PROVIDED",
    "Bundle",
    "BundleError",
    "Source",
    "build_bundle",
    "requirements",
]

Architecture = Literal["arm64", "x86_64"]

_REPO = Path(__file__).resolve().parents[2]
#: The Lambda distributions (``lambdas/``) and the gitignored build cache. The cache is shared
#: by every checkout that builds with this package (CI may point it elsewhere).
LAMBDAS_DIR = _REPO / "lambdas"
BUILD_DIR = Path(os.environ.get("AGENTRY_BUILD_DIR") or _REPO / "build")
#: Exact versions of transitive dependencies, so the bundle's wheels do not drift between builds.
CONSTRAINTS = _REPO / "constraints.txt"
#: The hashed lock the bundle's wheels are installed from (``make lock`` writes it).
LOCK_FILE = LAMBDAS_DIR / "bundle.lock"
#: Distributions the Lambda runtime provides (left out of every bundle and of the lock).
PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "urllib3")

# The Lambda Python runtime already ships these (and the function's boto3 is kept in step with
# the service by AWS); bundling them would add ~20 MB and pin an older SDK over the managed one.
_PROVIDED = frozenset(canonicalize_name(name) for name in PROVIDED)
_PLATFORMS: dict[str, str] = {"arm64": "manylinux2014_aarch64", "x86_64": "manylinux2014_x86_64"}
_EPOCH = (1980, 1, 1, 0, 0, 0)
_FILE_MODE = 0o644 << 16
_SKIP_DIRS = frozenset({"__pycache__", "tests", "bin"})
_SKIP_SUFFIXES = (".pyc", ".pyo")


class BundleError(RuntimeError):
    """The bundle could not be built (a bad distribution or a failed download)."""


@dataclass(frozen=True)
class Source:
    """One distribution to ship: its name, folder, top-level packages and requirements."""

    name: str
    folder: Path
    packages: tuple[str, ...]
    requirements: tuple[str, ...]


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
    #: The distributions it holds (ours), e.g. ``("agentry-flights", "agentry-runtime")``.
    distributions: tuple[str, ...] = ()


def requirements(sources: Sequence[Source]) -> list[str]:
    """The third-party requirements of ``sources``: ours and Lambda's own left out, sorted."""
    own = {canonicalize_name(source.name) for source in sources}
    kept: set[str] = set()
    for source in sources:
        for dep in source.requirements:
            try:
                requirement = Requirement(dep)
            except InvalidRequirement as exc:
                raise BundleError(f"{source.name}: dependency {dep!r}: {exc}") from None
            name = canonicalize_name(requirement.name)
            if name in own or name in _PROVIDED:
                continue
            if name.startswith("agentry-"):
                raise BundleError(
                    f"{source.name}: depends on {requirement.name}, which is not in the bundle"
                )
            kept.add(str(requirement))
    return sorted(kept)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _install_dependencies(
    reqs: list[str], architecture: Architecture, python_version: str, cache_dir: Path
) -> Path:
    """The lock's wheels for the target, installed (or a verified cached install reused)."""
    try:
        lock = BundleLock.load(LOCK_FILE)
        lock.check_covers(reqs, read_constraints(CONSTRAINTS))
    except LockError as exc:
        raise BundleError(str(exc)) from None
    key = _digest(lock.sha256, _PLATFORMS[architecture], python_version, "cp")[:24]
    target = cache_dir / "lambda-deps" / key
    if target.is_dir():
        if not verify_installed(target, lock):
            return target
        # Not what the lock installs any more (edited, partly deleted...): install it again.
        shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{key}-", dir=target.parent))
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        "--require-hashes", "--no-deps",
        "--platform", _PLATFORMS[architecture], "--only-binary=:all:",
        "--python-version", python_version, "--implementation", "cp",
        "--target", str(staging), "--no-compile", "--requirement", str(LOCK_FILE),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise BundleError(
            f"pip could not install {LOCK_FILE.name} for {architecture}: {result.stderr[-2000:]}"
        )
    (staging / MARKER).write_text(lock.sha256 + "\n", encoding="utf-8")
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


def _entries(sources: Sequence[Source], deps_dir: Path) -> dict[str, Path | bytes]:
    entries: dict[str, Path | bytes] = {}
    provided = _provided_roots(deps_dir)
    for path in _walk(deps_dir):
        name = path.relative_to(deps_dir).as_posix()
        if name.split("/", 1)[0] not in provided and name != MARKER:
            entries[name] = path
    for source in sources:
        for package in source.packages:
            if package in {name.split("/", 1)[0] for name in entries}:
                raise BundleError(f"{source.name}: package {package!r} is in the bundle twice")
            for path in _walk(source.folder / package):
                entries[path.relative_to(source.folder).as_posix()] = path
    return entries


def _content(entry: Path | bytes) -> bytes:
    return entry if isinstance(entry, bytes) else entry.read_bytes()


def _inputs_key(entries: Mapping[str, Path | bytes], deps_key: str) -> str:
    hasher = hashlib.sha256(deps_key.encode())
    for name in sorted(entries):
        hasher.update(name.encode())
        hasher.update(hashlib.sha256(_content(entries[name])).digest())
    return hasher.hexdigest()[:24]


def _write_zip(entries: Mapping[str, Path | bytes], dest: Path) -> None:
    tmp = dest.with_suffix(f".{os.getpid()}.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.external_attr = _FILE_MODE
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, whatever the building host is
            archive.writestr(info, _content(entries[name]), compresslevel=9)
    tmp.replace(dest)


def _sha256(path: Path) -> bytes:
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            hasher.update(chunk)
    return hasher.digest()


def build_bundle(
    sources: Sequence[Source],
    *,
    runtime_version: str,
    files: Mapping[str, bytes] | None = None,
    architecture: Architecture = "arm64",
    python_version: str = "3.12",
    cache_dir: Path = BUILD_DIR,
) -> Bundle:
    """Build (or reuse) the bundle of ``sources`` plus generated ``files`` at the zip's root.

    The zip holds exactly the sources' packages, the third-party wheels of the hashed lock
    (``lambdas/bundle.lock``; Linux, ``architecture``, CPython ``python_version``), which must
    cover what the sources require, and ``files``: nothing else of the project.
    """
    if architecture not in _PLATFORMS:
        raise BundleError(f"architecture: {architecture!r} is not one of {sorted(_PLATFORMS)}")
    if not sources:
        raise BundleError("sources: a bundle needs at least the runtime")
    reqs = requirements(sources)
    deps_dir = _install_dependencies(reqs, architecture, python_version, cache_dir)
    entries = _entries(sources, deps_dir)
    for name, content in sorted((files or {}).items()):
        if name in entries or "/" in name:
            raise BundleError(f"files: {name!r} clashes with the bundle or is not at its root")
        entries[name] = content
    key = _inputs_key(entries, deps_dir.name)
    dest = (
        cache_dir
        / "bundles"
        / f"agentry-runtime-{runtime_version}-{architecture}-py{python_version}-{key}.zip"
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
        runtime_version=runtime_version,
        architecture=architecture,
        python_version=python_version,
        distributions=tuple(sorted(source.name for source in sources)),
    )
