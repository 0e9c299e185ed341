"""Cold start: each handler imported from the unpacked bundle, with and without its bytecode.

What Lambda does on a cold start, as closely as this machine can: the stack's bundle (built for
this machine's architecture, same sources) is unpacked into a fresh task root, and a fresh
interpreter of the function's Python version imports one handler module from it, with
``PYTHONDONTWRITEBYTECODE=1`` (Lambda's task root is read-only) and no ``__pycache__`` other
than what the bundle ships. The AWS SDK, which the Lambda runtime provides (it is left out of
the bundle), comes from a folder of its own, compiled as the runtime's libraries are, in both
runs; so the two figures differ only by the bundle's own bytecode.

The import is timed inside the child, so the interpreter's own start-up is left out. Timings
are printed, never asserted: they depend on the machine.
"""

from __future__ import annotations

import platform
import shutil
import statistics
import subprocess
import tempfile
import zipfile
from pathlib import Path

from agentry_platform.bundle import (
    BUILD_DIR,
    Architecture,
    Bundle,
    BundleError,
    Interpreter,
    compile_bytecode,
    fetch_wheels,
    find_interpreter,
)
from agentry_runtime.contract import Handler
from agentry_stacks.bench.report import BundleFigures, ColdImport, ColdStart

__all__ = [
    "PROBE",
    "bundle_figures",
    "cold_start",
    "host_architecture",
    "import_seconds",
    "unpack",
]

#: Run in the child: put the task root and the SDK on the path, import one module, print the
#: seconds it took.
PROBE = """
import importlib, sys, time
sys.path[:0] = [sys.argv[2], sys.argv[3]]
started = time.perf_counter()
importlib.import_module(sys.argv[1])
print(time.perf_counter() - started)
"""

#: What the Lambda runtime provides beside the bundle (see ``agentry_platform.bundle``).
_SDK = ["boto3"]


def host_architecture() -> Architecture:
    """This machine's architecture, as Lambda names it (the bundle's wheels must load here)."""
    return "arm64" if platform.machine().lower() in ("aarch64", "arm64") else "x86_64"


def bundle_figures(
    architecture: str, deployed: Bundle | None, error: str | None = None
) -> BundleFigures:
    """The deployed bundle's size and bytecode, or why it could not be built."""
    if deployed is None:
        return BundleFigures(
            zipped_bytes=None, architecture=architecture, bytecode=None, error=error
        )
    return BundleFigures(
        zipped_bytes=deployed.size,
        architecture=deployed.architecture,
        bytecode=deployed.bytecode,
        bytecode_note=deployed.bytecode_note,
    )


def cold_start(bundle: Bundle, runs: int) -> ColdStart:
    """Median cold import of every handler from ``bundle`` (built for this machine), with and
    without its bytecode; unavailable without an interpreter of the bundle's Python version."""
    interpreter = find_interpreter(bundle.python_version)
    handlers = [handler.name.lower() for handler in Handler]
    if interpreter is None or bundle.bytecode is None:
        reason = bundle.bytecode_note or f"no CPython {bundle.python_version} on this machine"
        return ColdStart(
            available=False,
            python_version=bundle.python_version,
            interpreter=None,
            runs=runs,
            reason=reason,
            handlers=dict.fromkeys(handlers),
        )
    sdk = _sdk(bundle, interpreter)
    with tempfile.TemporaryDirectory(prefix="agentry-cold-") as scratch:
        compiled, source_only = unpack(bundle.path, Path(scratch))
        figures = {}
        for handler in Handler:
            module = handler.value.rsplit(".", 1)[0]
            with_bytecode: list[float] = []
            without: list[float] = []
            for _ in range(runs):  # interleaved, so a busy moment hits both alike
                with_bytecode.append(import_seconds(interpreter, module, compiled, sdk))
                without.append(import_seconds(interpreter, module, source_only, sdk))
            figures[handler.name.lower()] = ColdImport(
                module=module,
                with_bytecode_seconds=round(statistics.median(with_bytecode), 4),
                without_bytecode_seconds=round(statistics.median(without), 4),
            )
    return ColdStart(
        available=True,
        python_version=bundle.python_version,
        interpreter=interpreter.version,
        runs=runs,
        reason="",
        handlers=figures,
    )


def unpack(archive: Path, scratch: Path) -> tuple[Path, Path]:
    """Two task roots of the zip under ``scratch``: as shipped, and without any bytecode."""
    compiled, source_only = scratch / "compiled", scratch / "source"
    with zipfile.ZipFile(archive) as bundle:
        bundle.extractall(compiled)
    shutil.copytree(compiled, source_only, ignore=shutil.ignore_patterns("__pycache__"))
    return compiled, source_only


def _sdk(bundle: Bundle, interpreter: Interpreter) -> Path:
    """The AWS SDK for the bundle's Python and architecture, compiled once by ``interpreter``."""
    wheels = fetch_wheels(_SDK, bundle.architecture, bundle.python_version)
    target = BUILD_DIR / "cold-start-sdk" / f"{wheels.name}-{interpreter.version}"
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{target.name}-", dir=target.parent))
    try:
        shutil.copytree(wheels, staging, dirs_exist_ok=True)
        entries: dict[str, Path | bytes] = {
            path.relative_to(staging).as_posix(): path for path in staging.rglob("*.py")
        }
        for name, content in compile_bytecode(entries, interpreter, target.parent).items():
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            (staging / name).write_bytes(content)
        staging.rename(target)
    except OSError:
        # A concurrent run published the same folder first.
        shutil.rmtree(staging, ignore_errors=True)
    except BundleError:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def import_seconds(interpreter: Interpreter, module: str, task_root: Path, sdk: Path) -> float:
    """Seconds ``interpreter`` takes to import ``module`` from ``task_root`` (module doc)."""
    # Lambda's variables that code reads at import time; nothing of this machine's PYTHON* ones.
    env = {
        "PYTHONDONTWRITEBYTECODE": "1",
        "LAMBDA_TASK_ROOT": str(task_root),
        "AWS_LAMBDA_FUNCTION_NAME": "agentry-bench",
        "AWS_EXECUTION_ENV": f"AWS_Lambda_python{interpreter.version.rsplit('.', 1)[0]}",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    result = subprocess.run(
        # -S: none of this interpreter's own site-packages; -B: write no bytecode either way.
        [str(interpreter.path), "-S", "-B", "-c", PROBE, module, str(task_root), str(sdk)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        cwd=task_root,
    )
    if result.returncode != 0:
        raise BundleError(f"importing {module} from the bundle failed: {result.stderr[-2000:]}")
    return float(result.stdout.strip().splitlines()[-1])
