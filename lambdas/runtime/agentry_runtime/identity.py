"""Who is calling: the IAM principal API Gateway authenticated, and whether it is an operator.

The HTTP API's routes use IAM authorization, so API Gateway verifies each request's SigV4
signature and passes the caller in ``requestContext.authorizer.iam`` (``userArn``,
``accountId``). An assumed-role session's ARN
(``arn:aws:sts::111122223333:assumed-role/Name/session``) names the role without its path and
with a per-session suffix, so owners are recorded as the role itself
(``arn:aws:iam::111122223333:role/Name``): every session of a role owns the same agents.
Operators are matched by account and role name for the same reason: an IAM Identity Center
role lives under a path (``role/aws-reserved/sso.amazonaws.com/...``) its sessions never show.
See https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html
(payload format 2.0) and https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Caller", "MissingIdentityError", "Operators", "caller_of", "principal_of"]

_ASSUMED_ROLE = re.compile(r"^arn:(aws[a-z-]*):sts::(\d{12}):assumed-role/([\w+=,.@-]+)/[^/]+$")
_IAM = re.compile(r"^arn:(aws[a-z-]*):iam::(\d{12}):(role|user)/(?:[\w+=,.@/-]*/)?([\w+=,.@-]+)$")
_OTHER_STS = re.compile(r"^arn:(aws[a-z-]*):sts::(\d{12}):federated-user/[\w+=,.@-]+$")
_ROOT = re.compile(r"^arn:(aws[a-z-]*):iam::(\d{12}):root$")


class MissingIdentityError(Exception):
    """The request carries no IAM identity (the route was not IAM-authorized)."""


@dataclass(frozen=True)
class Caller:
    """An authenticated caller: its normalised principal ARN and its account."""

    principal: str
    account: str

    @property
    def role_name(self) -> str | None:
        """The role's name, when the principal is a role."""
        match = _IAM.match(self.principal)
        return match.group(4) if match and match.group(3) == "role" else None


def principal_of(arn: str) -> str:
    """The principal an ARN stands for: an assumed-role session becomes its role.

    ``ValueError`` for text that is not an IAM or STS principal ARN.
    """
    if match := _ASSUMED_ROLE.match(arn):
        partition, account, role = match.groups()
        return f"arn:{partition}:iam::{account}:role/{role}"
    if match := _IAM.match(arn):
        partition, account, kind, name = match.groups()
        # A path never changes who the principal is; without it the ARN of a user or role is
        # the same however the caller's session names it.
        return f"arn:{partition}:iam::{account}:{kind}/{name}"
    if _OTHER_STS.match(arn) or _ROOT.match(arn):
        return arn
    raise ValueError(f"{arn[:200]!r} is not an IAM principal ARN")


def caller_of(event: Mapping[str, Any]) -> Caller:
    """The caller of an HTTP API (payload 2.0) request; ``MissingIdentityError`` without one."""
    context = event.get("requestContext")
    authorizer = context.get("authorizer") if isinstance(context, Mapping) else None
    iam = authorizer.get("iam") if isinstance(authorizer, Mapping) else None
    if not isinstance(iam, Mapping):
        raise MissingIdentityError("the request was not signed with IAM credentials")
    arn, account = iam.get("userArn"), iam.get("accountId")
    if not isinstance(arn, str) or not isinstance(account, str):
        raise MissingIdentityError("the request's IAM identity has no userArn or accountId")
    try:
        principal = principal_of(arn)
    except ValueError as exc:
        raise MissingIdentityError(str(exc)) from exc
    if principal.split(":")[4] != account:
        raise MissingIdentityError("the request's userArn and accountId disagree")
    return Caller(principal=principal, account=account)


class Operators:
    """The roles that may act on any agent (``agentry:operators``), by account and role name."""

    def __init__(self, role_arns: Iterable[str]) -> None:
        self._roles: set[tuple[str, str]] = set()
        for arn in role_arns:
            match = _IAM.match(arn)
            if match is None or match.group(3) != "role":
                raise ValueError(f"operators: {arn!r} is not an IAM role ARN")
            self._roles.add((match.group(2), match.group(4)))

    def __contains__(self, caller: object) -> bool:
        if not isinstance(caller, Caller) or caller.role_name is None:
            return False
        return (caller.account, caller.role_name) in self._roles

    def __bool__(self) -> bool:
        return bool(self._roles)
