"""Cold start: handlers import only what they use, and the probe sees only the bundle's bytecode.

No timing is asserted: what is checked is what gets imported and what is on disk.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from agentry_platform.bundle import find_interpreter
from agentry_runtime.contract import Handler
from agentry_runtime.observability import TRACE_SUBSEGMENTS_VARIABLE, Untraced, make_tracer
from agentry_stacks.bench.startup import import_seconds, unpack

_LOADED = "import importlib, sys; importlib.import_module({module!r}); print({probe})"


def _imports(module: str, probe: str, **variables: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != TRACE_SUBSEGMENTS_VARIABLE}
    env |= {"AWS_DEFAULT_REGION": "us-east-1", **variables}
    result = subprocess.run(
        [sys.executable, "-c", _LOADED.format(module=module, probe=probe)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return result.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("handler", list(Handler), ids=lambda h: h.name.lower())
def test_no_handler_imports_the_xray_sdk_by_default(handler: Handler) -> None:
    # GIVEN a fresh interpreter and no subsegment tracing configured
    module = handler.value.rsplit(".", 1)[0]
    # WHEN the handler's module is imported THEN the X-Ray SDK is not
    assert _imports(module, "'aws_xray_sdk' in sys.modules") == "False"


def test_configured_subsegments_bring_the_powertools_tracer_and_its_sdk() -> None:
    # GIVEN AGENTRY_TRACE_SUBSEGMENTS=true WHEN the worker is imported THEN the tracer is
    # Powertools' and the SDK is loaded
    tracer = "type(sys.modules['agentry_runtime.observability'].tracer).__name__"
    probe = f"{tracer}, 'aws_xray_sdk' in sys.modules"
    found = _imports(
        Handler.WORKER.value.rsplit(".", 1)[0], probe, **{TRACE_SUBSEGMENTS_VARIABLE: "true"}
    )
    assert found == "Tracer True"


def test_the_untraced_tracer_keeps_the_decorators_and_changes_nothing() -> None:
    tracer = make_tracer({})
    assert isinstance(tracer, Untraced)

    def handler(event: dict[str, str], context: object) -> str:
        return "ok"

    assert tracer.capture_lambda_handler(handler) is handler
    assert tracer.capture_method(handler) is handler
    assert tracer.capture_method(capture_response=False)(handler) is handler
    assert isinstance(make_tracer({TRACE_SUBSEGMENTS_VARIABLE: "false"}), Untraced)


def test_the_probe_imports_from_source_alone_and_writes_no_bytecode(tmp_path: Path) -> None:
    # GIVEN a bundle whose package ships bytecode
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("demo/__init__.py", "VALUE = 1\n")
        bundle.writestr("demo/__pycache__/__init__.cpython-312.pyc", b"not read here")
    # WHEN it is unpacked for the probe
    compiled, source_only = unpack(archive, tmp_path / "scratch")
    # THEN one task root keeps what the bundle ships and the other has no bytecode at all
    assert (compiled / "demo" / "__pycache__" / "__init__.cpython-312.pyc").is_file()
    assert not list(source_only.rglob("__pycache__"))
    # AND importing from the source-only root leaves it without bytecode
    interpreter = find_interpreter(f"{sys.version_info.major}.{sys.version_info.minor}")
    assert interpreter is not None
    seconds = import_seconds(interpreter, "demo", source_only, tmp_path / "no-sdk")
    assert seconds >= 0
    assert not list(source_only.rglob("__pycache__"))
    assert not list(source_only.rglob("*.pyc"))
