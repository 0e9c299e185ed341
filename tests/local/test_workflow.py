"""End to end on the local environment: the dev graph in moto, the real handlers in-process."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from typing import Any

import boto3
from local_graphs import max_receive_count, set_pattern

from agentry_runtime.contract import EVENT_SOURCE, DetailType, ErrorType
from agentry_stacks.local import EventKind, LocalEnvironment

DEMO_GOAL = "Book a flight from New York to San Francisco for tomorrow"


def _tool_counts(view: dict[str, Any]) -> Counter[str]:
    return Counter(entry["toolName"] for entry in view["plan"])


def test_demo_goal_completes_with_one_booking(dev_graph: dict[str, Any]) -> None:
    # GIVEN the dev stack's graph running locally
    with LocalEnvironment(graph=dev_graph) as env:
        # WHEN the demo goal is started through the api function and run until idle
        agent_id = env.start(DEMO_GOAL)
        env.run_until_idle()
        view = env.agent(agent_id)
        # THEN the agent completed with exactly one booking of the route, for tomorrow
        assert view["status"] == "COMPLETED"
        [booking] = env.bookings(agent_id)
        tomorrow = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
        assert (booking["origin"], booking["destination"]) == ("JFK", "SFO")
        assert booking["date"] == tomorrow.isoformat()
        assert booking["confirmation"] in view["answer"]
        # AND progress reported status transitions, model calls and tool calls
        kinds = {event.kind for event in env.events}
        assert {EventKind.STATUS, EventKind.MODEL, EventKind.TOOL} <= kinds
        assert env.notifications() == []
        assert env.dlq_messages() == []


def test_other_cities_and_iso_date_are_booked(dev_graph: dict[str, Any]) -> None:
    # GIVEN a goal naming two other cities of the inventory and an ISO date
    day = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=30)).isoformat()
    with LocalEnvironment(graph=dev_graph) as env:
        # WHEN it runs
        agent_id = env.start(f"Please book me a flight from Chicago to Denver on {day}")
        env.run_until_idle()
        # THEN exactly those cities are booked on that date
        assert env.agent(agent_id)["status"] == "COMPLETED"
        [booking] = env.bookings(agent_id)
        assert (booking["origin"], booking["destination"], booking["date"]) == ("ORD", "DEN", day)


def test_tool_failing_once_is_replanned(dev_graph: dict[str, Any]) -> None:
    # GIVEN book_flight fails on its first execution
    with LocalEnvironment(graph=dev_graph, fail_once_tools=["book_flight"]) as env:
        # WHEN the demo goal runs
        agent_id = env.start(DEMO_GOAL)
        env.run_until_idle()
        view = env.agent(agent_id)
        # THEN the model planned the booking again and the agent completed with one booking
        assert view["status"] == "COMPLETED"
        assert [p["status"] for p in view["plan"] if p["toolName"] == "book_flight"] == [
            "FAILED",
            "COMPLETED",
        ]
        assert len(env.bookings(agent_id)) == 1
        assert env.executions == []  # the loop handled it: no recovery needed


def test_always_failing_tool_recovers_then_needs_a_human_then_resumes(
    dev_graph: dict[str, Any],
) -> None:
    # GIVEN book_flight fails every time
    with LocalEnvironment(graph=dev_graph, fail_tools=["book_flight"]) as env:
        agent_id = env.start(DEMO_GOAL)
        # WHEN the agent runs until nothing is in flight
        env.run_until_idle()
        view = env.agent(agent_id)
        # THEN ToolExecutionFailed error events started the recovery state machine (bridged)
        assert env.executions, "the error rule started no execution"
        assert {e.event["detail"]["errorType"] for e in env.executions} == {
            ErrorType.TOOL_EXECUTION_FAILED.value
        }
        assert all(e.status == "SUCCEEDED" for e in env.executions)
        assert all(e.event["detail-type"] == DetailType.AGENT_ERROR.value for e in env.executions)
        # AND the attempts are recorded on the agent, which now waits for a human
        assert view["metadata"]["recoveryAttempts"] >= 1
        assert view["status"] == "NEEDS_HUMAN"
        # AND the human topic delivered a notification naming the agent
        [notification] = env.notifications()
        assert notification["topicArn"].endswith(":agentry-dev-needs-human")
        assert notification["message"]["agentId"] == agent_id
        assert env.bookings(agent_id) == []

        # WHEN the fault is removed and a human resumes the agent through the api function
        env.set_tool_faults()
        env.resume(agent_id, "The booking system is fixed, please book the flight again.")
        env.run_until_idle()
        # THEN it completes with exactly one booking
        assert env.agent(agent_id)["status"] == "COMPLETED"
        assert len(env.bookings(agent_id)) == 1


def test_duplicate_events_give_the_same_end_and_one_booking(dev_graph: dict[str, Any]) -> None:
    # GIVEN the same goal run once normally and once with every event delivered twice
    ends = []
    for duplicate in (False, True):
        with LocalEnvironment(graph=dev_graph, duplicate_events=duplicate) as env:
            agent_id = env.start(DEMO_GOAL)
            env.run_until_idle()
            view = env.agent(agent_id)
            bookings = env.bookings(agent_id)
            # THEN each run books exactly once
            assert len(bookings) == 1
            ends.append((view["status"], view["metadata"]["invocationCount"], _tool_counts(view)))
    # AND the final states agree
    assert ends[0] == ends[1]
    assert ends[0][0] == "COMPLETED"


def test_poison_message_goes_to_the_dlq_and_leaves_agents_alone(
    dev_graph: dict[str, Any],
) -> None:
    with LocalEnvironment(graph=dev_graph) as env:
        # GIVEN a completed agent
        agent_id = env.start(DEMO_GOAL)
        env.run_until_idle()
        before = env.agent(agent_id)
        # WHEN a malformed step event for it is put on the bus
        events = boto3.client("events")
        bus = env.functions[next(iter(env.functions))].environment["AGENTRY_EVENT_BUS_NAME"]
        events.put_events(
            Entries=[
                {
                    "EventBusName": bus,
                    "Source": EVENT_SOURCE,
                    "DetailType": DetailType.STEP_REQUESTED.value,
                    "Detail": json.dumps({"agentId": agent_id, "step": "not-a-number"}),
                }
            ]
        )
        env.run_until_idle()
        # THEN it lands in the step queue's DLQ after the graph's max receive count
        [dead] = env.dlq_messages()
        assert dead["queue"] == "agentry-dev-steps-dlq"
        assert dead["body"]["detail"]["step"] == "not-a-number"
        assert env.deliveries()[dead["messageId"]] == max_receive_count(dev_graph, "steps-queue")
        # AND the agent is not corrupted
        after = env.agent(agent_id)
        assert after["status"] == before["status"] == "COMPLETED"
        assert after["metadata"]["invocationCount"] == before["metadata"]["invocationCount"]
        assert len(env.bookings(agent_id)) == 1


def test_a_step_rule_that_no_longer_matches_stops_the_agent(dev_graph: dict[str, Any]) -> None:
    # GIVEN the graph's step rule matches another detail type than the runtime publishes
    set_pattern(dev_graph, "step-rule-rule", **{"detail-type": ["Agent Step Wanted"]})
    with LocalEnvironment(graph=dev_graph) as env:
        # WHEN the demo goal runs
        agent_id = env.start(DEMO_GOAL)
        env.run_until_idle()
        # THEN no step reaches the worker: the agent never completes
        view = env.agent(agent_id)
        assert view["status"] == "INITIATED"
        assert env.bookings(agent_id) == []


def test_an_error_rule_that_no_longer_matches_starts_no_recovery(
    dev_graph: dict[str, Any],
) -> None:
    # GIVEN the graph's error rule listens to another source than the runtime's
    set_pattern(dev_graph, "recovery-errors-rule", source=["agentry.elsewhere"])
    with LocalEnvironment(graph=dev_graph, fail_tools=["book_flight"]) as env:
        # WHEN an always-failing tool makes the runtime publish error events
        agent_id = env.start(DEMO_GOAL)
        env.run_until_idle()
        # THEN no recovery runs and nobody is told: the agent is stuck where it failed
        assert env.executions == []
        assert env.notifications() == []
        assert env.agent(agent_id)["status"] == "TOOL_EXECUTION_FAILED"


def test_throttled_model_calls_are_retried(dev_graph: dict[str, Any]) -> None:
    # GIVEN the first model call is throttled
    with LocalEnvironment(graph=dev_graph, throttle=1) as env:
        # WHEN the demo goal runs
        agent_id = env.start(DEMO_GOAL)
        env.run_until_idle()
        # THEN boto3's retry absorbed it and the agent completed
        throttled = [e for e in env.events if e.kind == EventKind.MODEL and e.data["status"] == 429]
        assert len(throttled) == 1
        assert env.agent(agent_id)["status"] == "COMPLETED"
