"""The ``reconciler`` function: run on a schedule (see ``agentry_runtime.reconciler``)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from agentry_runtime.observability import logger, metrics
from agentry_runtime.runtime import get_runtime

__all__ = ["handler"]


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point (``contract.Handler.RECONCILER``); the scheduled event is unused."""
    report = get_runtime().reconciler.run()
    summary = {
        "reannounced": len(report.reannounced),
        "released": len(report.released),
        "approvalsExpired": len(report.approvals_expired),
        "redriven": len(report.redriven),
        "deadLettered": len(report.dead_lettered),
        "droppedLetters": report.dropped_letters,
    }
    logger.info("reconciled", extra=summary)
    return summary
