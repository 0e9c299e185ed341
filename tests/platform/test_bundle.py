"""The Lambda bundle is reproducible and holds Linux wheels for the target architecture.

Needs PyPI once per machine: the Linux wheels are cached under the repo's ``build/``.
"""

from __future__ import annotations

import shutil
import struct
import zipfile
from pathlib import Path

import pytest

from agentry_platform.bundle import BUILD_DIR, LAMBDAS_DIR, Bundle, build_bundle, requirements

_EM_AARCH64 = 183
_EM_X86_64 = 62


@pytest.fixture(scope="session")
def arm_bundle() -> Bundle:
    """The arm64 bundle, built (and its wheels fetched) once per session."""
    return build_bundle(architecture="arm64", python_version="3.12")


def _cache_sharing_deps(tmp_path: Path) -> Path:
    # A private output cache that reuses the downloaded wheels, so the zip is really rebuilt
    # without a second download or touching zips other tests may be reading.
    cache = tmp_path / "build"
    cache.mkdir()
    (cache / "lambda-deps").symlink_to(BUILD_DIR / "lambda-deps", target_is_directory=True)
    return cache


def test_two_builds_give_the_same_sha256(arm_bundle: Bundle, tmp_path: Path) -> None:
    # GIVEN the same source and requirements WHEN the zip is written again from scratch
    again = build_bundle(
        architecture="arm64", python_version="3.12", cache_dir=_cache_sharing_deps(tmp_path)
    )
    # THEN it is byte-identical
    assert again.path != arm_bundle.path
    assert again.sha256_hex == arm_bundle.sha256_hex
    assert again.sha256_base64 == arm_bundle.sha256_base64
    assert again.size == arm_bundle.size


def test_a_changed_source_file_changes_the_hash(arm_bundle: Bundle, tmp_path: Path) -> None:
    # GIVEN a copy of lambdas/ with one source file changed
    copy = tmp_path / "lambdas"
    shutil.copytree(LAMBDAS_DIR, copy, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    contract = copy / "agentry_runtime" / "contract.py"
    contract.write_text(contract.read_text() + "\n# changed\n")
    # WHEN it is bundled
    changed = build_bundle(
        architecture="arm64", lambdas_dir=copy, cache_dir=_cache_sharing_deps(tmp_path)
    )
    # THEN the hash differs
    assert changed.sha256_hex != arm_bundle.sha256_hex


def test_zip_is_normalised_and_free_of_host_files(arm_bundle: Bundle) -> None:
    with zipfile.ZipFile(arm_bundle.path) as archive:
        infos = archive.infolist()
    names = [info.filename for info in infos]
    assert names == sorted(names)
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {info.external_attr >> 16 for info in infos} == {0o644}
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert not [n for n in names if n.startswith("bin/")]
    assert not [n for n in names if "/tests/" in n and n.startswith("agentry_runtime/")]
    # The runtime itself and its contract are inside; the Lambda-provided SDK is not.
    assert "agentry_runtime/contract.py" in names
    roots = {n.split("/", 1)[0] for n in names}
    assert not roots & {"boto3", "botocore", "s3transfer", "jmespath", "urllib3"}
    assert {"pydantic", "pydantic_core", "aws_lambda_powertools"} <= roots


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


def test_bundle_reports_runtime_version_and_requirements(arm_bundle: Bundle) -> None:
    from agentry_runtime import __version__

    assert arm_bundle.runtime_version == __version__
    reqs = requirements()
    assert not [r for r in reqs if r.startswith("boto3")]
    assert any(r.startswith("pydantic==") for r in reqs)
