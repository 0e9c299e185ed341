"""Supply chain: the bundle's wheels come from a hashed lock, and the cache is verified first.

Needs the package index once per machine (pip's cache and ``build/`` serve later runs).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from agentry_platform import bundle as bundle_module
from agentry_platform.bundle import (
    CONSTRAINTS,
    LAMBDAS_DIR,
    LOCK_FILE,
    PROVIDED,
    BundleError,
    Source,
    build_bundle,
    install_locked_wheels,
    requirements,
)
from agentry_platform.bundle_lock import (
    MARKER,
    BundleLock,
    LockError,
    inputs_digest,
    lock_from_reports,
    read_constraints,
    verify_installed,
)
from agentry_stacks.deploy.toolsets import Workspace, shippable_requirements

REPO = Path(__file__).resolve().parents[2]


def _pip(commands: list[Any]) -> list[list[str]]:
    """The pip invocations among recorded subprocess commands (the bytecode compiler aside)."""
    return [list(c) for c in commands if list(c[1:3]) == ["-m", "pip"]]


@pytest.fixture(scope="module")
def sources() -> list[Source]:
    workspace = Workspace.discover(LAMBDAS_DIR)
    runtime = workspace.runtime
    return [
        Source(
            name=runtime.name,
            folder=runtime.folder,
            packages=runtime.packages,
            requirements=tuple(str(r) for r in runtime.dependencies),
        )
    ]


# --- the committed lock ------------------------------------------------------------------------


def test_lock_holds_only_names_versions_and_hashes() -> None:
    text = LOCK_FILE.read_text(encoding="utf-8")
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        assert re.fullmatch(
            r"([a-z0-9-]+==[0-9][A-Za-z0-9.]* \\|    --hash=sha256:[0-9a-f]{64}( \\)?)", line
        ), line
    # No registry address, and no path of the machine that generated it (the checkout's own).
    assert "://" not in text
    assert str(Path(__file__).resolve().parents[2]) not in text
    assert str(Path.home()) not in text


def test_lock_is_current_for_what_ships() -> None:
    # GIVEN what the runtime and every toolset require, and the pins of constraints.txt
    lock = BundleLock.load(LOCK_FILE)
    requirements = shippable_requirements(LAMBDAS_DIR)
    constraints = read_constraints(CONSTRAINTS)
    # THEN the lock was made from exactly those, covers them, and pins what constraints pin
    assert lock.inputs_sha256 == inputs_digest(requirements, constraints), "run make lock"
    lock.check_covers(requirements, constraints)
    # AND the Lambda runtime's own packages are left out
    assert not {name.lower() for name in PROVIDED} & set(lock.distributions)
    # AND native wheels carry one hash per target (arm64/x86_64 x CPython 3.12/3.13)
    assert len(lock.distributions["pydantic-core"].hashes) == 4


def test_a_stale_lock_is_named() -> None:
    lock = BundleLock.load(LOCK_FILE)
    with pytest.raises(
        LockError, match=r"pydantic==2\.14\.3, constraints\.txt 2\.99\.0.*make lock"
    ):
        lock.check_covers([], {"pydantic": "2.99.0"})
    with pytest.raises(LockError, match=r"left-pad is not in the lock"):
        lock.check_covers(["left-pad==1.0"], {})


def test_lock_from_reports_merges_targets_and_drops_provided() -> None:
    def report(wheel_hash: str) -> dict[str, Any]:
        item = lambda name, version, digest: {  # noqa: E731
            "metadata": {"name": name, "version": version},
            "download_info": {
                "url": "https://files.example/x.whl",
                "archive_info": {"hashes": {"sha256": digest}},
            },
        }
        return {"install": [item("Pydantic_Core", "2.0", wheel_hash), item("boto3", "1", "b" * 64)]}

    text = lock_from_reports(
        {("arm", "3.12"): report("1" * 64), ("x86", "3.12"): report("2" * 64)},
        provided=PROVIDED,
        inputs_sha256="0" * 64,
    )
    lock = BundleLock.parse(text)
    assert list(lock.distributions) == ["pydantic-core"]
    assert lock.distributions["pydantic-core"].hashes == ("1" * 64, "2" * 64)
    assert "https" not in text


# --- installing from it ------------------------------------------------------------------------


def test_bundle_wheels_are_installed_with_require_hashes(
    sources: list[Source], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a private cache, so pip really runs
    commands: list[list[str]] = []
    real_run = subprocess.run

    def recording(command: list[str], **kwargs: Any) -> Any:
        commands.append(list(command))
        return real_run(command, **kwargs)

    monkeypatch.setattr(bundle_module.subprocess, "run", recording)
    built = build_bundle(sources, runtime_version="9.9.9", cache_dir=tmp_path)
    # THEN pip installed exactly the lock, hashes required, no dependency resolution
    [command] = _pip(commands)
    assert {"--require-hashes", "--no-deps"} <= set(command)
    assert command[command.index("--requirement") + 1] == str(LOCK_FILE)
    deps = next((tmp_path / "lambda-deps").iterdir())
    assert verify_installed(deps, BundleLock.load(LOCK_FILE)) == []
    # AND the marker never reaches the zip
    import zipfile

    with zipfile.ZipFile(built.path) as archive:
        assert MARKER not in archive.namelist()
    # AND a second build reuses the verified folder without pip
    build_bundle(sources, runtime_version="9.9.9", cache_dir=tmp_path)
    assert len(_pip(commands)) == 1


def test_a_wheel_whose_hash_is_not_the_locks_is_refused(
    sources: list[Source], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a lock whose hash for pydantic is wrong
    text = LOCK_FILE.read_text(encoding="utf-8")
    pin = BundleLock.parse(text).distributions["pydantic"].hashes[0]
    forged = tmp_path / "bundle.lock"
    forged.write_text(text.replace(pin, "0" * 64))
    monkeypatch.setattr(bundle_module, "LOCK_FILE", forged)
    # WHEN the bundle is built THEN pip refuses the wheel, and no folder is published
    with pytest.raises(BundleError, match=r"(?i)hash"):
        build_bundle(sources, runtime_version="9.9.9", cache_dir=tmp_path / "build")
    assert not list((tmp_path / "build" / "lambda-deps").glob("[0-9a-f]*[0-9a-f]"))


def _private_copy_of_the_cache(tmp_path: Path, sources: list[Source]) -> Path:
    # The shared, verified folder of the default target (arm64, CPython 3.12), as a build uses it.
    shared = install_locked_wheels(requirements(sources), "arm64", "3.12")
    copy = tmp_path / shared.name
    shutil.copytree(shared, copy, symlinks=True)
    return copy


@pytest.fixture(scope="module")
def cached_copy(tmp_path_factory: pytest.TempPathFactory, sources: list[Source]) -> Path:
    """A private, verified copy of the shared dependency folder (copied once per module)."""
    return _private_copy_of_the_cache(tmp_path_factory.mktemp("cache"), sources)


def _tampered(cached_copy: Path, tmp_path: Path, tamper: str) -> Path:
    folder = tmp_path / "build" / "lambda-deps" / cached_copy.name
    shutil.copytree(cached_copy, folder, symlinks=True)
    target = folder / "pydantic" / "main.py"
    if tamper == "edit":
        target.write_text(target.read_text() + "\nprint('injected')\n")
    elif tamper == "delete":
        target.unlink()
    elif tamper == "stray":
        (folder / "sitecustomize.py").write_text("print('injected')\n")
    else:
        (folder / MARKER).write_text("0" * 64)
    return folder


@pytest.mark.parametrize("tamper", ["edit", "delete", "stray", "marker"])
def test_verification_finds_a_tampered_cache(
    cached_copy: Path, tmp_path: Path, tamper: str
) -> None:
    lock = BundleLock.load(LOCK_FILE)
    assert verify_installed(cached_copy, lock) == []
    # GIVEN a cached folder no longer what the lock installs THEN verification says why
    assert verify_installed(_tampered(cached_copy, tmp_path, tamper), lock)


def test_a_tampered_cache_is_installed_again(
    sources: list[Source],
    cached_copy: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a cached folder with an edited module
    folder = _tampered(cached_copy, tmp_path, "edit")
    calls: list[Any] = []
    real_run = subprocess.run

    def recording(command: list[str], **kwargs: Any) -> Any:
        calls.append(command)
        return real_run(command, **kwargs)

    monkeypatch.setattr(bundle_module.subprocess, "run", recording)
    # WHEN a bundle is built THEN the folder is installed again rather than shipped
    build_bundle(sources, runtime_version="9.9.9", cache_dir=tmp_path / "build")
    assert len(_pip(calls)) == 1
    assert verify_installed(folder, BundleLock.load(LOCK_FILE)) == []


def test_make_lock_is_the_documented_command() -> None:
    makefile = (REPO / "Makefile").read_text()
    assert "lock: venv\n\t$(BIN)/agentry lock" in makefile
    assert "make lock" in (REPO / "docs" / "deploy.md").read_text()
