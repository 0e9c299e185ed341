"""The Lambda bundle: a reproducible zip of the runtime, a stack's toolsets and their wheels.

Same sources, files and requirements -> byte-identical zip -> same ``sourceCodeHash``, so
``pulumi up`` shows no code diff for an unchanged stack. Entries are sorted, timestamps fixed at
1980-01-01, modes fixed, and no host-compiled file (``__pycache__``, ``.pyc``) is copied in:
the only bytecode is what the build itself compiles, as follows.

Lambda cannot write a bytecode cache into its read-only task root, so a zip without bytecode
compiles every module on every cold start. When an interpreter of exactly the function's Python
version is found at build time (:func:`find_interpreter`), the bundle also ships the bytecode it
compiles, reproducibly: ``compileall --invalidation-mode unchecked-hash`` (no timestamps in the
``.pyc`` headers, and Lambda never re-validates against the source), one process compiling the
sorted tree (marshal output depends on what the process compiled before), a fixed hash seed
(the order of set constants) and a fixed path prefix (``/var/task``, the task root). Without
such an interpreter the bundle has none and :attr:`Bundle.bytecode_note` says why.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
import re
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
    "TASK_ROOT",
    "Architecture",
    "Bundle",
    "BundleError",
    "Interpreter",
    "Source",
    "build_bundle",
    "compile_bytecode",
    "fetch_wheels",
    "find_interpreter",
    "install_locked_wheels",
    "interpreter_variable",
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
#: Where Lambda unpacks the zip: the path prefix compiled into the bytecode (``co_filename``),
#: fixed so that the build directory never shows in the zip.
TASK_ROOT = "/var/task"
_VERSION = re.compile(r"^3\.\d+$")
# What a candidate interpreter says about itself: implementation, full version, cache tag.
_PROBE = "import sys; i = sys.implementation; print(i.name, *sys.version_info[:3], i.cache_tag)"


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
    #: The version of the interpreter that compiled the bytecode it ships (``"3.12.1"``), or
    #: ``None`` when it ships none (then :attr:`bytecode_note` says why).
    bytecode: str | None = None
    bytecode_note: str = ""


@dataclass(frozen=True)
class Interpreter:
    """A CPython interpreter found at build time: where it is, its version and cache tag."""

    path: Path
    version: str  # e.g. "3.12.1"
    cache_tag: str  # e.g. "cpython-312": the name part of the .pyc files it writes


def interpreter_variable(python_version: str) -> str:
    """The variable that names an interpreter of ``python_version`` (``AGENTRY_PYTHON_3_12``)."""
    return "AGENTRY_PYTHON_" + python_version.replace(".", "_")


def _version_key(folder: Path) -> tuple[int, ...]:
    return tuple(
        int(part) if part.isdigit() else -1 for part in folder.name.split("-")[-1].split(".")
    )


def _candidates(python_version: str) -> list[Path]:
    """Where an interpreter of ``python_version`` may be, most explicit first."""
    name = f"python{python_version}"
    found: list[Path] = []
    if explicit := os.environ.get(interpreter_variable(python_version)):
        found.append(Path(explicit))
    found.append(Path(sys.executable))
    found.extend(Path(folder) / name for folder in os.get_exec_path())
    # Interpreter managers put versions beside each other; their shims on PATH answer only
    # inside a project that selects that version, so look at their installs too (newest first).
    managers = (
        (Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions", ""),
        (
            Path(os.environ.get("UV_PYTHON_INSTALL_DIR") or Path.home() / ".local/share/uv/python"),
            "cpython-",
        ),
    )
    for root, prefix in managers:
        folders = sorted(root.glob(f"{prefix}{python_version}.*"), key=_version_key, reverse=True)
        found.extend(folder / "bin" / name for folder in folders)
    return found


def _describe(path: Path) -> Interpreter | None:
    if not path.is_file() or not os.access(path, os.X_OK):
        return None
    try:
        result = subprocess.run(
            [str(path), "-I", "-c", _PROBE], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    parts = result.stdout.split()
    if result.returncode != 0 or len(parts) != 5 or parts[0] != "cpython":
        return None
    return Interpreter(path=path, version=".".join(parts[1:4]), cache_tag=parts[4])


@functools.cache
def find_interpreter(python_version: str) -> Interpreter | None:
    """A CPython of exactly ``python_version`` (``"3.12"``) on this machine, or ``None``.

    Looked for in order: the variable :func:`interpreter_variable` names, the interpreter
    running this code, ``pythonX.Y`` on ``PATH`` (a shim that fails is passed over), and the
    installs of pyenv and uv. Each candidate is run once to ask its version.
    """
    if not _VERSION.match(python_version):
        raise BundleError(f"python_version: {python_version!r} is not 3.<minor>")
    seen: set[Path] = set()
    for candidate in _candidates(python_version):
        key = candidate.absolute()
        if key in seen:
            continue
        seen.add(key)
        interpreter = _describe(candidate)
        if interpreter is not None and interpreter.version.rsplit(".", 1)[0] == python_version:
            return interpreter
    return None


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


def fetch_wheels(
    reqs: list[str], architecture: Architecture, python_version: str, cache_dir: Path = BUILD_DIR
) -> Path:
    """The folder holding ``reqs`` installed from Linux wheels for ``architecture`` and CPython
    ``python_version`` (no bytecode), fetched once per set of inputs and cached."""
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


def install_locked_wheels(
    reqs: list[str], architecture: Architecture, python_version: str, cache_dir: Path = BUILD_DIR
) -> Path:
    """The folder holding the hashed lock's wheels for ``architecture`` and CPython
    ``python_version`` (no bytecode), installed with ``--require-hashes``; a cached folder is
    reused only once verified against the lock. ``BundleError`` if the lock does not cover
    ``reqs`` or is stale."""
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


def compile_bytecode(
    entries: Mapping[str, Path | bytes], interpreter: Interpreter, cache_dir: Path
) -> dict[str, bytes]:
    """The bytecode of every ``.py`` entry, by zip name, compiled by ``interpreter``.

    Reproducible (see the module doc); ``BundleError`` if a module does not compile.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="bytecode-", dir=cache_dir))
    try:
        for name in sorted(entries):
            if name.endswith(".py"):
                path = staging / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(_content(entries[name]))
        command = [
            str(interpreter.path), "-s", "-m", "compileall", "-q", "-j", "1",
            "--invalidation-mode", "unchecked-hash", "-d", TASK_ROOT, str(staging),
        ]  # fmt: skip
        # Only what the compiler needs: no PYTHON* variable of this machine changes its output.
        env = {"PYTHONHASHSEED": "0", "PATH": os.environ.get("PATH", "")}
        result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        if result.returncode != 0:
            raise BundleError(
                f"python {interpreter.version} could not compile the bundle: "
                f"{(result.stdout + result.stderr)[-2000:]}"
            )
        suffix = f".{interpreter.cache_tag}.pyc"
        return {
            path.relative_to(staging).as_posix(): path.read_bytes()
            for path in sorted(staging.rglob(f"*{suffix}"))
        }
    finally:
        shutil.rmtree(staging, ignore_errors=True)


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
    bytecode: bool = True,
) -> Bundle:
    """Build (or reuse) the bundle of ``sources`` plus generated ``files`` at the zip's root.

    The zip holds exactly the sources' packages, the third-party wheels of the hashed lock
    (``lambdas/bundle.lock``; Linux, ``architecture``, CPython ``python_version``), which must
    cover what the sources require, and ``files``: nothing else of the project; and, unless
    ``bytecode`` is false, their bytecode when an interpreter of ``python_version`` is found
    (:func:`find_interpreter`). Bytecode does not depend on the architecture.
    """
    if architecture not in _PLATFORMS:
        raise BundleError(f"architecture: {architecture!r} is not one of {sorted(_PLATFORMS)}")
    if not sources:
        raise BundleError("sources: a bundle needs at least the runtime")
    reqs = requirements(sources)
    deps_dir = install_locked_wheels(reqs, architecture, python_version, cache_dir)
    entries = _entries(sources, deps_dir)
    for name, content in sorted((files or {}).items()):
        if name in entries or "/" in name:
            raise BundleError(f"files: {name!r} clashes with the bundle or is not at its root")
        entries[name] = content
    interpreter = find_interpreter(python_version) if bytecode else None
    if interpreter is not None:
        note = f"compiled by CPython {interpreter.version}"
    elif bytecode:
        note = (
            f"no CPython {python_version} found at build time (set "
            f"{interpreter_variable(python_version)}): every cold start compiles every module"
        )
    else:
        note = "bytecode not asked for"
    compiled_by = interpreter.version if interpreter else "none"
    key = _inputs_key(entries, f"{deps_dir.name}\n{compiled_by}")
    dest = (
        cache_dir
        / "bundles"
        / f"agentry-runtime-{runtime_version}-{architecture}-py{python_version}-{key}.zip"
    )
    if not dest.is_file():
        if interpreter is not None:
            entries.update(compile_bytecode(entries, interpreter, cache_dir))
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
        bytecode=interpreter.version if interpreter else None,
        bytecode_note=note,
    )
