"""Powertools logger, metrics and tracer shared by the handlers and the loop.

Powertools keeps one configuration per service name, so every module logs with the same keys
(the agent id among them, appended per request) and adds to the same metric set.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = "agentry"
NAMESPACE = "Agentry"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
tracer = Tracer(service=SERVICE)
