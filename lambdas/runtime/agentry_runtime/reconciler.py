"""The reconciler: what the stream or a queue gave up on is not stranded.

Run on a schedule, it sweeps the sparse ``active`` index (agents that wait for the platform)
for headers that made no progress for ``stale_after_seconds`` and:

- re-announces the step such an agent waits for, by bumping the header's nonce (a write that
  changes neither version nor step, so a worker still running the step is not disturbed; the
  announcer sees the new nonce and publishes the step again);
- pokes a failed agent the same way, so its ``Agent Error`` reaches recovery again;
- releases an agent whose chaining worker died (its runner deadline passed);
- rejects, as a person would, the calls of an agent whose approval window closed.

It also drains the step queue's dead-letter queue: a dead-lettered step of an agent still
waiting for it is re-driven (a nonce bump) up to ``max_redrives`` times, then the agent fails
with ``StepDeadLettered`` (which recovery hands to a person). Stale dead letters are dropped.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from agentry_runtime.announce import awaits_step
from agentry_runtime.contract import (
    ACTIVE_SHARDS,
    FAILURES,
    TERMINAL,
    DetailType,
    ErrorType,
    Metric,
    Status,
    StepKind,
    StepRequested,
)
from agentry_runtime.errors import StaleStepError
from agentry_runtime.observability import logger, metrics
from agentry_runtime.settings import ReconcilerSettings
from agentry_runtime.state import AgentHeader, check_transition, utcnow
from agentry_runtime.store import AgentStore

__all__ = ["Reconciler", "SweepReport"]


@dataclass
class SweepReport:
    """What one run of the reconciler did (for logs, metrics and tests)."""

    reannounced: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    approvals_expired: list[str] = field(default_factory=list)
    redriven: list[str] = field(default_factory=list)
    dead_lettered: list[str] = field(default_factory=list)
    dropped_letters: int = 0
    #: Agents found waiting for an approval (for longer than the sweep's stale-after time).
    approvals_waiting: int = 0


class Reconciler:
    """See the module doc."""

    def __init__(
        self,
        *,
        store: AgentStore,
        settings: ReconcilerSettings,
        sqs: Any | None = None,
        expire_approvals: Callable[[AgentHeader], AgentHeader | None] | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self._sqs = sqs
        #: Ends an agent's approval window (rejects what is undecided); set by the service.
        self.expire_approvals = expire_approvals

    @property
    def sqs(self) -> Any:
        """The boto3 SQS client (created on first use)."""
        if self._sqs is None:
            self._sqs = boto3.client("sqs")
        return self._sqs

    def run(self) -> SweepReport:
        """One sweep of the index and one drain of the dead-letter queue."""
        report = SweepReport()
        self.sweep(report)
        self.redrive(report)
        for name, items in (
            ("AgentsReannounced", report.reannounced),
            ("AgentsReleased", report.released),
            ("ApprovalsExpired", report.approvals_expired),
            ("StepsRedriven", report.redriven),
            ("StepsDeadLettered", report.dead_lettered),
        ):
            if items:
                metrics.add_metric(name=name, unit="Count", value=len(items))
        # A gauge for the dashboard: emitted on every run, zero included.
        metrics.add_metric(
            name=Metric.APPROVALS_WAITING, unit="Count", value=report.approvals_waiting
        )
        return report

    # --- the sweep ------------------------------------------------------------------------

    def sweep(self, report: SweepReport) -> None:
        """Poke every agent of the index that made no progress for ``stale_after_seconds``."""
        now = utcnow()
        before = now - timedelta(seconds=self.settings.stale_after_seconds)
        for shard in range(ACTIVE_SHARDS):
            for header in self.store.stale_agents(str(shard), updated_before=before):
                self._poke(header, now.timestamp(), report)

    def _poke(self, header: AgentHeader, now: float, report: SweepReport) -> None:
        if header.status == Status.AWAITING_APPROVAL:
            deadline = header.approval_deadline
            if (
                deadline is not None
                and deadline <= now
                and self.expire_approvals is not None
                and self.expire_approvals(header) is not None
            ):
                report.approvals_expired.append(header.agent_id)
            else:
                report.approvals_waiting += 1
            return
        if header.runner_until is not None:
            if header.runner_until > now:
                return  # a chaining worker still holds it
            released = header.model_copy(update={"runner_until": None})
            try:
                self.store.commit(header.version, released)
            except StaleStepError:
                return
            report.released.append(header.agent_id)
            return
        poke = awaits_step(header) or header.status in FAILURES
        if poke and self.store.bump_nonce(header.agent_id, header.version) is not None:
            logger.info("re-announced a stale agent", agent_id=header.agent_id)
            report.reannounced.append(header.agent_id)

    # --- dead letters ---------------------------------------------------------------------

    def redrive(self, report: SweepReport, *, max_messages: int = 100) -> None:
        """Re-drive (or give up on) each step event in the dead-letter queue."""
        url = self.settings.dead_letter_queue_url
        handled = 0
        while handled < max_messages:
            try:
                messages = self.sqs.receive_message(
                    QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=60
                ).get("Messages", [])
            except (ClientError, BotoCoreError):
                logger.exception("cannot read the dead-letter queue")
                return
            if not messages:
                return
            for message in messages:
                handled += 1
                if self._redrive_one(message["Body"], report):
                    self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    def _redrive_one(self, body: str, report: SweepReport) -> bool:
        """Act on one dead letter; ``True`` once it can be deleted."""
        event = _step_event(body)
        if event is None:
            report.dropped_letters += 1
            logger.warning("dropped a dead letter that is not a step event")
            return True
        header = self.store.find_header(event.agent_id)
        if (
            header is None
            or header.status in TERMINAL
            or (header.step, header.next_step) != (event.step, event.kind)
        ):
            report.dropped_letters += 1  # the agent moved on: the letter is stale
            return True
        if header.redrives < self.settings.max_redrives:
            redriven = header.model_copy(
                update={"redrives": header.redrives + 1, "nonce": header.nonce + 1}
            )
            try:
                self.store.commit(header.version, redriven)
            except StaleStepError:
                return False  # it moved meanwhile: look again at the next run
            report.redriven.append(header.agent_id)
            return True
        target = (
            Status.TOOL_EXECUTION_FAILED if event.kind == StepKind.ACT else Status.PLANNING_FAILED
        )
        failed = header.model_copy(
            update={
                "status": check_transition(header.status, target)
                if header.status != target
                else target,
                "step": header.step + 1,
                "next_step": None,
                "error_count": header.error_count + 1,
                "last_error_type": ErrorType.STEP_DEAD_LETTERED,
                "last_error_step": header.step + 1,
                "runner_until": None,
            }
        )
        try:
            self.store.commit(header.version, failed)
        except StaleStepError:
            return False
        logger.warning("a step was dead-lettered too often", agent_id=header.agent_id)
        report.dead_lettered.append(header.agent_id)
        return True


def _step_event(body: str) -> StepRequested | None:
    """The step request in a dead letter (an EventBridge event), or ``None``."""
    try:
        event = json.loads(body)
        if not isinstance(event, dict) or event.get("detail-type") != DetailType.STEP_REQUESTED:
            return None
        return StepRequested.model_validate(event.get("detail"))
    except (ValueError, ValidationError):
        return None
