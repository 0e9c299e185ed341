"""The bundle's hashed lock: every third-party wheel a Lambda bundle may hold, with its sha256.

``lambdas/bundle.lock`` pins, for every target the stacks may choose (arm64 and x86_64, CPython
3.12 and 3.13), each distribution the shipped distributions need (``lambdas/*/pyproject.toml``,
resolved under ``constraints.txt``, those the Lambda runtime provides left out) and the sha256 of
each wheel pip would pick for each target. It is pip's own requirements format, installed with
``pip install --require-hashes --no-deps``: a wheel whose hash is not in the lock is refused, and
nothing outside the lock is installed. It holds no index URL and no path: only names, versions
and hashes. Regenerate it with ``make lock`` (``agentry lock``) after changing a pin; a build
with a stale lock fails saying so.

The cached dependency folder (``build/lambda-deps/<key>``) is verified against the lock before it
is reused: the distributions installed must be exactly the lock's pins, and every file each
wheel's ``RECORD`` lists must still have the sha256 it records (pip checked the wheels themselves
against the lock when it installed them). A folder that fails is rebuilt.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

__all__ = [
    "LOCK_TARGETS",
    "MARKER",
    "BundleLock",
    "LockError",
    "LockedDistribution",
    "generate_lock",
    "inputs_digest",
    "lock_from_reports",
    "read_constraints",
    "verify_installed",
]

#: (platform tag, CPython version) of every target a stack may choose.
LOCK_TARGETS: tuple[tuple[str, str], ...] = (
    ("manylinux2014_aarch64", "3.12"),
    ("manylinux2014_aarch64", "3.13"),
    ("manylinux2014_x86_64", "3.12"),
    ("manylinux2014_x86_64", "3.13"),
)
_REQUIREMENT_LINE = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s\\]+)")
_HASH = re.compile(r"--hash=sha256:(?P<digest>[0-9a-f]{64})")
_INPUTS = re.compile(r"^# inputs-sha256: (?P<digest>[0-9a-f]{64})$", re.MULTILINE)
#: A file of the target folder recording which lock it was installed from.
MARKER = ".agentry-bundle-lock"


class LockError(RuntimeError):
    """The lock is missing, malformed, stale, or does not cover what a bundle needs."""


@dataclass(frozen=True)
class LockedDistribution:
    """One pin of the lock: a distribution, its version, the sha256 of its wheels."""

    name: str
    version: str
    hashes: tuple[str, ...]


@dataclass(frozen=True)
class BundleLock:
    """A parsed lock: its pins by canonical name, the digest of the requirements it was made
    from, and the digest of the file itself."""

    distributions: Mapping[str, LockedDistribution]
    inputs_sha256: str
    sha256: str = ""
    text: str = field(default="", repr=False)

    @classmethod
    def parse(cls, text: str, source: str = "lambdas/bundle.lock") -> BundleLock:
        """Read a lock; ``LockError`` naming the line that is not a pin with hashes."""
        inputs = _INPUTS.search(text)
        if inputs is None:
            raise LockError(f"{source}: no '# inputs-sha256:' line: regenerate it with make lock")
        pins: dict[str, LockedDistribution] = {}
        logical = re.sub(r"\\\n", " ", text)
        for number, line in enumerate(logical.splitlines(), start=1):
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            match = _REQUIREMENT_LINE.match(stripped)
            hashes = tuple(m["digest"] for m in _HASH.finditer(stripped))
            if match is None or not hashes:
                raise LockError(f"{source}: line {number}: expected 'name==version --hash=...'")
            name = canonicalize_name(match["name"])
            pins[name] = LockedDistribution(name, match["version"], hashes)
        return cls(
            distributions=pins,
            inputs_sha256=inputs["digest"],
            sha256=hashlib.sha256(text.encode()).hexdigest(),
            text=text,
        )

    @classmethod
    def load(cls, path: Path) -> BundleLock:
        """Read the lock file at ``path``."""
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise LockError(
                f"{path}: cannot read the bundle lock ({exc.strerror}): run make lock"
            ) from None
        return cls.parse(text, str(path))

    def check_covers(self, requirements: Iterable[str], constraints: Mapping[str, str]) -> None:
        """``LockError`` unless the lock pins, for every requirement, a version it accepts, and
        every pin is the version ``constraints`` (name -> version) pins, if it pins one."""
        problems = []
        for raw in requirements:
            requirement = Requirement(raw)
            pin = self.distributions.get(canonicalize_name(requirement.name))
            if pin is None:
                problems.append(f"{requirement.name} is not in the lock")
            elif not requirement.specifier.contains(Version(pin.version), prereleases=True):
                problems.append(f"{requirement.name}=={pin.version} does not satisfy {raw}")
        for locked, pin in sorted(self.distributions.items()):
            wanted = constraints.get(locked)
            if wanted is not None and wanted != pin.version:
                problems.append(f"it pins {locked}=={pin.version}, constraints.txt {wanted}")
        if problems:
            raise LockError(f"lambdas/bundle.lock is stale ({'; '.join(problems)}): run make lock")


def inputs_digest(requirements: Sequence[str], constraints: Mapping[str, str]) -> str:
    """Digest of what the lock is made from: the requirements and their constrained pins."""
    names = {canonicalize_name(Requirement(r).name) for r in requirements}
    pinned = sorted(f"{name}=={constraints[name]}" for name in names if name in constraints)
    return hashlib.sha256("\n".join([*sorted(requirements), *pinned]).encode()).hexdigest()


def read_constraints(path: Path) -> dict[str, str]:
    """``name -> version`` of every ``name==version`` line of a constraints file."""
    pins: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _REQUIREMENT_LINE.match(line.strip())
        if match:
            pins[canonicalize_name(match["name"])] = match["version"]
    return pins


def lock_from_reports(
    reports: Mapping[tuple[str, str], Mapping[str, Any]],
    *,
    provided: Iterable[str],
    inputs_sha256: str,
) -> str:
    """The lock text from pip's installation reports (``pip install --dry-run --report``), one
    per target. Every target must resolve the same versions; the wheels' hashes are merged."""
    skip = {canonicalize_name(name) for name in provided}
    versions: dict[str, str] = {}
    hashes: dict[str, set[str]] = {}
    resolved_sets = []
    for target, report in sorted(reports.items()):
        resolved = set()
        for item in report.get("install", []):
            metadata, download = item["metadata"], item["download_info"]
            name: str = canonicalize_name(metadata["name"])
            if name in skip:
                continue
            resolved.add(name)
            if versions.setdefault(name, metadata["version"]) != metadata["version"]:
                raise LockError(f"{name}: {target} resolves another version than other targets")
            digest = download.get("archive_info", {}).get("hashes", {}).get("sha256")
            if not digest:
                raise LockError(f"{name}: pip's report for {target} has no sha256")
            hashes.setdefault(name, set()).add(digest)
        resolved_sets.append(resolved)
    if any(resolved != resolved_sets[0] for resolved in resolved_sets):
        raise LockError("targets resolve different distributions: the lock would not fit all")
    lines = [
        "# Linux wheels of the Lambda bundle's third-party dependencies, with their sha256.",
        "# Generated by `make lock` (agentry lock) from lambdas/*/pyproject.toml under",
        "# constraints.txt, for arm64 and x86_64, CPython 3.12 and 3.13; do not edit by hand.",
        "# Installed with pip install --require-hashes --no-deps (platform/agentry_platform/",
        "# bundle_lock.py); the Lambda runtime's own boto3 stack is left out.",
        f"# inputs-sha256: {inputs_sha256}",
    ]
    for name in sorted(versions):
        entry = [f"{name}=={versions[name]}"]
        entry += [f"    --hash=sha256:{digest}" for digest in sorted(hashes[name])]
        lines.append(" \\\n".join(entry))
    return "\n".join(lines) + "\n"


