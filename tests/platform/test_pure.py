"""Pure functions of agentry_platform: Bedrock statements, patterns, naming, IAM, recovery ASL."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from statelint.linter import Linter

from agentry_platform.lib.bedrock import (
    InferenceProfileGrant,
    bedrock_statements,
    foundation_model_arn,
)
from agentry_platform.lib.iam import (
    bus_policy,
    deny_insecure_transport,
    queue_send_policy,
    queue_tls_policy,
    recovery_statements,
    rule_arn,
    topic_publish_policy,
    worker_statements,
)
from agentry_platform.lib.naming import physical_name, stack_tags
from agentry_platform.lib.patterns import error_pattern, step_pattern
from agentry_platform.lib.recovery_definition import backoff_delays, recovery_definition
from agentry_policies.documents import Decision, Request, evaluate, parse_document
from agentry_runtime.contract import (
    EVENT_SOURCE,
    RETRYABLE_ERRORS,
    AgentErrorDetail,
    DetailType,
    ErrorType,
)

pytestmark = pytest.mark.unit

HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"
PROFILE = InferenceProfileGrant(
    id=f"us.{HAIKU}", model=HAIKU, regions=("us-east-1", "us-east-2", "us-west-2")
)


# --- Bedrock --------------------------------------------------------------------------------


def test_models_get_invoke_model_on_their_foundation_model_arns() -> None:
    # GIVEN two allowed models WHEN statements are generated
    [stmt] = bedrock_statements(
        region="eu-west-1", account_id="111122223333", models=[HAIKU, "amazon.nova-lite-v1:0"]
    )
    # THEN InvokeModel (which authorises Converse) is granted on exactly those ARNs
    assert stmt["Action"] == ["bedrock:InvokeModel"]
    assert stmt["Resource"] == [
        "arn:aws:bedrock:eu-west-1::foundation-model/amazon.nova-lite-v1:0",
        f"arn:aws:bedrock:eu-west-1::foundation-model/{HAIKU}",
    ]
    assert "Condition" not in stmt


def test_profile_grants_profile_and_each_destination_region_under_condition() -> None:
    # GIVEN a system inference profile routing to three regions
    statements = bedrock_statements(
        region="us-east-1", account_id="111122223333", models=[HAIKU], profiles=[PROFILE]
    )
    # THEN the profile ARN is granted, and the model in every destination region only via it
    profile_arn = f"arn:aws:bedrock:us-east-1:111122223333:inference-profile/us.{HAIKU}"
    by_sid = {s["Sid"]: s for s in statements}
    assert by_sid["InvokeProfile0"]["Resource"] == [profile_arn]
    scoped = by_sid["InvokeProfileModels0"]
    assert scoped["Resource"] == [foundation_model_arn(r, HAIKU) for r in PROFILE.regions]
    assert scoped["Condition"] == {"StringEquals": {"bedrock:InferenceProfileArn": profile_arn}}
    assert all(s["Action"] == ["bedrock:InvokeModel"] for s in statements)


@pytest.mark.parametrize("model", ["anthropic.*", "*", "anthropic.claude?", "Anthropic.X"])
def test_wildcard_or_malformed_models_are_refused(model: str) -> None:
    # GIVEN a model id that is not concrete WHEN statements are generated THEN it is refused
    with pytest.raises(ValueError, match="model"):
        bedrock_statements(region="us-east-1", account_id="1", models=[model])


def test_profile_without_regions_is_refused() -> None:
    # GIVEN a profile with no destination regions THEN the error names the field
    empty = InferenceProfileGrant(id=PROFILE.id, model=HAIKU, regions=())
    with pytest.raises(ValueError, match=r"profiles\[0\]\.regions"):
        bedrock_statements(region="us-east-1", account_id="1", models=[], profiles=[empty])


# --- patterns, naming, IAM ------------------------------------------------------------------


def test_step_pattern_takes_the_announcers_step_requests() -> None:
    assert step_pattern() == {
        "source": [EVENT_SOURCE],
        "detail-type": [DetailType.STEP_REQUESTED.value],
    }


def test_the_announcer_takes_only_header_writes_from_the_stream() -> None:
    from agentry_platform.lib.patterns import header_changes_pattern
    from agentry_stacks.local.streams import matches

    [pattern] = header_changes_pattern()
    header = {"eventName": "MODIFY", "dynamodb": {"Keys": {"sk": {"S": "META"}}}}
    message = {"eventName": "INSERT", "dynamodb": {"Keys": {"sk": {"S": "MSG#00000001"}}}}
    deleted = {"eventName": "REMOVE", "dynamodb": {"Keys": {"sk": {"S": "META"}}}}
    assert [matches(pattern, r) for r in (header, message, deleted)] == [True, False, False]


def test_error_pattern_takes_runtime_agent_errors_only() -> None:
    assert error_pattern() == {
        "source": [EVENT_SOURCE],
        "detail-type": [DetailType.AGENT_ERROR.value],
    }


def test_physical_names_are_prefixed_and_checked() -> None:
    assert physical_name("dev", "steps-dlq") == "agentry-dev-steps-dlq"
    with pytest.raises(ValueError, match="suffix"):
        physical_name("dev", "Bad_Name")
    with pytest.raises(ValueError, match="longer than 64"):
        physical_name("dev", "x" * 60)


def test_required_tags_win_over_config_tags() -> None:
    # GIVEN config tags that try to override a required tag
    tags = stack_tags("prod", {"Owner": "team", "Environment": "oops"})
    # THEN the required tags hold the stack's values and extra tags are kept
    assert tags == {
        "Owner": "team",
        "Project": "agentry",
        "Environment": "prod",
        "ManagedBy": "pulumi",
    }


def _resources(statements: list[dict[str, Any]]) -> dict[str, list[str]]:
    return {s["Sid"]: s["Resource"] for s in statements}


def test_worker_statements_are_scoped_to_arns_and_key_is_optional() -> None:
    # GIVEN no CMK WHEN the worker's statements are built THEN no KMS grant appears
    without_key = worker_statements(table_arn="t", queue_arn="q", bedrock=[], key_arn=None)
    assert "UseDataKey" not in _resources(without_key)
    # AND with a key, KMS is granted on that key only; the worker never publishes
    with_key = worker_statements(table_arn="t", queue_arn="q", bedrock=[], key_arn="k")
    assert _resources(with_key) == {
        "AgentTable": ["t"],
        "ConsumeSteps": ["q"],
        "UseDataKey": ["k"],
    }
    assert not [a for s in with_key for a in s["Action"] if a.startswith("events:")]
    assert all("*" not in a for s in with_key for a in s["Action"])


def test_recovery_role_uses_star_only_for_actions_without_resource_permissions() -> None:
    statements = recovery_statements(table_arn="t", topic_arn="s", key_arn=None)
    assert not [a for s in statements for a in s["Action"] if a.startswith("events:")]
    starred = {a for s in statements if s["Resource"] == ["*"] for a in s["Action"]}
    assert starred
    assert all(a.startswith(("logs:", "xray:")) for a in starred)


def test_rule_arn_nests_under_custom_bus() -> None:
    arn = rule_arn("arn:aws:events:us-east-1:1:event-bus/agentry-dev-bus", "agentry-dev-steps")
    assert arn == "arn:aws:events:us-east-1:1:rule/agentry-dev-bus/agentry-dev-steps"


def test_queue_policy_admits_only_named_rules_over_tls() -> None:
    stmt, tls = queue_send_policy(queue_arn="q", source_arns=["r"])["Statement"]
    assert stmt["Principal"] == {"Service": "events.amazonaws.com"}
    assert stmt["Condition"] == {"ArnLike": {"aws:SourceArn": ["r"]}}
    assert tls == deny_insecure_transport(["sqs:*"], "q")
    assert queue_tls_policy(queue_arn="q")["Statement"] == [tls]


_ACCOUNT = "123456789012"
_TOPIC = f"arn:aws:sns:us-east-1:{_ACCOUNT}:agentry-test-needs-human"
_BUS = f"arn:aws:events:us-east-1:{_ACCOUNT}:event-bus/agentry-test-bus"
_RECOVERY = f"arn:aws:iam::{_ACCOUNT}:role/agentry-test-recovery-role"
_OUTSIDER = f"arn:aws:iam::{_ACCOUNT}:role/someone-else"


def _decide(document: dict[str, Any], request: Request) -> Decision:
    # Judged by the policy pack's own evaluator, the reader the pack's rules use.
    return evaluate([parse_document(document, "policy", "resource")], request)


def test_topic_policy_lets_only_the_role_publish() -> None:
    doc = topic_publish_policy(topic_arn=_TOPIC, account_id=_ACCOUNT, role_arns=[_RECOVERY])
    allows = [s for s in doc["Statement"] if s["Effect"] == "Allow"]
    publishers = [s for s in allows if "sns:Publish" in json.dumps(s["Action"])]
    assert [s["Principal"] for s in publishers] == [{"AWS": [_RECOVERY]}]
    # AND every other principal of the account, or a service, is refused explicitly
    for principal in (_OUTSIDER, "cloudwatch.amazonaws.com"):
        decision = _decide(doc, Request(principal, "sns:Publish", _TOPIC))
        assert decision is Decision.EXPLICIT_DENY, principal
    assert _decide(doc, Request(_RECOVERY, "sns:Publish", _TOPIC)) is Decision.ALLOW
    plain = Request(_RECOVERY, "sns:Publish", _TOPIC, {"aws:SecureTransport": "false"})
    assert _decide(doc, plain) is Decision.EXPLICIT_DENY


def test_alarm_topic_admits_cloudwatch_of_this_account_only() -> None:
    doc = topic_publish_policy(
        topic_arn=_TOPIC, account_id=_ACCOUNT, service="cloudwatch.amazonaws.com"
    )
    own = {"aws:SourceAccount": _ACCOUNT}
    cloudwatch = Request("cloudwatch.amazonaws.com", "sns:Publish", _TOPIC, own)
    assert _decide(doc, cloudwatch) is Decision.ALLOW
    foreign = Request("cloudwatch.amazonaws.com", "sns:Publish", _TOPIC, {"aws:SourceAccount": "1"})
    assert _decide(doc, foreign) is Decision.EXPLICIT_DENY
    assert _decide(doc, Request(_OUTSIDER, "sns:Publish", _TOPIC)) is Decision.EXPLICIT_DENY
    other = Request("events.amazonaws.com", "sns:Publish", _TOPIC, own)
    assert _decide(doc, other) is Decision.EXPLICIT_DENY


def test_topic_policy_admits_the_rules_that_route_to_it() -> None:
    rule = f"arn:aws:events:us-east-1:{_ACCOUNT}:rule/agentry-test-bus/needs-approval"
    doc = topic_publish_policy(
        topic_arn=_TOPIC, account_id=_ACCOUNT, role_arns=[_RECOVERY], rule_arns=[rule]
    )
    context = {"aws:SourceArn": rule, "aws:SourceAccount": _ACCOUNT}
    routed = Request("events.amazonaws.com", "sns:Publish", _TOPIC, context)
    assert _decide(doc, routed) is Decision.ALLOW
    stray = {**context, "aws:SourceArn": rule.replace("needs-approval", "other")}
    assert _decide(doc, Request("events.amazonaws.com", "sns:Publish", _TOPIC, stray)) is (
        Decision.EXPLICIT_DENY
    )
    with pytest.raises(ValueError, match="publishing"):
        topic_publish_policy(topic_arn=_TOPIC, account_id=_ACCOUNT)


def test_bus_policy_refuses_agentry_events_from_anyone_but_the_publishers() -> None:
    doc = bus_policy(bus_arn=_BUS, publisher_arns=[_RECOVERY])
    forged = {"events:source": "agentry.runtime", "events:detail-type": "Agent Error"}
    outsider = Request(_OUTSIDER, "events:PutEvents", _BUS, forged)
    assert _decide(doc, outsider) is Decision.EXPLICIT_DENY
    platform = Request(_RECOVERY, "events:PutEvents", _BUS, forged)
    assert _decide(doc, platform) is Decision.IMPLICIT_DENY  # its identity policy decides
    # AND a batch that hides one forged entry among others is refused whole
    mixed = {"events:source": ["ops.deploys", "agentry.recovery"]}
    assert _decide(doc, Request(_OUTSIDER, "events:PutEvents", _BUS, mixed)) is (
        Decision.EXPLICIT_DENY
    )
    with pytest.raises(ValueError, match="publisher_arns"):
        bus_policy(bus_arn=_BUS, publisher_arns=[])


# --- recovery definition --------------------------------------------------------------------


def _definition(**overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "table_name": "agentry-dev-agents",
        "topic_arn": "arn:aws:sns:us-east-1:123456789012:agentry-dev-needs-human",
        "max_attempts": 3,
        "delay_seconds": 5,
    }
    return recovery_definition(**(args | overrides))


def test_recovery_definition_passes_statelint() -> None:
    assert Linter.validate(_definition()) == []


def test_every_task_has_retry_with_jitter_and_catch() -> None:
    tasks = {n: s for n, s in _definition()["States"].items() if s["Type"] == "Task"}
    assert len(tasks) >= 5
    for name, task in tasks.items():
        assert task["Retry"], name
        assert all(r["BackoffRate"] == 2.0 and r["JitterStrategy"] == "FULL" for r in task["Retry"])
        assert all(r["MaxAttempts"] > 0 for r in task["Retry"]), name
        assert any(c["ErrorEquals"] == ["States.ALL"] for c in task["Catch"]), name
        # Only direct service integrations, never a Lambda.
        assert task["Resource"].startswith("arn:aws:states:::"), name
        assert "lambda" not in task["Resource"], name


def test_conditional_writes_end_quietly_when_stale() -> None:
    states = _definition()["States"]
    for name in ("RecordAttempt", "MarkNeedsHuman"):
        stale = states[name]["Catch"][0]
        assert stale["ErrorEquals"] == ["DynamoDB.ConditionalCheckFailedException"]
        assert states[stale["Next"]]["Type"] == "Succeed"


def test_choice_is_on_the_headers_typed_error_type() -> None:
    # GIVEN the definition WHEN its retry choice is read
    [rule] = _definition()["States"]["IsRetryable"]["Choices"]
    # THEN it compares the header's error type for equality with each retryable error (the
    # event's own errorType is never trusted), nothing else
    assert rule["Or"] == [
        {"Variable": "$.header.errorType", "StringEquals": e.value} for e in RETRYABLE_ERRORS
    ]
    assert "$.detail.errorType" not in json.dumps(_definition())
    text = json.dumps(_definition())
    assert "StringMatches" not in text
    assert ErrorType.MODEL_REJECTED.value not in text


def test_attempts_delay_and_backoff_come_from_arguments() -> None:
    # GIVEN 4 attempts, 5 s first delay, rate 3
    states = _definition(max_attempts=4, delay_seconds=5, backoff_rate=3.0)["States"]
    # THEN each attempt count leads to its own, exponentially longer wait
    choices = states["HasAttemptsLeft"]["Choices"]
    assert [(c["NumericEquals"], c["Next"]) for c in choices] == [
        (0, "Backoff1"),
        (1, "Backoff2"),
        (2, "Backoff3"),
        (3, "Backoff4"),
    ]
    assert [states[f"Backoff{n}"]["Seconds"] for n in range(1, 5)] == [5, 15, 45, 135]
    assert states["HasAttemptsLeft"]["Default"] == "MarkNeedsHuman"
    assert backoff_delays(3600, 2.0, 3) == [3600, 3600, 3600]
    with pytest.raises(ValueError, match="max_attempts"):
        _definition(max_attempts=-1)
    with pytest.raises(ValueError, match="backoff_rate"):
        _definition(backoff_rate=0.5)


def test_no_attempts_allowed_goes_straight_to_a_human() -> None:
    definition = _definition(max_attempts=0)
    assert definition["States"]["IsRetryable"]["Choices"][0]["Next"] == "MarkNeedsHuman"
    assert "HasAttemptsLeft" not in definition["States"]
    assert Linter.validate(definition) == []


def test_every_write_requires_the_failure_the_machine_was_started_for() -> None:
    states = _definition()["States"]
    still_failed = "#step = :step AND #status = :failed"
    conditions = {
        "RecordAttempt": still_failed,
        # ... or the agent this very execution parked (its retry after a lost answer).
        "MarkNeedsHuman": f"({still_failed}) OR #parkedBy = :execution",
    }
    for name, condition in conditions.items():
        parameters = states[name]["Parameters"]
        assert parameters["ConditionExpression"] == condition, name
        assert parameters["ExpressionAttributeValues"][":failed"] == {"S.$": "$.header.status"}
    parked = states["MarkNeedsHuman"]["Parameters"]["ExpressionAttributeValues"][":execution"]
    assert parked == {"S.$": "$$.Execution.Id"}


def test_the_machine_reads_only_what_it_needs_of_the_header() -> None:
    load = _definition()["States"]["LoadAgent"]["Parameters"]
    assert sorted(load["ExpressionAttributeNames"].values()) == [
        "lastErrorType",
        "recoveryAttempts",
        "status",
        "step",
    ]


def test_every_event_field_the_machine_reads_is_a_field_of_the_contracts_error_event() -> None:
    # GIVEN the definition and the contract's Agent Error detail model
    text = json.dumps(_definition())
    read = set(re.findall(r"\$\.detail\.([A-Za-z0-9_]+)", text))
    fields = {f.alias or n for n, f in AgentErrorDetail.model_fields.items()}
    # THEN the machine reads only fields the event carries (ids and typed fields: no text)
    assert read
    assert read <= fields
    assert "message" not in read
    # AND an event built from the model validates and carries every field the machine reads
    event = AgentErrorDetail(
        agent_id="agent-1", step=3, error_type=ErrorType.TOOL_EXECUTION_FAILED, retryable=True
    ).model_dump(by_alias=True, mode="json")
    assert read <= set(event)
