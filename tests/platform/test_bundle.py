"""The Lambda bundle is reproducible, holds exactly what its stack ships, and Linux wheels,
and the bytecode of the function's Python version when an interpreter of it is here.

Needs PyPI once per machine: the Linux wheels are cached under the repo's ``build/``.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from agentry_platform import bundle as bundle_module
from agentry_platform.bundle import (
    BUILD_DIR,
    LAMBDAS_DIR,
    TASK_ROOT,
    Bundle,
    BundleError,
    Source,
    build_bundle,
    find_interpreter,
    interpreter_variable,
    requirements,
)
from agentry_stacks.deploy.toolsets import Distribution, Workspace

_EM_AARCH64 = 183
AGENTS_FILE = {"agentry_agents.json": b'{"agents": {}}\n'}


def _source(dist: Distribution, folder: Path | None = None) -> Source:
    return Source(
        name=dist.name,
        folder=folder or dist.folder,
        packages=dist.packages,
        requirements=tuple(str(r) for r in dist.dependencies),
    )


@pytest.fixture(scope="session")
def workspace() -> Workspace:
    """The repo's Lambda distributions."""
    return Workspace.discover(LAMBDAS_DIR)


@pytest.fixture(scope="session")
def sources(workspace: Workspace) -> list[Source]:
    """The runtime and the flight toolset: what the prod stack ships."""
    return [_source(workspace.distributions[n]) for n in ("agentry-flights", "agentry-runtime")]


@pytest.fixture(scope="session")
def arm_bundle(sources: list[Source]) -> Bundle:
    """The arm64 bundle, built (and its wheels fetched) once per session."""
    return build_bundle(sources, runtime_version="9.9.9", files=AGENTS_FILE)


def _cache_sharing_deps(tmp_path: Path) -> Path:
    # A private output cache that reuses the downloaded wheels, so the zip is really rebuilt
    # without a second download or touching zips other tests may be reading.
    cache = tmp_path / "build"
    cache.mkdir()
    (cache / "lambda-deps").symlink_to(BUILD_DIR / "lambda-deps", target_is_directory=True)
    return cache


def test_two_builds_give_the_same_sha256(
    arm_bundle: Bundle, sources: list[Source], tmp_path: Path
) -> None:
    # GIVEN the same sources and files WHEN the zip is written again from scratch
    again = build_bundle(
        sources,
        runtime_version="9.9.9",
        files=AGENTS_FILE,
        cache_dir=_cache_sharing_deps(tmp_path),
    )
    # THEN it is byte-identical
    assert again.path != arm_bundle.path
    assert (again.sha256_hex, again.sha256_base64, again.size) == (
        arm_bundle.sha256_hex,
        arm_bundle.sha256_base64,
        arm_bundle.size,
    )


def test_a_changed_source_file_or_agents_file_changes_the_hash(
    arm_bundle: Bundle, workspace: Workspace, tmp_path: Path
) -> None:
    # GIVEN a copy of the runtime with one source file changed
    runtime = workspace.runtime
    copy = tmp_path / "runtime"
    shutil.copytree(runtime.folder, copy, ignore=shutil.ignore_patterns("__pycache__", "*.egg"))
    contract = copy / "agentry_runtime" / "contract.py"
    contract.write_text(contract.read_text() + "\n# changed\n")
    flights = _source(workspace.distributions["agentry-flights"])
    cache = _cache_sharing_deps(tmp_path)
    # WHEN it is bundled THEN the hash differs
    changed = build_bundle(
        [flights, _source(runtime, copy)],
        runtime_version="9.9.9",
        files=AGENTS_FILE,
        cache_dir=cache,
    )
    assert changed.sha256_hex != arm_bundle.sha256_hex
    # AND so does a bundle whose agents file changed
    other = build_bundle(
        [flights, _source(runtime)],
        runtime_version="9.9.9",
        files={"agentry_agents.json": b"{}\n"},
        cache_dir=cache,
    )
    assert other.sha256_hex != arm_bundle.sha256_hex


def test_zip_is_normalised_and_holds_exactly_what_ships(arm_bundle: Bundle) -> None:
    with zipfile.ZipFile(arm_bundle.path) as archive:
        infos = archive.infolist()
    names = [info.filename for info in infos]
    assert names == sorted(names)
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {info.external_attr >> 16 for info in infos} == {0o644}
    # Bytecode only as the build compiled it: for the function's Python, beside its source
    tag = "cpython-312"
    compiled = [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".pyo"))]
    assert all(n.endswith(f".{tag}.pyc") and "/__pycache__/" in f"/{n}" for n in compiled)
    assert all(_source_of(n) in names for n in compiled)
    assert not [n for n in names if n.startswith("bin/")]
    # The runtime, the named toolset and the generated file are inside; nothing else of ours
    # (no other toolset, no offline tooling), and not the Lambda-provided SDK.
    assert {
        "agentry_runtime/contract.py",
        "agentry_flights/tools.py",
        "agentry_agents.json",
    } <= set(names)
    roots = {n.split("/", 1)[0] for n in names}
    assert not {r for r in roots if r.startswith("agentry_")} - {
        "agentry_runtime",
        "agentry_flights",
        "agentry_agents.json",
    }
    assert not roots & {"boto3", "botocore", "s3transfer", "jmespath", "urllib3", "jsonschema"}
    assert {"pydantic", "pydantic_core", "aws_lambda_powertools"} <= roots
    assert arm_bundle.distributions == ("agentry-flights", "agentry-runtime")


