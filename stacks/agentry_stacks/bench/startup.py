"""Cold start figures: handler import time in a fresh interpreter, and the bundle's size."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys

from agentry_runtime.contract import Handler
from agentry_stacks.bench.report import BundleFigures, ColdStart

# Timed inside the child, so interpreter start-up (not the function's cost) is left out.
_PROBE = """
import importlib, time
started = time.perf_counter()
importlib.import_module({module!r})
print(time.perf_counter() - started)
"""


def cold_start(runs: int) -> ColdStart:
    """Median import time of the api and worker handler modules over ``runs`` fresh processes."""
    return ColdStart(
        api_seconds=_median_import(Handler.API, runs),
        worker_seconds=_median_import(Handler.WORKER, runs),
        runs=runs,
    )


def _median_import(handler: Handler, runs: int) -> float:
    module = handler.value.rsplit(".", 1)[0]
    # Lambda sets a region and nothing else of ours at import time.
    env = {**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    times = []
    for _ in range(runs):
        result = subprocess.run(
            [sys.executable, "-c", _PROBE.format(module=module)],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        )
        times.append(float(result.stdout.strip().splitlines()[-1]))
    return round(statistics.median(times), 4)


def bundle_size(stack: str = "dev") -> BundleFigures:
    """The stack's zipped bundle size; the error instead if it cannot be built (no PyPI)."""
    from agentry_platform.bundle import BundleError
    from agentry_stacks.deploy.agents import resolve_agents
    from agentry_stacks.deploy.config import load_stack_config
    from agentry_stacks.deploy.program import stack_bundle

    config = load_stack_config(stack)
    try:
        bundle = stack_bundle(config, resolve_agents(config))
    except BundleError as exc:
        return BundleFigures(
            zipped_bytes=None, architecture=config.lambda_architecture, error=str(exc)[:500]
        )
    return BundleFigures(zipped_bytes=bundle.size, architecture=bundle.architecture)