def generate_lock(
    requirements: Sequence[str],
    *,
    constraints: Path,
    provided: Iterable[str],
    targets: Sequence[tuple[str, str]] = LOCK_TARGETS,
) -> str:
    """Resolve ``requirements`` for every target with pip (network: the package index) and
    return the lock text."""
    reports: dict[tuple[str, str], Mapping[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="agentry-lock-") as scratch:
        for platform, python in targets:
            report = Path(scratch) / f"{platform}-{python}.json"
            command = [
                sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                "--dry-run", "--ignore-installed", "--report", str(report),
                "--platform", platform, "--only-binary=:all:", "--python-version", python,
                "--implementation", "cp", "--target", str(Path(scratch) / "target"),
                "--constraint", str(constraints), *requirements,
            ]  # fmt: skip
            result = subprocess.run(command, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise LockError(f"pip could not resolve for {platform} {python}: {result.stderr}")
            reports[(platform, python)] = json.loads(report.read_text(encoding="utf-8"))
    return lock_from_reports(
        reports,
        provided=provided,
        inputs_sha256=inputs_digest(requirements, read_constraints(constraints)),
    )


def _record_hash(path: Path) -> str:
    digest = hashlib.sha256(path.read_bytes()).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def verify_installed(folder: Path, lock: BundleLock) -> list[str]:
    """Why ``folder`` is not exactly the lock's wheels, installed intact (empty: it is)."""
    problems: list[str] = []
    marker = folder / MARKER
    if not marker.is_file() or marker.read_text(encoding="utf-8").strip() != lock.sha256:
        problems.append("it was not installed from this lock")
        return problems
    installed: dict[str, str] = {}
    recorded: set[str] = {MARKER}
    for info in sorted(folder.glob("*.dist-info")):
        name, _, version = info.name.removesuffix(".dist-info").rpartition("-")
        installed[canonicalize_name(name)] = version
        record = info / "RECORD"
        if not record.is_file():
            problems.append(f"{info.name} has no RECORD")
            continue
        for line in record.read_text(encoding="utf-8").splitlines():
            path, expected, _size = [*line.rsplit(",", 2), "", ""][:3]
            if not path:
                continue
            recorded.add(path.split("/", 1)[0])
            target = folder / path
            if not expected:
                continue  # RECORD itself, and files pip writes (INSTALLER, REQUESTED)
            if not target.is_file():
                problems.append(f"{path} is missing")
            elif _record_hash(target) != expected:
                problems.append(f"{path} does not have the hash its wheel records")
    wanted = {name: pin.version for name, pin in lock.distributions.items()}
    if installed != wanted:
        problems.append(f"its distributions {sorted(installed.items())} are not the lock's")
    strays = sorted(p.name for p in folder.iterdir() if p.name not in recorded)
    if strays:
        problems.append(f"it holds files no wheel installed: {strays}")
    return problems
