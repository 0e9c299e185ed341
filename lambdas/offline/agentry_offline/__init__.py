"""Agentry's offline tooling: it never ships in a Lambda bundle.

- ``bedrock``: a Converse endpoint on 127.0.0.1 and Bedrock's request checks;
- ``model``: the deterministic offline model (the flight demo's planner) and its faults;
- ``script``: a model that plays a script of turns, for any agent;
- ``events``: the events Lambda hands to the handlers (HTTP API v2, SQS batches);
- ``faults``: tools that fail on demand.
"""

from agentry_offline.bedrock import FakeBedrockServer, Responder, error_response, validate_request
from agentry_offline.faults import FailOnce, with_tool_faults
from agentry_offline.model import LABEL, Faults, OfflineModel, OfflineResponder
from agentry_offline.script import Script, ScriptedModel, ScriptError

__version__ = "0.1.0"

__all__ = [
    "LABEL",
    "FailOnce",
    "FakeBedrockServer",
    "Faults",
    "OfflineModel",
    "OfflineResponder",
    "Responder",
    "Script",
    "ScriptError",
    "ScriptedModel",
    "__version__",
    "error_response",
    "validate_request",
    "with_tool_faults",
]
