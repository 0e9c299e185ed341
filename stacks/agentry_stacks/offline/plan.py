"""The offline plan: run the real stack program under recording Pulumi mocks.

Without the Pulumi CLI or an AWS account, ``pulumi.runtime.set_mocks`` lets the program run
in-process. Two recorders together give the resource graph:

- ``RecordingMocks`` answers each resource with realistic ids and outputs (ARNs shaped the way
  AWS shapes them) and each provider function (caller identity, region);
- ``RecordingMonitor`` sees every ``RegisterResource`` request, which is the only place the
  parent, dependencies and property dependencies of a resource are visible.

``plan_stack(stack)`` returns the graph document (``{"stack", "project", "resources": [...]}``),
the public interface that ``agentry plan``, ``agentry check`` and the local environment read.
"""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from pulumi import runtime
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc, settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from agentry_stacks.deploy.config import (
    PROJECT,
    EnvironmentConfig,
    load_stack_config,
    project_root,
    pulumi_config_values,
)

__all__ = ["MOCK_ACCOUNT_ID", "RecordingMocks", "RecordingMonitor", "plan_stack"]

#: The account every mocked ARN carries (AWS's documentation account id).
MOCK_ACCOUNT_ID = "123456789012"

Program = Callable[[EnvironmentConfig], None]


