"""First-preview graphs: the stack program planned the way ``pulumi preview`` sees a new stack.

On a stack's first preview no resource exists yet: the engine answers each registration with
its inputs only, so every computed attribute (ARNs, URLs, ids) is unknown, and so is every
input computed from one (most policy documents). The engine sends those to the analyzer as its
unknown sentinels. This plans the real program under mocks that answer the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pulumi import runtime
from pulumi.runtime import mocks as pulumi_mocks

from agentry_stacks.offline import plan as plan_module


class FirstPreviewMocks(plan_module.RecordingMocks):
    """Resources answer with their inputs only and no id: the rest is unknown."""

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        """An unknown id and the known inputs echoed back."""
        return "", {k: v for k, v in dict(args.inputs).items() if v is not None}


def plan_first_preview(stack: str, root: Path) -> dict[str, Any]:
    """The graph of ``stack`` as its first ``pulumi preview`` shows it."""
    real_set_mocks = runtime.set_mocks

    def set_mocks(*args: Any, **kwargs: Any) -> None:
        real_set_mocks(*args, **{**kwargs, "preview": True})

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(plan_module, "RecordingMocks", FirstPreviewMocks)
        patch.setattr(runtime, "set_mocks", set_mocks)
        return plan_module.plan_stack(stack, project_dir=root)
