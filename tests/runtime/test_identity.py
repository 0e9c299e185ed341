"""Who is calling: principals from the IAM authorizer context, and operators by role name."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from support.world import World

from agentry_offline.events import http_api_event
from agentry_runtime.identity import (
    Caller,
    MissingIdentityError,
    Operators,
    caller_of,
    principal_of,
)
from agentry_runtime.settings import AccessSettings

GOAL = "Book a flight from New York to San Francisco for tomorrow"


@pytest.mark.unit
@pytest.mark.parametrize(
    ("arn", "principal"),
    [
        (
            "arn:aws:sts::111122223333:assumed-role/Deployer/session-1",
            "arn:aws:iam::111122223333:role/Deployer",
        ),
        (
            "arn:aws:iam::111122223333:role/teams/Deployer",
            "arn:aws:iam::111122223333:role/Deployer",
        ),
        ("arn:aws:iam::111122223333:user/ops/alice", "arn:aws:iam::111122223333:user/alice"),
        ("arn:aws:iam::111122223333:root", "arn:aws:iam::111122223333:root"),
        (
            "arn:aws-us-gov:sts::111122223333:assumed-role/R/s",
            "arn:aws-us-gov:iam::111122223333:role/R",
        ),
    ],
)
def test_every_session_of_a_role_is_the_role(arn: str, principal: str) -> None:
    assert principal_of(arn) == principal


@pytest.mark.unit
@pytest.mark.parametrize(
    "arn", ["", "alice", "arn:aws:s3:::bucket", "arn:aws:sts::1:assumed-role/R/s", "arn:aws:iam::"]
)
def test_text_that_is_not_a_principal_is_refused(arn: str) -> None:
    with pytest.raises(ValueError, match="not an IAM principal ARN"):
        principal_of(arn)


@pytest.mark.unit
def test_a_request_without_an_iam_identity_has_no_caller() -> None:
    # GIVEN requests unsigned, with a non-principal ARN, and with an account that disagrees
    unsigned = http_api_event("GET", "/agents", caller=None)
    odd = http_api_event("GET", "/agents", caller="arn:aws:sts::111122223333:assumed-role/R/s")
    odd["requestContext"]["authorizer"]["iam"]["accountId"] = "999999999999"
    for event in (unsigned, odd):
        # THEN no caller is made of them
        with pytest.raises(MissingIdentityError):
            caller_of(event)


@pytest.mark.unit
def test_operators_match_by_account_and_role_name_whatever_the_path() -> None:
    # GIVEN an IAM Identity Center role named with its path
    operators = Operators(
        ["arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Ops_ab12"]
    )
    session = "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Ops_ab12/carol@example.com"
    # THEN its sessions are operators; the same name in another account, or a user, is not
    assert Caller(principal_of(session), "111122223333") in operators
    other = "arn:aws:sts::444455556666:assumed-role/AWSReservedSSO_Ops_ab12/mallory"
    assert Caller(principal_of(other), "444455556666") not in operators
    user = "arn:aws:iam::111122223333:user/AWSReservedSSO_Ops_ab12"
    assert Caller(principal_of(user), "111122223333") not in operators
    with pytest.raises(ValueError, match="not an IAM role ARN"):
        Operators(["arn:aws:iam::111122223333:user/alice"])


def test_a_caller_at_the_cap_of_unfinished_agents_gets_429_until_one_ends(
    world_factory: Callable[..., World],
) -> None:
    # GIVEN a cap of two unfinished agents per caller
    world = world_factory()
    world.runtime.access = AccessSettings(
        operators=[], max_active_agents_per_caller=2, approval_window_seconds=3600
    )
    first, _ = world.start(GOAL), world.start(GOAL)
    # WHEN a third is started THEN 429 naming the agents, nothing stored
    status, body = world.call("POST", "/agents", {"goal": GOAL})
    assert status == 429
    assert body["error"]["code"] == "TooManyAgents"
    # AND another caller is not affected by it
    other = "arn:aws:sts::123456789012:assumed-role/other-team/x"
    assert world.call("POST", "/agents", {"goal": GOAL}, caller=other)[0] == 202
    # AND once one of the caller's agents ends, it may start another
    assert world.call("POST", f"/agents/{first}/cancel")[0] == 200
    assert world.call("POST", "/agents", {"goal": GOAL})[0] == 202
