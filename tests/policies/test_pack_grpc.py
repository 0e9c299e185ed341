"""The pack as the Pulumi CLI runs it: ``python -m pulumi.policy`` over gRPC, same verdicts.

The test plays the CLI's part (pulumi/pulumi ``analyzer_plugin.go`` and ``analyzer/config.go``):
it starts ``policies/`` with ``python -m pulumi.policy <engine> .`` from the pack folder, reads
the port the analyzer prints, calls GetAnalyzerInfo, reconciles the stack's pack config the way
``ReconcilePolicyPackConfig`` does (schema defaults, then ``all``, then each policy's entry;
names the pack does not know are passed along and ignored), validates it as the CLI does (the
schema of each policy as declared, so unknown properties pass), calls Configure and
ConfigureStack, then Analyze for every resource and AnalyzeStack for the whole graph. Values are
shaped as the engine marshals them (``KeepUnknowns``, ``KeepSecrets``): numbers are doubles,
some values arrive wrapped as secrets, unknowns of a first preview arrive as sentinels.

``python -m pulumi.policy`` never dials the engine address (``pulumi.log`` falls back to stderr
when no engine is configured), so no fake engine server is needed: the test passes an address
as the CLI does and asserts the pack wrote nothing to stderr.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import grpc
import jsonschema
import pytest
from google.protobuf import empty_pb2, json_format, struct_pb2
from mutations import MUTATIONS, PREVIEW_MUTATIONS, mutated, unknown_then_violation
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from agentry_stacks.offline.check import (
    CheckError,
    load_pack_config,
    pack_config_path,
    run_check,
    stack_properties,
    validate_pack_config,
)

_ROOT = Path(__file__).resolve().parents[2]
_PACK = _ROOT / "policies"
_SECRET_SIG = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270"}
#: Inputs the engine would hold as secrets (a function's environment, policy documents).
_SECRET_INPUTS = ("environment", "policy")
_LEVELS = {
    analyzer_pb2.ADVISORY: "advisory",
    analyzer_pb2.MANDATORY: "mandatory",
    analyzer_pb2.DISABLED: "disabled",
    analyzer_pb2.REMEDIATE: "remediate",
}
_PROTO_LEVELS = {name: level for level, name in _LEVELS.items()}
_NOTE = "during preview: "

pytestmark = pytest.mark.slow

Verdict = tuple[str, str, str, str]  # policy, urn, enforcement, message


@pytest.fixture(scope="module")
def analyzer() -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    """The pack, started from its folder as the CLI starts it, and a client of its server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    env.update(PULUMI_PROJECT="agentry", PULUMI_STACK="prod", PULUMI_DRY_RUN="true")
    process = subprocess.Popen(
        [sys.executable, "-m", "pulumi.policy", "127.0.0.1:1", "."],
        cwd=_PACK,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        assert process.stdout is not None
        port = process.stdout.readline().decode().strip()
        assert port.isdigit(), process.stderr.read().decode() if process.stderr else port
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield analyzer_pb2_grpc.AnalyzerStub(channel)
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    # Anything the pack logged (a crash of a rule, an import error) lands on stderr.
    assert stderr.decode().strip() == ""


# --- the CLI's side ---------------------------------------------------------------------------


def _entry(value: Any) -> dict[str, Any]:
    return {"enforcementLevel": value} if isinstance(value, str) else dict(value)


def reconcile(info: analyzer_pb2.AnalyzerInfo, pack_config: Mapping[str, Any]) -> dict[str, Any]:
    """The config the CLI sends to Configure (``ReconcilePolicyPackConfig``), and its validation.

    Raises jsonschema.ValidationError where the CLI would refuse the config.
    """
    result: dict[str, dict[str, Any]] = {}
    schemas: dict[str, dict[str, Any]] = {}
    for policy in info.policies:
        properties = json_format.MessageToDict(policy.configSchema.properties)
        defaults = {k: v["default"] for k, v in properties.items() if "default" in v}
        result[policy.name] = {"level": _LEVELS[policy.enforcementLevel], "props": defaults}
        schemas[policy.name] = {"type": "object", "properties": properties}
        if policy.configSchema.required:
            schemas[policy.name]["required"] = list(policy.configSchema.required)
    given = {name: _entry(value) for name, value in pack_config.items()}
    if "enforcementLevel" in given.get("all", {}):
        for entry in result.values():
            entry["level"] = given["all"]["enforcementLevel"]
    for name, entry in given.items():
        current = result.setdefault(name, {"level": "", "props": {}})
        props = {k: v for k, v in entry.items() if k != "enforcementLevel"}
        current["level"] = entry.get("enforcementLevel", current["level"])
        current["props"] = {**current["props"], **props}
    for name, schema in schemas.items():
        jsonschema.validate(result[name]["props"], schema)
    return result


def configure(
    stub: analyzer_pb2_grpc.AnalyzerStub, stack: str, pack_config: Mapping[str, Any]
) -> None:
    """GetAnalyzerInfo, then Configure and ConfigureStack as the CLI calls them."""
    config = reconcile(stub.GetAnalyzerInfo(empty_pb2.Empty()), pack_config)
    request = analyzer_pb2.ConfigureAnalyzerRequest()
    for name, entry in config.items():
        policy = request.policyConfig[name]
        if entry["level"]:
            policy.enforcementLevel = _PROTO_LEVELS[entry["level"]]
        policy.properties.update(entry["props"])
    stub.Configure(request)
    tags = {"pulumi:project": "agentry", "pulumi:stack": stack}
    stub.ConfigureStack(analyzer_pb2.AnalyzerStackConfigureRequest(stack=stack, tags=tags))


def _secret(value: Any) -> Any:
    return {**_SECRET_SIG, "value": value}


def _wire(properties: Mapping[str, Any]) -> struct_pb2.Struct:
    """Properties marshalled as the engine does: doubles, some values wrapped as secrets."""
    shaped = {k: _secret(v) if k in _SECRET_INPUTS else v for k, v in properties.items()}
    message = struct_pb2.Struct()
    message.update(shaped)
    return message


def _note(message: str) -> str:
    return message.split(_NOTE, 1)[1] if _NOTE in message else message


def _from_grpc(
    response: analyzer_pb2.AnalyzeResponse, urn: str, descriptions: Mapping[str, str]
) -> list[Verdict]:
    found = []
    for diagnostic in response.diagnostics:
        message = diagnostic.message
        prefix = descriptions[diagnostic.policyName] + "\n"
        text = message[len(prefix) :] if message.startswith(prefix) else _note(message)
        level = _LEVELS[diagnostic.enforcementLevel]
        found.append((diagnostic.policyName, diagnostic.urn or urn, level, text))
    return found


def analyze(stub: analyzer_pb2_grpc.AnalyzerStub, graph: Mapping[str, Any]) -> Counter[Verdict]:
    """Every diagnostic of the pack over ``graph``: Analyze per resource, then AnalyzeStack."""
    descriptions = {p.name: p.description for p in stub.GetAnalyzerInfo(empty_pb2.Empty()).policies}
    verdicts: list[Verdict] = []
    stack_resources = []
    for resource in graph["resources"]:
        request = analyzer_pb2.AnalyzeRequest(
            urn=resource["urn"],
            type=resource["type"],
            name=resource["name"],
            properties=_wire(resource["inputs"]),
        )
        verdicts.extend(_from_grpc(stub.Analyze(request), resource["urn"], descriptions))
        dependencies = {
            key: analyzer_pb2.AnalyzerPropertyDependencies(urns=urns)
            for key, urns in resource.get("propertyDependencies", {}).items()
        }
        stack_resources.append(
            analyzer_pb2.AnalyzerResource(
                urn=resource["urn"],
                type=resource["type"],
                name=resource["name"],
                properties=_wire(stack_properties(resource)),
                parent=resource.get("parent") or "",
                dependencies=resource.get("dependencies", []),
                propertyDependencies=dependencies,
            )
        )
    response = stub.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=stack_resources))
    verdicts.extend(_from_grpc(response, "", descriptions))
    return Counter(verdicts)


