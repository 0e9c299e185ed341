"""The local environment with each function running as its own role, under moto's IAM checks.

For every Lambda function of the graph, its role and the role's inline policies (from the same
graph ``pulumi up`` would deploy) are created in moto IAM and assumed through STS; the
function's runtime is rebuilt from a boto3 session holding those temporary credentials
(``Runtime.from_env(environ, session=...)``), and IAM enforcement is switched on for exactly
the duration of each handler invocation. So a call the handler code makes that its role does
not grant fails the way it would after ``pulumi up``: with ``AccessDenied``.

What moto checks, and what it cannot (so what this proves):

- moto authorises DynamoDB and EventBridge calls against resource ``*``, so a statement scoped
  to an ARN would never match. The roles are loaded with their statements' ``Resource``
  widened to ``*`` and conditions dropped: this proves each role grants every *action* its
  code calls. That the resources are narrow enough is the policy pack's proof.
- moto checks ``TransactWriteItems`` as one action, where AWS checks the action of each item
  in it (ours hold only ``Put``): a statement that grants ``dynamodb:PutItem`` is given
  ``dynamodb:TransactWriteItems`` too.
- Bedrock is out of moto's scope here: the worker talks to the fake Converse endpoint, not to
  moto (which would check ``bedrock:Converse`` where AWS checks ``bedrock:InvokeModel``).
- The environment's own plumbing (the SQS event source mapping, EventBridge rules, the Step
  Functions interpreter running the recovery machine) plays AWS-managed services and runs
  unchecked; moto does not apply a state machine's role to its service integrations.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import boto3
from moto.core.authorization import enable_iam_authentication

from agentry_stacks.local import LocalEnvironment

ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
FUNCTION = "aws:lambda/function:Function"
# moto's name of an action -> the AWS actions that authorise it for our calls.
_MOTO_ONLY_ACTIONS = {"dynamodb:TransactWriteItems": "dynamodb:PutItem"}


def without_statement(graph: Mapping[str, Any], policy: str, sid: str) -> dict[str, Any]:
    """A copy of ``graph`` whose role policy ``policy`` lacks the statement ``sid``."""
    changed = copy.deepcopy(dict(graph))
    for resource in changed["resources"]:
        if resource["type"] == ROLE_POLICY and resource["name"] == policy:
            document = json.loads(resource["inputs"]["policy"])
            kept = [s for s in document["Statement"] if s.get("Sid") != sid]
            if len(kept) == len(document["Statement"]):
                raise ValueError(f"{policy}: has no statement {sid!r}")
            resource["inputs"]["policy"] = json.dumps({**document, "Statement": kept})
            return changed
    raise ValueError(f"graph: no role policy {policy!r}")


@contextmanager
def enforced_environment(
    graph: Mapping[str, Any], *, failing: Collection[str] = ()
) -> Iterator[EnforcedEnvironment]:
    """A ``LocalEnvironment`` of ``graph`` whose functions run as their roles, enforced."""
    with LocalEnvironment(graph=graph, fail_tools=failing) as env:
        world = EnforcedEnvironment(env, graph)
        world.use_tools(failing=failing)
        yield world


class EnforcedEnvironment:
    """The functions of a local environment rewired to their roles' credentials."""

    def __init__(self, env: LocalEnvironment, graph: Mapping[str, Any]) -> None:
        self.env = env
        self.iam = env.clients["iam"]
        self.sessions: dict[str, boto3.session.Session] = {}
        self.denials: list[str] = []
        resources = graph["resources"]
        policies = [r for r in resources if r["type"] == ROLE_POLICY]
        for function in resources:
            if function["type"] != FUNCTION:
                continue
            role_arn = function["outputs"]["role"]
            role_name = role_arn.rsplit("/", 1)[-1]
            documents = [
                json.loads(p["inputs"]["policy"])
                for p in policies
                if p["inputs"]["role"] == role_name
            ]
            self.sessions[function["inputs"]["name"]] = self._assume(role_name, documents)
        for local in env.functions.values():
            local.invoke = self._enforced(local.invoke)  # type: ignore[method-assign,assignment]

    def use_tools(self, *, failing: Collection[str] = ()) -> None:
        """Give every function a fresh runtime (as a redeploy would), built from its role."""
        self.env.set_tool_faults(failing=failing)
        for function in self.env.functions.values():
            function.runtime = self.env.make_runtime(
                function.environment, session=self.sessions[function.name]
            )

    def session(self, function_name: str) -> boto3.session.Session:
        """The assumed-role session of one function (by its physical name)."""
        return self.sessions[function_name]

    @contextmanager
    def enforcing(self) -> Iterator[None]:
        """IAM checks on, for calls made inside the block."""
        with enable_iam_authentication():
            yield

    # --- private ----------------------------------------------------------------------------

    def _assume(self, role_name: str, documents: list[dict[str, Any]]) -> boto3.session.Session:
        # The environment already made the graph's roles (with their trust policies); moto does
        # not check trust while enforcement is off, so the test can assume the functions' roles.
        role = self.iam.get_role(RoleName=role_name)
        for index, document in enumerate(documents):
            self.iam.put_role_policy(
                RoleName=role_name,
                PolicyName=f"policy-{index}",
                PolicyDocument=json.dumps(_as_moto_checks_it(document)),
            )
        region = self.env.graph.region()
        sts = boto3.client("sts", region_name=region)
        credentials = sts.assume_role(
            RoleArn=role["Role"]["Arn"], RoleSessionName=f"{role_name}-local"
        )["Credentials"]
        session = boto3.session.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name=region,
        )
        # Clients copy the session's hooks when they are made: every client of this role
        # reports its denials (a handler logs and retries them rather than raising).
        session.events.register("after-call", self._record_denial(role_name))
        return session

    def _record_denial(self, role_name: str) -> Callable[..., None]:
        def record(http_response: Any, parsed: Any, model: Any, **_: Any) -> None:
            if http_response.status_code == 403:
                code = parsed.get("Error", {}).get("Code", "403")
                self.denials.append(f"{role_name}: {model.name} denied ({code})")

        return record

    def _enforced(self, invoke: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def enforced_invoke(event: dict[str, Any]) -> Any:
            with self.enforcing():
                return invoke(event)

        return enforced_invoke


def _as_moto_checks_it(document: dict[str, Any]) -> dict[str, Any]:
    """The policy as moto can evaluate it (see the module doc): actions kept, resources ``*``."""
    statements = []
    for statement in document["Statement"]:
        actions = statement["Action"]
        actions = [actions] if isinstance(actions, str) else list(actions)
        for moto_action, aws_action in _MOTO_ONLY_ACTIONS.items():
            if aws_action in actions:
                actions.append(moto_action)
        statements.append({"Effect": statement["Effect"], "Action": actions, "Resource": "*"})
    return {"Version": "2012-10-17", "Statement": statements}
