"""The ``worker`` function: SQS batches of step events, with partial batch failure reporting.

Each record is an EventBridge event delivered by the step rule. A record whose step fails with
an unexpected error is reported as a batch item failure, so SQS redelivers only that message
and, after the queue's max receive count, moves it to the dead-letter queue.

The last record of a batch may chain: its agent's next steps run in this invocation while their
worst case fits. Its message then stays in flight as the chain's watchdog, its visibility cut
to the invocation's deadline: if the worker dies, the message comes back right after and takes
the agent over from its last committed step.
"""

from __future__ import annotations

import json
import time
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from agentry_runtime.contract import DetailType, Metric, StepRequested
from agentry_runtime.observability import logger, metrics, tracer
from agentry_runtime.runtime import get_runtime

__all__ = ["PoisonMessageError", "handler", "parse_step_event", "record_handler"]

# Report an all-failed batch as item failures too (rather than raising): the event source
# mapping then treats it exactly like a partial failure, and the logs stay one line per record.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


class PoisonMessageError(ValueError):
    """A record that is not a valid step event; it will end in the dead-letter queue."""


def parse_step_event(body: str) -> StepRequested:
    """The step request in an SQS record body (an EventBridge event), else a poison error."""
    try:
        event = json.loads(body)
    except json.JSONDecodeError as exc:
        raise PoisonMessageError(f"body: not JSON ({exc.msg})") from exc
    if not isinstance(event, dict):
        raise PoisonMessageError("body: not a JSON object")
    if event.get("detail-type") != DetailType.STEP_REQUESTED:
        raise PoisonMessageError(f"detail-type: unexpected {event.get('detail-type')!r}")
    try:
        return StepRequested.model_validate(event.get("detail"))
    except ValueError as exc:
        raise PoisonMessageError(f"detail: {exc}") from exc


#: Left unused at the end of an invocation, for the batch's response and the logs.
_MARGIN_SECONDS = 2.0


#: The message id of the batch's last record: only it may chain.
_last_record: str | None = None


@tracer.capture_method
def record_handler(record: SQSRecord, lambda_context: LambdaContext | None = None) -> str:
    """Run the step of one record; raising marks just this record as failed."""
    step = parse_step_event(record.body)
    deadline = None
    if lambda_context is not None:
        remaining = lambda_context.get_remaining_time_in_millis() / 1000
        deadline = time.time() + remaining - _MARGIN_SECONDS
    logger.append_keys(agent_id=step.agent_id, step=step.step, kind=str(step.kind))
    try:
        result = get_runtime().loop.handle(
            step,
            deadline=deadline,
            chain=record.message_id == _last_record,
            on_chain=lambda until: _watch(record, until),
        )
        logger.info(
            "step handled", outcome=str(result.outcome), reason=result.reason, steps=result.steps
        )
        metrics.add_metric(name="StepEvents", unit="Count", value=1)
        return str(result.outcome)
    finally:
        logger.remove_keys(["agent_id", "step", "kind"])


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point (``contract.Handler.WORKER``)."""
    global _last_record
    records = event.get("Records") or []
    _last_record = records[-1].get("messageId") if records else None
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    # The worker's alarm counts failed records (a partial failure is no function error).
    failed = len(response.get("batchItemFailures") or [])
    metrics.add_metric(name=Metric.FAILED_RECORDS, unit="Count", value=failed)
    return dict(response)


def _watch(record: SQSRecord, until: float) -> None:
    """Make the chain's message come back right after the invocation's deadline."""
    _, _, _, region, account, name = record.event_source_arn.split(":", 5)
    url = f"https://sqs.{region}.amazonaws.com/{account}/{name}"
    seconds = max(1, min(43_200, int(until - time.time()) + 5))
    try:
        get_runtime().sqs.change_message_visibility(
            QueueUrl=url, ReceiptHandle=record.receipt_handle, VisibilityTimeout=seconds
        )
    except Exception:  # the queue's own timeout still brings it back, only later
        logger.warning("could not shorten the chain's watchdog", exc_info=True)