def offline(graph: Mapping[str, Any], pack_config: Mapping[str, Any]) -> Counter[Verdict]:
    """The same verdicts from ``agentry check``'s engine."""
    report = run_check(graph, pack_config)
    return Counter((v.policy, v.urn, v.enforcement, _note(v.message)) for v in report.violations)


# --- the comparisons --------------------------------------------------------------------------


def _graph_cases(
    graphs: dict[str, dict[str, Any]], preview_graphs: dict[str, dict[str, Any]]
) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for stack in ("dev", "prod"):
        yield stack, f"{stack}-shipped", graphs[stack]
        yield stack, f"{stack}-first-preview", preview_graphs[stack]
    for mutation in MUTATIONS:
        yield "prod", f"prod-{mutation.id}", mutated(graphs["prod"], mutation)
    for mutation in PREVIEW_MUTATIONS:
        yield "prod", f"preview-{mutation.id}", mutated(preview_graphs["prod"], mutation)
    yield "prod", "prod-one-unknown", unknown_then_violation(graphs["prod"])


def test_pack_over_grpc_agrees_with_agentry_check(
    analyzer: analyzer_pb2_grpc.AnalyzerStub,
    graphs: dict[str, dict[str, Any]],
    preview_graphs: dict[str, dict[str, Any]],
) -> None:
    # GIVEN the shipped graphs, their first previews and every mutation, with each stack's config
    configured = ""
    compared = blocked = 0
    for stack, case, graph in _graph_cases(graphs, preview_graphs):
        pack_config = load_pack_config(pack_config_path(stack, _ROOT))
        if stack != configured:
            configure(analyzer, stack, pack_config)
            configured = stack
        # WHEN the pack judges them over gRPC and `agentry check` judges them offline
        served, checked = analyze(analyzer, graph), offline(graph, pack_config)
        # THEN the verdicts are the same: rule, resource, enforcement and message
        assert served == checked, (case, served - checked, checked - served)
        compared += 1
        blocked += any(level == "mandatory" for _p, _u, level, _m in served)
    # AND the comparison covered passing and blocking graphs alike
    assert compared == 5 + len(MUTATIONS) + len(PREVIEW_MUTATIONS)
    assert blocked == len(MUTATIONS) + len(PREVIEW_MUTATIONS) + 1