def _digest(*parts: str, length: int = 32) -> str:
    """A stable hex digest, so two plans of the same program give identical ids."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:length]


def _uuid(*parts: str) -> str:
    return str(uuid.UUID(_digest(*parts)))


class RecordingMocks(pulumi_mocks.Mocks):
    """Answers resources and provider calls as AWS would, for one account and region."""

    def __init__(self, *, region: str, account_id: str = MOCK_ACCOUNT_ID) -> None:
        self.region = region
        self.account_id = account_id
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def call(self, args: pulumi_mocks.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
        """Answer ``getCallerIdentity``, ``getRegion`` and ``getPartition``; ``{}`` otherwise."""
        self.calls.append((args.token, dict(args.args)))
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": self.account_id,
                "arn": f"arn:aws:iam::{self.account_id}:user/agentry-plan",
                "userId": "AIDAAGENTRYPLAN000000",
                "id": self.account_id,
            }
        if args.token == "aws:index/getRegion:getRegion":
            # pulumi-aws v7 answers `region`; `name` is the v6 spelling, kept for older code.
            return {
                "region": self.region,
                "name": self.region,
                "id": self.region,
                "endpoint": f"ec2.{self.region}.amazonaws.com",
                "description": self.region,
            }
        if args.token == "aws:index/getPartition:getPartition":
            return {
                "partition": "aws",
                "id": "aws",
                "dnsSuffix": "amazonaws.com",
                "reverseDnsPrefix": "com.amazonaws",
            }
        return {}

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        """Return the physical id and the outputs (inputs plus computed attributes)."""
        if not args.custom:
            return "", {}
        inputs = dict(args.inputs)
        resource_id, computed = self._computed(args.typ, args.name, inputs)
        return resource_id, {**inputs, **computed}

    def _arn(self, service: str, resource: str, *, region: bool = True) -> str:
        return f"arn:aws:{service}:{self.region if region else ''}:{self.account_id}:{resource}"

    def _computed(
        self, typ: str, logical: str, inputs: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        name = str(inputs.get("name") or logical)
        region, account = self.region, self.account_id
        if typ == "aws:dynamodb/table:Table":
            arn = self._arn("dynamodb", f"table/{name}")
            return name, {
                "arn": arn,
                "streamArn": f"{arn}/stream/2024-01-01T00:00:00.000",
                "streamLabel": "2024-01-01T00:00:00.000",
            }
        if typ == "aws:sqs/queue:Queue":
            url = f"https://sqs.{region}.amazonaws.com/{account}/{name}"
            return url, {"arn": self._arn("sqs", name), "url": url, "name": name}
        if typ.startswith("aws:sqs/") and "queueUrl" in inputs:
            return str(inputs.get("queueUrl", logical)), {}
        if typ == "aws:sns/topic:Topic":
            arn = self._arn("sns", name)
            return arn, {"arn": arn, "name": name}
        if typ == "aws:sns/topicSubscription:TopicSubscription":
            arn = f"{inputs.get('topic', self._arn('sns', logical))}:{_uuid(logical)}"
            return arn, {"arn": arn, "ownerId": account}
        if typ == "aws:sns/topicPolicy:TopicPolicy":
            return str(inputs.get("arn", logical)), {"owner": account}
        if typ == "aws:lambda/function:Function":
            arn = self._arn("lambda", f"function:{name}")
            invoke = (
                f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{arn}/invocations"
            )
            return name, {
                "arn": arn,
                "invokeArn": invoke,
                "qualifiedArn": f"{arn}:1",
                "qualifiedInvokeArn": invoke.replace(arn, f"{arn}:1"),
                "version": "1",
                "lastModified": "2024-01-01T00:00:00.000+0000",
                "sourceCodeHash": inputs.get("sourceCodeHash", _digest(logical)),
            }
        if typ == "aws:lambda/eventSourceMapping:EventSourceMapping":
            mapping = _uuid(logical)
            return mapping, {
                "uuid": mapping,
                "arn": self._arn("lambda", f"event-source-mapping:{mapping}"),
                "functionArn": self._arn("lambda", f"function:{inputs.get('functionName')}"),
                "state": "Enabled",
            }
        if typ == "aws:lambda/permission:Permission":
            return str(inputs.get("statementId", logical)), {}
        if typ == "aws:iam/role:Role":
            path = str(inputs.get("path") or "/")
            return name, {
                "arn": f"arn:aws:iam::{account}:role{path}{name}",
                "uniqueId": f"AROA{_digest(logical, length=17).upper()}",
                "createDate": "2024-01-01T00:00:00Z",
            }
        if typ == "aws:iam/rolePolicy:RolePolicy":
            return f"{inputs.get('role')}:{name}", {}
        if typ == "aws:iam/policy:Policy":
            arn = f"arn:aws:iam::{account}:policy/{name}"
            return arn, {"arn": arn, "policyId": f"ANPA{_digest(logical, length=17).upper()}"}
        if typ == "aws:cloudwatch/eventBus:EventBus":
            return name, {"arn": self._arn("events", f"event-bus/{name}")}
        if typ == "aws:cloudwatch/eventRule:EventRule":
            bus = str(inputs.get("eventBusName") or "default")
            path = f"rule/{name}" if bus == "default" else f"rule/{bus}/{name}"
            rule_id = name if bus == "default" else f"{bus}|{name}"
            return rule_id, {"arn": self._arn("events", path)}
        if typ == "aws:cloudwatch/eventTarget:EventTarget":
            target = str(inputs.get("targetId") or logical)
            return f"{inputs.get('eventBusName', 'default')}-{inputs.get('rule')}-{target}", {
                "targetId": target
            }
        if typ == "aws:cloudwatch/eventArchive:EventArchive":
            return name, {"arn": self._arn("events", f"archive/{name}")}
        if typ == "aws:sfn/stateMachine:StateMachine":
            arn = self._arn("states", f"stateMachine:{name}")
            return arn, {
                "arn": arn,
                "revisionId": _uuid(logical, "revision"),
                "stateMachineVersionArn": f"{arn}:1",
                "status": "ACTIVE",
                "creationDate": "2024-01-01T00:00:00Z",
            }
        if typ == "aws:cloudwatch/logGroup:LogGroup":
            # The provider reports the ARN without the trailing ":*" the API returns.
            return name, {"arn": self._arn("logs", f"log-group:{name}")}
        if typ == "aws:kms/key:Key":
            key_id = _uuid(logical)
            return key_id, {"arn": self._arn("kms", f"key/{key_id}"), "keyId": key_id}
        if typ == "aws:kms/alias:Alias":
            return name, {
                "arn": self._arn("kms", name),
                "targetKeyArn": self._arn("kms", f"key/{inputs.get('targetKeyId')}"),
            }
        if typ == "aws:apigatewayv2/api:Api":
            api_id = _digest(logical, length=10)
            return api_id, {
                "apiEndpoint": f"https://{api_id}.execute-api.{region}.amazonaws.com",
                "executionArn": self._arn("execute-api", api_id),
                "arn": f"arn:aws:apigateway:{region}::/apis/{api_id}",
            }
        if typ == "aws:apigatewayv2/stage:Stage":
            api_id, stage = inputs.get("apiId", ""), name
            return stage, {
                "arn": f"arn:aws:apigateway:{region}::/apis/{api_id}/stages/{stage}",
                "executionArn": self._arn("execute-api", f"{api_id}/{stage}"),
                "invokeUrl": f"https://{api_id}.execute-api.{region}.amazonaws.com/{stage}",
            }
        if typ.startswith("aws:apigatewayv2/"):
            return _digest(typ, logical, length=7), {}
        if typ == "aws:cloudwatch/metricAlarm:MetricAlarm":
            return name, {"arn": self._arn("cloudwatch", f"alarm:{name}")}
        if typ == "aws:s3/bucket:Bucket" or typ == "aws:s3/bucketV2:BucketV2":
            bucket = str(inputs.get("bucket") or logical)
            return bucket, {
                "arn": f"arn:aws:s3:::{bucket}",
                "bucket": bucket,
                "bucketDomainName": f"{bucket}.s3.amazonaws.com",
                "bucketRegionalDomainName": f"{bucket}.s3.{region}.amazonaws.com",
            }
        # Any other type: a stable id and, for named resources, a plausible ARN.
        service = typ.split(":")[1].split("/")[0]
        return f"{name}-{_digest(typ, logical, length=8)}", {
            "arn": self._arn(service, f"{typ.rsplit(':', 1)[-1].lower()}/{name}")
        }


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """A mock monitor that records each registered resource's request and the mock's answer."""

    def __init__(self, mocks: pulumi_mocks.Mocks) -> None:
        super().__init__(mocks)
        self.records: list[dict[str, Any]] = []
        self.stack_urn: str | None = None
        self._lock = threading.Lock()

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        """URNs as the engine forms them: the root Stack's type is not part of its children's."""
        if parent.split("::")[2:3] == ["pulumi:pulumi:Stack"]:
            parent = ""
        return super().make_urn(parent, type_, name)

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - the gRPC method's name
        """Register as the base monitor does, then record type, name, parent and dependencies."""
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            self.stack_urn = response.urn
            return response
        record = {
            "type": request.type,
            "name": request.name,
            "urn": response.urn,
            "parent": request.parent or None,
            "custom": bool(request.custom),
            # The replacement order and protection the engine would apply (issue #12): named
            # resources are deleted before their replacement, data-holding ones protected.
            "options": {
                "protect": bool(request.protect),
                "deleteBeforeReplace": bool(request.deleteBeforeReplace),
            },
            "dependencies": sorted(request.dependencies),
            "propertyDependencies": {
                key: sorted(deps.urns)
                for key, deps in sorted(request.propertyDependencies.items())
                if deps.urns
            },
            # The wire form, not `rpc.deserialize_properties`: deserialising a resource
            # reference rehydrates a resource, which re-enters the runtime and deadlocks.
            "inputs": json_format.MessageToDict(request.object),
            "outputs": (
                {"id": response.id, **json_format.MessageToDict(response.object)}
                if request.custom
                else {}
            ),
        }
        with self._lock:  # registrations arrive on the runtime's executor threads
            self.records.append(record)
        return response


def _jsonable(value: Any, root: Path) -> Any:
    """Plain JSON for an engine value, read from the wire form (not rehydrated objects).

    Secrets are unwrapped, resource references become ``{"urn": ...}``, assets and archives
    become paths relative to the repo root; numbers (floats on the wire) become ints when
    integral.
    """
    if isinstance(value, Mapping):
        signature = value.get(rpc._special_sig_key)
        if signature == rpc._special_secret_sig:
            return _jsonable(value.get("value"), root)
        if signature == rpc._special_resource_sig:
            return {"urn": value.get("urn"), "id": value.get("id")}
        if signature in {rpc._special_asset_sig, rpc._special_archive_sig}:
            kind = "asset" if signature == rpc._special_asset_sig else "archive"
            if "path" in value:
                return {kind: _relative(str(value["path"]), root)}
            if "assets" in value:
                return {kind: _jsonable(value["assets"], root)}
            if "text" in value:
                return {"text": value["text"]}
            return {"uri": value.get("uri")}
        return {str(key): _jsonable(item, root) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item, root) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _relative(path: str, root: Path) -> str:
    resolved = Path(path) if os.path.isabs(path) else Path.cwd() / path
    try:
        return resolved.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path


def _fresh_runtime() -> None:
    """Forget the previous program run so the next stack starts from a clean runtime.

    ``set_mocks`` creates a root Stack only when none exists, so without this the second stack's
    resources would be parented to the first stack's URN (semi-private ``settings.ROOT``).
    Config is a context variable of its own and is replaced by ``set_all_config``.
    """
    settings.ROOT.set(None)
    runtime.set_all_config({})


def _real_program(config: EnvironmentConfig) -> None:
    # Imported late: the program imports pulumi_aws (slow) and the platform components.
    from agentry_stacks.deploy.program import run

    run(config)


def plan_stack(
    stack: str,
    *,
    project_dir: Path | None = None,
    program: Program | None = None,
) -> dict[str, Any]:
    """Run the stack's program under recording mocks and return its resource graph document.

    The config is read from ``Pulumi.<stack>.yaml`` and handed to the runtime exactly as the
    CLI would (non-string values as JSON strings), then validated from ``pulumi.Config`` as
    under ``pulumi up``. Raises ``ConfigError`` (naming every bad key) before any resource is
    declared. ``program`` defaults to ``agentry_stacks.deploy.program.run``.
    """
    root = project_dir or project_root()
    config = load_stack_config(stack, project_dir=root)
    mocks = RecordingMocks(region=config.region)
    monitor = RecordingMonitor(mocks)

    _fresh_runtime()
    runtime.set_all_config(pulumi_config_values(stack, project_dir=root))
    runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)
    run = program or _real_program
    try:
        # The same validation path `program.main()` takes under `pulumi up`.
        _sync_await(run_pulumi_func(lambda: run(EnvironmentConfig.from_pulumi(project_dir=root))))
    finally:
        _fresh_runtime()

    resources = [
        {
            **record,
            "parent": None if record["parent"] == monitor.stack_urn else record["parent"],
            "inputs": _jsonable(record["inputs"], root),
            "outputs": _jsonable(record["outputs"], root),
        }
        for record in monitor.records
    ]
    return {"stack": stack, "project": PROJECT, "resources": _tree_order(resources)}


def _tree_order(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Parents before their children, siblings by type and name.

    Registrations arrive from the runtime's executor threads in no fixed order; a stable order
    makes two plans of the same program byte-identical.
    """
    children: dict[str | None, list[dict[str, Any]]] = {}
    for resource in resources:
        children.setdefault(resource["parent"], []).append(resource)
    ordered: list[dict[str, Any]] = []
    pending = sorted(children.get(None, []), key=_sibling_key, reverse=True)
    while pending:
        resource = pending.pop()
        ordered.append(resource)
        pending.extend(sorted(children.get(resource["urn"], []), key=_sibling_key, reverse=True))
    return ordered


def _sibling_key(resource: dict[str, Any]) -> tuple[str, str]:
    return (resource["type"], resource["name"])
