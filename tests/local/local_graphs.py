"""Helpers that read or change a plan graph document in the local environment tests."""

from __future__ import annotations

import json
from typing import Any

RULE = "aws:cloudwatch/eventRule:EventRule"
QUEUE = "aws:sqs/queue:Queue"


def resource(graph: dict[str, Any], type_: str, name: str) -> dict[str, Any]:
    """The graph resource of a type and logical name."""
    return next(r for r in graph["resources"] if r["type"] == type_ and r["name"] == name)


def set_pattern(graph: dict[str, Any], rule_name: str, **changes: Any) -> None:
    """Replace keys of one rule's event pattern in the graph."""
    rule = resource(graph, RULE, rule_name)
    pattern = json.loads(rule["inputs"]["eventPattern"])
    pattern.update(changes)
    rule["inputs"]["eventPattern"] = json.dumps(pattern)


def max_receive_count(graph: dict[str, Any], queue_name: str) -> int:
    """The redrive policy's max receive count of a queue of the graph."""
    policy = json.loads(resource(graph, QUEUE, queue_name)["inputs"]["redrivePolicy"])
    return int(policy["maxReceiveCount"])