@pytest.mark.parametrize(
    ("entry", "named"),
    [
        ({"lambda-timeout-bounded": {"maxTimout": 3}}, "maxTimout"),
        ({"lamda-timeout-bounded": {"maxTimeoutSeconds": 3}}, "lamda-timeout-bounded"),
    ],
    ids=["misspelt-property", "misspelt-policy"],
)
def test_config_the_cli_would_ignore_is_an_error_of_agentry_check(
    analyzer: analyzer_pb2_grpc.AnalyzerStub,
    graphs: dict[str, dict[str, Any]],
    entry: dict[str, Any],
    named: str,
) -> None:
    # GIVEN the prod config with a misspelling meant to cap function timeouts at 3 s
    pack_config = {**load_pack_config(pack_config_path("prod", _ROOT)), **entry}
    # WHEN the CLI reconciles it THEN it accepts it, and the pack silently keeps its default
    configure(analyzer, "prod", pack_config)
    served = analyze(analyzer, graphs["prod"])
    assert not [v for v in served if v[0] == "lambda-timeout-bounded"]
    # BUT agentry check refuses it, naming the misspelt word
    with pytest.raises(CheckError, match=named):
        validate_pack_config(pack_config)
    # AND the real setting does take effect over gRPC (the misspelling was the only problem)
    configure(analyzer, "prod", {**pack_config, "lambda-timeout-bounded": {"maxTimeoutSeconds": 3}})
    assert [v for v in analyze(analyzer, graphs["prod"]) if v[0] == "lambda-timeout-bounded"]


def test_engine_shapes_reach_the_rules(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    # GIVEN a function whose timeout arrives as a double and whose environment is a secret
    configure(analyzer, "prod", load_pack_config(pack_config_path("prod", _ROOT)))
    properties = {"timeout": 901, "environment": {"variables": {"AWS_ENDPOINT_URL": "http://x"}}}
    request = analyzer_pb2.AnalyzeRequest(
        urn="urn:x", type="aws:lambda/function:Function", name="f", properties=_wire(properties)
    )
    assert json.loads(json_format.MessageToJson(request.properties))["timeout"] == 901.0
    # WHEN analysed THEN the rules read through the float and the secret
    policies = {d.policyName for d in analyzer.Analyze(request).diagnostics}
    assert {"lambda-timeout-bounded", "lambda-no-endpoint-override"} <= policies
