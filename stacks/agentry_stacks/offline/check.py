"""The offline policy check: the pack's own rules over a stack's resource graph.

There is no official offline harness for CrossGuard (pulumi-policy#445), so this module plays
the engine's part, as faithfully as the SDK allows: it builds the SDK's own
``ResourceValidationArgs``/``StackValidationArgs`` with read-only proxied props (numbers as
floats, as the engine sends them), validates each policy's config against its
``config_schema`` as the CLI does, and resolves enforcement levels with the CLI's precedence.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import jsonschema
from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy
from pydantic import BaseModel, ConfigDict, Field, ValidationError, computed_field
from rich.console import Console
from rich.table import Table

from agentry_policies import ALL_POLICIES, PACK_ENFORCEMENT_LEVEL

__all__ = [
    "CheckError",
    "CheckReport",
    "Violation",
    "check_stack",
    "load_graph",
    "load_pack_config",
    "missing_pack_config",
    "pack_config_path",
    "render_report",
    "resolve_enforcement",
    "run_check",
    "stack_properties",
    "validate_pack_config",
]

Enforcement = Literal["mandatory", "advisory"]
_LEVELS = [level.value for level in EnforcementLevel]


class CheckError(Exception):
    """A usage or config error of the check (bad graph file, bad pack config): exit code 2."""


class Violation(BaseModel):
    """One reported violation: the rule, the resource it names, the message and its level."""

    policy: str
    resource: str
    urn: str
    message: str
    enforcement: Enforcement


class CheckReport(BaseModel):
    """Every violation of a stack's graph, with counts per enforcement level."""

    stack: str
    violations: list[Violation]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def mandatory(self) -> int:
        """How many violations block a deployment."""
        return sum(v.enforcement == "mandatory" for v in self.violations)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def advisory(self) -> int:
        """How many violations only warn."""
        return sum(v.enforcement == "advisory" for v in self.violations)


