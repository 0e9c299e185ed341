"""Event patterns as pure functions, built from the runtime's contract.

EventBridge rule patterns route the announcer's events; the announcer's event source mapping
filters the table's stream with the same pattern language
(https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html).
"""

from __future__ import annotations

import json
from typing import Any

from agentry_runtime.contract import EVENT_SOURCE, META_SK, SORT_KEY, DetailType, HeaderAttr

__all__ = [
    "APPROVAL_TEXT",
    "approval_notification",
    "approval_pattern",
    "error_pattern",
    "header_changes_pattern",
    "step_pattern",
]


def step_pattern() -> dict[str, Any]:
    """Step requests (only the announcer puts them): routed to the step queue."""
    return {"source": [EVENT_SOURCE], "detail-type": [DetailType.STEP_REQUESTED.value]}


def error_pattern() -> dict[str, Any]:
    """Agent errors: they start the recovery state machine."""
    return {"source": [EVENT_SOURCE], "detail-type": [DetailType.AGENT_ERROR.value]}


def approval_pattern() -> dict[str, Any]:
    """Calls waiting for a person's approval: routed to the human topic."""
    return {"source": [EVENT_SOURCE], "detail-type": [DetailType.AGENT_NEEDS_APPROVAL.value]}


#: What the approval notification says besides its typed fields (the inputs of the held calls
#: are read through the API by the owner or an operator).
APPROVAL_TEXT = (
    "An agent waits for a person to approve tool calls: read them with "
    "GET /agents/{agentId}/approvals, then decide with POST /agents/{agentId}/approvals."
)


def approval_notification() -> tuple[dict[str, str], str]:
    """The input transformer of the approval rule: ids, step and tool names, and the text."""
    paths = {"agentId": "$.detail.agentId", "step": "$.detail.step", "tools": "$.detail.tools"}
    template = (
        '{"agentId": <agentId>, "step": <step>, "tools": <tools>, '
        f'"status": "AWAITING_APPROVAL", "message": {json.dumps(APPROVAL_TEXT)}}}'
    )
    return paths, template


def header_changes_pattern() -> list[dict[str, Any]]:
    """The stream records the announcer takes: headers written (inserted or modified), except
    those a chaining worker writes mid-chain (they carry ``runnerUntil``, and announce nothing:
    see ``agentry_runtime.announce``), so a chain's commits cost no announcer invocation.

    ``exists`` matches leaf nodes only, hence the test on the number under the attribute
    (https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html).
    """
    return [
        {
            "eventName": ["INSERT", "MODIFY"],
            "dynamodb": {
                "Keys": {SORT_KEY: {"S": [META_SK]}},
                "NewImage": {HeaderAttr.RUNNER_UNTIL.value: {"N": [{"exists": False}]}},
            },
        }
    ]