# Reads a length-prefixed .pyc then its source on stdin: does the hash match, what is the path.
_CHECK_PYC = """
import importlib.util, marshal, sys
data = sys.stdin.buffer.read()
size = int.from_bytes(data[:8], "little")
pyc, source = data[8 : 8 + size], data[8 + size :]
print(pyc[8:16] == importlib.util.source_hash(source), marshal.loads(pyc[16:]).co_filename)
"""


def _source_of(pyc: str) -> str:
    folder, _, name = pyc.rpartition("__pycache__/")
    return folder + name.split(".", 1)[0] + ".py"


def test_the_bundle_ships_bytecode_for_its_python_when_this_machine_has_it(
    arm_bundle: Bundle,
) -> None:
    # GIVEN the interpreter the build looked for (CPython 3.12, the function's)
    interpreter = find_interpreter("3.12")
    with zipfile.ZipFile(arm_bundle.path) as archive:
        names = set(archive.namelist())
        sources = sorted(n for n in names if n.endswith(".py"))
        compiled = {n: archive.read(n) for n in names if n.endswith(".pyc")}
        source = archive.read("agentry_runtime/loop.py")
    if interpreter is None:
        # THEN without one the bundle ships none, and says why
        assert arm_bundle.bytecode is None
        assert not compiled
        assert interpreter_variable("3.12") in arm_bundle.bytecode_note
        return
    # THEN with one, every module has its .pyc, compiled by it
    assert arm_bundle.bytecode == interpreter.version
    assert {_source_of(n) for n in compiled} == set(sources)
    pyc = compiled["agentry_runtime/__pycache__/loop.cpython-312.pyc"]
    # AND each is hash-based and never re-validated (flags 0b01: no timestamp in the header),
    # its hash the source's, and its paths under Lambda's task root, not this machine's
    assert int.from_bytes(pyc[4:8], "little") == 0b01
    # (read by the compiling interpreter: hashes and code objects are its own)
    result = subprocess.run(
        [str(interpreter.path), "-I", "-c", _CHECK_PYC],
        input=len(pyc).to_bytes(8, "little") + pyc + source,
        capture_output=True,
        check=True,
    )
    assert result.stdout.decode().split() == ["True", f"{TASK_ROOT}/agentry_runtime/loop.py"]
    assert str(BUILD_DIR).encode() not in pyc


def test_without_an_interpreter_of_that_version_the_bundle_has_no_bytecode(
    sources: list[Source], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a build that finds no CPython of the function's version
    monkeypatch.setattr(bundle_module, "find_interpreter", lambda version: None)
    # WHEN it builds the bundle
    bare = build_bundle(
        sources,
        runtime_version="9.9.9",
        files=AGENTS_FILE,
        cache_dir=_cache_sharing_deps(tmp_path),
    )
    # THEN the zip holds no bytecode and the bundle says why, naming the variable to set
    with zipfile.ZipFile(bare.path) as archive:
        assert not [n for n in archive.namelist() if n.endswith(".pyc")]
    assert bare.bytecode is None
    assert "no CPython 3.12" in bare.bytecode_note
    assert interpreter_variable("3.12") == "AGENTRY_PYTHON_3_12"
    assert interpreter_variable("3.12") in bare.bytecode_note


def test_the_interpreter_is_found_by_its_exact_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a variable naming something that is not an interpreter
    fake = tmp_path / "python3.12"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv(interpreter_variable("3.12"), str(fake))
    search = find_interpreter.__wrapped__
    # WHEN interpreters are looked for THEN the failing one is passed over
    found = search("3.12")
    assert found is None or (found.path != fake and found.version.startswith("3.12."))
    # AND the running interpreter is found for its own version, a missing version is not
    running = search(f"{sys.version_info.major}.{sys.version_info.minor}")
    assert running is not None
    assert running.cache_tag == sys.implementation.cache_tag
    assert search("3.99") is None
    with pytest.raises(BundleError, match=r"not 3\.<minor>"):
        search("python3.12")


def _elf_machine(data: bytes) -> int:
    assert data[:4] == b"\x7fELF"
    return int(struct.unpack_from("<H", data, 18)[0])


def test_native_wheels_match_the_architecture(arm_bundle: Bundle) -> None:
    # GIVEN the arm64 bundle WHEN pydantic_core's extension module is read
    with zipfile.ZipFile(arm_bundle.path) as archive:
        [so] = [
            n for n in archive.namelist() if n.startswith("pydantic_core/") and n.endswith(".so")
        ]
        data = archive.read(so)
        wheel = next(
            archive.read(n).decode()
            for n in archive.namelist()
            if n.startswith("pydantic_core-") and n.endswith("/WHEEL")
        )
    # THEN it is an aarch64 Linux ELF for CPython 3.12, from a manylinux wheel
    assert "cpython-312-aarch64-linux-gnu" in so
    assert _elf_machine(data) == _EM_AARCH64
    assert "manylinux" in wheel
    assert "aarch64" in wheel


def test_requirements_leave_out_our_own_and_lambda_provided_packages(
    sources: list[Source],
) -> None:
    reqs = requirements(sources)
    assert not [r for r in reqs if r.startswith(("boto3", "agentry"))]
    assert any(r.startswith("pydantic==") for r in reqs)


def test_a_dependency_on_a_distribution_left_out_is_refused(workspace: Workspace) -> None:
    # GIVEN a toolset that depends on our runtime, bundled without it
    flights = _source(workspace.distributions["agentry-flights"])
    # WHEN its requirements are computed THEN the missing distribution is named
    with pytest.raises(BundleError, match="depends on agentry-runtime, which is not in the bundle"):
        requirements([flights])