class _GraphResource(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: str
    name: str
    urn: str
    parent: str | None = None
    dependencies: list[str] = Field(default_factory=list)
    propertyDependencies: dict[str, list[str]] = Field(default_factory=dict)  # noqa: N815
    options: dict[str, Any] = Field(default_factory=dict)
    inputs: dict[str, Any] = Field(default_factory=dict)
    outputs: dict[str, Any] = Field(default_factory=dict)


class _Graph(BaseModel):
    model_config = ConfigDict(extra="ignore")

    stack: str
    project: str = "agentry"
    resources: list[_GraphResource]


def _graph(document: Any, source: str) -> _Graph:
    try:
        return _Graph.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(document)"
        raise CheckError(f"{source}: {where}: {first['msg']}") from None


def load_graph(path: Path) -> dict[str, Any]:
    """A graph file in the ``agentry plan --json`` format; CheckError if unreadable or malformed."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CheckError(f"graph file {path}: cannot read it ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise CheckError(f"graph file {path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    _graph(document, f"graph file {path}")
    return dict(document)


def pack_config_path(stack: str, project_dir: Path) -> Path:
    """Where a stack's pack config lives: ``policies/<stack>.json`` under the project."""
    return project_dir / "policies" / f"{stack}.json"


def load_pack_config(path: Path) -> dict[str, Any]:
    """A ``--policy-pack-config`` file; CheckError if missing or not a JSON object."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CheckError(f"pack config {path}: cannot read it ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise CheckError(f"pack config {path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(document, dict):
        raise CheckError(f"pack config {path}: expected a JSON object of policy names")
    return document


def _schema(policy: Policy) -> dict[str, Any]:
    config_schema = policy.config_schema
    properties = dict(config_schema.properties) if config_schema else {}
    return {
        "type": "object",
        "properties": {**properties, "enforcementLevel": {"enum": _LEVELS}},
        "required": list(config_schema.required or []) if config_schema else [],
        "additionalProperties": False,
    }


def _entry(name: str, value: Any) -> dict[str, Any]:
    # The CLI accepts a bare level ("advisory") as shorthand for {"enforcementLevel": ...}.
    if isinstance(value, str):
        return {"enforcementLevel": value}
    if isinstance(value, dict):
        return value
    raise CheckError(f"pack config: {name}: expected an enforcement level or an object")


def validate_pack_config(
    pack_config: Mapping[str, Any], policies: Sequence[Policy] = ALL_POLICIES
) -> dict[str, dict[str, Any]]:
    """Each entry checked against its policy's schema (as the CLI does); CheckError otherwise.

    Returns the normalised config: policy name (or ``all``) -> {"enforcementLevel"?, props}.
    """
    by_name = {policy.name: policy for policy in policies}
    normalised: dict[str, dict[str, Any]] = {}
    for name, value in pack_config.items():
        entry = _entry(name, value)
        if name == "all":
            schema: dict[str, Any] = {
                "type": "object",
                "properties": {"enforcementLevel": {"enum": _LEVELS}},
                "additionalProperties": False,
            }
        elif name in by_name:
            schema = _schema(by_name[name])
        else:
            raise CheckError(f"pack config: {name!r} is not a policy of this pack")
        try:
            jsonschema.validate(entry, schema)
        except jsonschema.ValidationError as exc:
            where = ".".join(str(part) for part in exc.absolute_path)
            raise CheckError(
                f"pack config: {name}{'.' + where if where else ''}: {exc.message}"
            ) from None
        normalised[name] = entry
    return normalised


def resolve_enforcement(
    policy: Policy,
    pack_config: Mapping[str, Any],
    pack_default: EnforcementLevel = PACK_ENFORCEMENT_LEVEL,
) -> EnforcementLevel:
    """The policy's level: its pack-config entry, then ``all``, then its own, then the pack's."""
    for key in (policy.name, "all"):
        level = _entry(key, pack_config.get(key, {})).get("enforcementLevel")
        if level is not None:
            return EnforcementLevel(level)
    return policy.enforcement_level or pack_default


def _floats(value: Any) -> Any:
    # The engine sends every number as a float; rules must not depend on ints.
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, dict):
        return {key: _floats(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_floats(item) for item in value]
    return value


def _options(resource: _GraphResource) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=bool(resource.options.get("protect", False)),
        ignore_changes=[],
        delete_before_replace=resource.options.get("deleteBeforeReplace"),
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0.0, 0.0, 0.0),
        additional_secret_outputs=[],
        parent=resource.parent,
    )


_IDENTITY_OUTPUTS = ("id", "arn", "name", "url")


def _identity(outputs: Mapping[str, Any]) -> dict[str, Any]:
    return {key: outputs[key] for key in _IDENTITY_OUTPUTS if key in outputs}


def stack_properties(resource: Mapping[str, Any]) -> dict[str, Any]:
    """The properties a stack policy sees for a graph resource, as the engine sends them.

    Stack policies see each resource's proposed state: its inputs plus the provider-computed
    identity (arn, url...), numbers as floats. Other outputs are left out: the mocks echo inputs
    into outputs, so a graph edited by hand would otherwise keep a removed input alive.
    """
    outputs = resource.get("outputs") or {}
    return dict(_floats({**_identity(outputs), **(resource.get("inputs") or {})}))


def _stack_resources(graph: _Graph) -> list[PolicyResource]:
    resources = [
        PolicyResource(
            r.type,
            unknown_checking_proxy(stack_properties(r.model_dump())),
            r.urn,
            r.name,
            _options(r),
            None,
            None,
            [],
            {},
        )
        for r in graph.resources
    ]
    by_urn = {resource.urn: resource for resource in resources}
    for resource, raw in zip(resources, graph.resources, strict=True):
        resource.parent = by_urn.get(raw.parent or "")
        resource.dependencies = [by_urn[urn] for urn in raw.dependencies if urn in by_urn]
        # As the engine does: rules link a policy to its queue or bus through these when the
        # ARN that links them is not known yet (a first preview).
        resource.property_dependencies = {
            key: [by_urn[urn] for urn in urns if urn in by_urn]
            for key, urns in raw.propertyDependencies.items()
        }
    return resources


class _Collector:
    """The ``report_violation`` callback of one policy run."""

    def __init__(self, policy: Policy, level: EnforcementLevel, names: Mapping[str, str]) -> None:
        self.policy = policy
        self.level: Enforcement = "advisory" if level == EnforcementLevel.ADVISORY else "mandatory"
        self.names = names
        self.default_urn = ""
        self.found: list[Violation] = []

    def __call__(self, message: str, urn: str | None = None) -> None:
        target = self.default_urn or urn or ""
        self.found.append(
            Violation(
                policy=self.policy.name,
                resource=self.names.get(target, ""),
                urn=target,
                message=message,
                enforcement=self.level,
            )
        )

    def unknown(self, error: UnknownValueError) -> None:
        """As the engine does: an evaluation that reads an unknown value adds one advisory note.

        Only that evaluation is affected: violations it reported before, and every other
        resource's evaluation, keep the policy's level.
        """
        target = self.default_urn
        self.found.append(
            Violation(
                policy=self.policy.name,
                resource=self.names.get(target, ""),
                urn=target,
                message=f"can't run policy '{self.policy.name}' during preview: {error.message}",
                enforcement="advisory",
            )
        )


def _run_resource_policy(
    policy: ResourceValidationPolicy,
    collector: _Collector,
    graph: _Graph,
    config: Mapping[str, Any],
    stack_tags: Mapping[str, str],
) -> None:
    for raw in graph.resources:
        collector.default_urn = raw.urn  # resource rules always report on their resource
        args = ResourceValidationArgs(
            raw.type,
            unknown_checking_proxy(_floats(raw.inputs)),
            raw.urn,
            raw.name,
            _options(raw),
            None,
            dict(config),
            stack_tags,
        )
        try:
            policy.validate(args, collector)
        except UnknownValueError as error:
            collector.unknown(error)


def _run_policy(
    policy: Policy,
    level: EnforcementLevel,
    graph: _Graph,
    config: Mapping[str, Any],
    resources: list[PolicyResource],
) -> list[Violation]:
    names = {r.urn: r.name for r in graph.resources}
    collector = _Collector(policy, level, names)
    stack_tags = {"pulumi:project": graph.project, "pulumi:stack": graph.stack}
    if isinstance(policy, ResourceValidationPolicy):
        _run_resource_policy(policy, collector, graph, config, stack_tags)
    elif isinstance(policy, StackValidationPolicy):
        try:
            policy.validate(StackValidationArgs(resources, dict(config), stack_tags), collector)
        except UnknownValueError as error:
            collector.unknown(error)
    return collector.found


def run_check(
    graph: Mapping[str, Any],
    pack_config: Mapping[str, Any],
    policies: Iterable[Policy] = ALL_POLICIES,
) -> CheckReport:
    """Run ``policies`` over ``graph`` with ``pack_config``; CheckError on a bad graph or config."""
    rules = list(policies)
    parsed = _graph(graph, "graph")
    # Validated against the whole pack, so running a subset still accepts the full config.
    known = {p.name: p for p in (*ALL_POLICIES, *rules)}
    config = validate_pack_config(pack_config, list(known.values()))
    resources = _stack_resources(parsed)
    violations: list[Violation] = []
    for policy in rules:
        level = resolve_enforcement(policy, config)
        if level == EnforcementLevel.DISABLED:
            continue
        properties = {
            k: v for k, v in config.get(policy.name, {}).items() if k != "enforcementLevel"
        }
        violations.extend(_run_policy(policy, level, parsed, properties, resources))
    return CheckReport(stack=parsed.stack, violations=violations)


def check_stack(
    stack: str, *, graph_file: Path | None = None, project_dir: Path | None = None
) -> CheckReport:
    """Check ``stack`` with ``policies/<stack>.json``: its planned graph, or ``graph_file``."""
    # Imported late: the plan imports the Pulumi runtime and the whole program.
    from agentry_stacks.deploy.config import ConfigError, load_stack_config, project_root

    root = project_dir or project_root()
    config_path = pack_config_path(stack, root)
    if not config_path.is_file():
        raise CheckError(missing_pack_config(stack, root))
    pack_config = load_pack_config(config_path)
    stack_file = root / f"Pulumi.{stack}.yaml"
    try:
        config = load_stack_config(stack, project_dir=root) if stack_file.is_file() else None
    except ConfigError as exc:
        raise CheckError(f"stack {stack}: {exc}".replace("\n", "; ")) from None
    if graph_file is not None:
        graph = load_graph(graph_file)
        if graph["stack"] != stack:
            raise CheckError(f"graph file {graph_file}: is stack {graph['stack']!r}, not {stack!r}")
    else:
        from agentry_stacks.offline.plan import plan_stack

        try:
            graph = plan_stack(stack, project_dir=root)
        except ConfigError as exc:
            raise CheckError(f"stack {stack}: {exc}".replace("\n", "; ")) from None
    report = run_check(graph, pack_config)
    if config is not None:
        report.violations.extend(_allowlist_violations(config, pack_config, config_path, root))
    return report


def _allowlist_violations(
    config: Any, pack_config: Mapping[str, Any], config_path: Path, root: Path
) -> list[Violation]:
    from agentry_stacks.offline.allowlist import ALLOWLIST_CHECK, compare_allowlists

    pack_file = config_path.relative_to(root).as_posix()
    return [
        Violation(
            policy=ALLOWLIST_CHECK,
            resource=f"Pulumi.{config.stack}.yaml",
            urn="",
            message=finding.message,
            enforcement=finding.enforcement,
        )
        for finding in compare_allowlists(config, pack_config, pack_file=pack_file)
    ]


def missing_pack_config(stack: str, root: Path) -> str:
    """What to do when a stack has no pack config: the file to add, and what it must hold."""
    path = pack_config_path(stack, root).relative_to(root).as_posix()
    return (
        f"stack {stack!r} has no pack config: add {path} (copy policies/dev.json or "
        f"policies/prod.json) with the stack's model allowlist in bedrock-model-allowlist and "
        f"bedrock-inference-profile-grants, so `pulumi preview --policy-pack policies "
        f"--policy-pack-config {path}` and `agentry check {stack}` can run"
    )


def render_report(report: CheckReport, console: Console) -> None:
    """Print the violations as a table and a one-line summary."""
    if report.violations:
        table = Table(title=f"Policy violations: {report.stack}", show_lines=True)
        for column in ("policy", "resource", "enforcement", "message"):
            table.add_column(column, overflow="fold")
        for v in sorted(report.violations, key=lambda v: (v.enforcement != "mandatory", v.policy)):
            style = "red" if v.enforcement == "mandatory" else "yellow"
            table.add_row(v.policy, v.resource or v.urn, f"[{style}]{v.enforcement}[/]", v.message)
        console.print(table)
    verdict = "[red]FAILED[/]" if report.mandatory else "[green]passed[/]"
    console.print(
        f"{report.stack}: {verdict} — {report.mandatory} mandatory, {report.advisory} advisory"
    )
