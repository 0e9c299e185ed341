"""The public surface of every shipped and tooling package: each module's ``__all__``.

``python tests/house/surface.py --write`` records it in ``public_surface.json`` beside this
file; ``test_public_surface.py`` fails when the code and the record disagree, so a change of
what a package offers is a deliberate, reviewed edit of that file.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
from pathlib import Path
from types import ModuleType

__all__ = ["PACKAGES", "RECORD", "modules", "surface"]

PACKAGES = (
    "agentry_runtime",
    "agentry_offline",
    "agentry_flights",
    "agentry_support",
    "agentry_platform",
    "agentry_stacks",
    "agentry_policies",
)
RECORD = Path(__file__).with_name("public_surface.json")


def modules() -> list[ModuleType]:
    """Every module of the packages, imported (the Pulumi entry point ``__main__`` aside)."""
    found: list[ModuleType] = []
    for name in PACKAGES:
        package = importlib.import_module(name)
        found.append(package)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{name}."):
            if info.name.endswith("__main__"):
                continue
            found.append(importlib.import_module(info.name))
    return sorted(found, key=lambda m: m.__name__)


def surface() -> dict[str, list[str]]:
    """``{module: sorted __all__}`` of every module that declares one."""
    return {
        module.__name__: sorted(module.__all__)
        for module in modules()
        if hasattr(module, "__all__")
    }


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        raise SystemExit("usage: python tests/house/surface.py --write")
    RECORD.write_text(json.dumps(surface(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {RECORD}")
