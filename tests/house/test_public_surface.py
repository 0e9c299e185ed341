"""Every module states its public names, each is documented, and the surface is pinned."""

from __future__ import annotations

import inspect
import json

from surface import RECORD, modules, surface


def test_every_module_declares_what_it_offers() -> None:
    # GIVEN every module of the shipped and tooling packages
    missing = [m.__name__ for m in modules() if not hasattr(m, "__all__")]
    # THEN each declares __all__, and every name in it exists
    assert missing == []
    for module in modules():
        absent = [name for name in module.__all__ if not hasattr(module, name)]
        assert absent == [], module.__name__


def test_every_public_class_and_function_has_a_docstring() -> None:
    undocumented = []
    for module in modules():
        for name in module.__all__:
            value = getattr(module, name)
            if (inspect.isclass(value) or inspect.isfunction(value)) and not (
                inspect.getdoc(value) or ""
            ).strip():
                undocumented.append(f"{module.__name__}.{name}")
    assert undocumented == []


def test_the_public_surface_is_the_recorded_one() -> None:
    # GIVEN the recorded surface WHEN compared with the code THEN they agree; a deliberate
    # change is recorded with: python tests/house/surface.py --write
    recorded = json.loads(RECORD.read_text())
    current = surface()
    added = {k: sorted(set(v) - set(recorded.get(k, []))) for k, v in current.items()}
    removed = {k: sorted(set(v) - set(current.get(k, []))) for k, v in recorded.items()}
    assert {k: v for k, v in added.items() if v} == {}
    assert {k: v for k, v in removed.items() if v} == {}
