"""The ``announcer`` function: the state table's stream in, events on the bus out.

The event source mapping reports partial batch failures: the function answers with the
sequence number of the first record whose events could not be published, and Lambda retries
the batch from there (see ``agentry_runtime.announcer``).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from agentry_runtime.announcer import StreamRecord
from agentry_runtime.observability import logger, metrics
from agentry_runtime.runtime import get_runtime

__all__ = ["handler"]


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point (``contract.Handler.ANNOUNCER``)."""
    records = [StreamRecord.from_lambda(record) for record in event.get("Records", [])]
    retry_from = get_runtime().announcer.announce(records)
    if retry_from is None:
        return {"batchItemFailures": []}
    logger.warning("events not published; the batch is retried", retry_from=retry_from)
    return {"batchItemFailures": [{"itemIdentifier": retry_from}]}
