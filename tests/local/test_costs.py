"""Token usage priced per model: the worker's metrics and the agent's bill on GET /agents/{id}."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agentry_runtime.contract import ErrorType, Metric
from agentry_runtime.observability import record_agent_error, record_model_call
from agentry_runtime.pricing import ModelPrice, cost_usd, cost_view
from agentry_runtime.state import TokenUsage
from agentry_stacks.local import LocalEnvironment

DEMO_GOAL = "Book a flight from New York to San Francisco for tomorrow"
HAIKU_US = "us.anthropic.claude-haiku-4-5-20251001-v1:0"


def _emf(text: str) -> list[dict[str, Any]]:
    documents = []
    for line in text.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            documents.append(json.loads(line))
    return documents


def test_cost_is_tokens_times_price_per_million() -> None:
    price = ModelPrice(
        input_per_million=1.1,
        output_per_million=5.5,
        cache_read_per_million=0.11,
        cache_write_per_million=1.375,
    )
    usage = TokenUsage(
        input_tokens=1_000_000,
        output_tokens=200_000,
        cache_read_input_tokens=500_000,
        cache_write_input_tokens=100_000,
    )
    assert cost_usd(usage, price) == pytest.approx(1.1 + 1.1 + 0.055 + 0.1375)
    assert cost_view(usage, None) == {"usd": None, "currency": "USD", "priced": False}


def test_model_call_metrics_carry_the_model_and_the_cost(
    capsys: pytest.CaptureFixture[str],
) -> None:
    price = ModelPrice(input_per_million=2.0, output_per_million=10.0)
    record_model_call(HAIKU_US, TokenUsage(input_tokens=1000, output_tokens=100), 420, price)
    record_agent_error(ErrorType.MODEL_NOT_AVAILABLE)
    calls, errors = _emf(capsys.readouterr().out)
    assert calls["Model"] == HAIKU_US
    assert calls["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Model", "service"]]
    assert calls[Metric.MODEL_COST] == [pytest.approx(0.003)]
    assert calls[Metric.MODEL_LATENCY] == [420.0]
    assert errors["ErrorType"] == "ModelNotAvailable"
    assert errors[Metric.AGENT_ERRORS] == [1.0]


def test_agent_view_and_metrics_price_the_demo(dev_graph: dict[str, Any]) -> None:
    # GIVEN dev's price table (us. Haiku 4.5: 1.1 / 5.5 USD per million input / output tokens)
    with LocalEnvironment(graph=dev_graph) as env:
        agent_id = env.start(DEMO_GOAL)
        env.run_until_idle()
        view = env.agent(agent_id)
        worker = next(f for f in env.functions.values() if f.name.endswith("-worker"))
        emitted = _emf(worker.logs.getvalue())
    # THEN GET /agents/{id} shows what the agent cost, from its usage and the price
    usage = view["metadata"]["usage"]
    price = ModelPrice(
        input_per_million=1.1,
        output_per_million=5.5,
        cache_read_per_million=0.11,
        cache_write_per_million=1.375,
    )
    expected = cost_usd(TokenUsage.model_validate(usage), price)
    assert expected > 0
    assert view["metadata"]["cost"] == {
        "usd": round(expected, 6),
        "currency": "USD",
        "priced": True,
    }
    # AND the worker's metrics priced each model call, by model
    costs = [d[Metric.MODEL_COST][0] for d in emitted if Metric.MODEL_COST in d]
    assert costs
    assert all(d["Model"] == HAIKU_US for d in emitted if Metric.MODEL_COST in d)
    assert sum(costs) == pytest.approx(expected)
    # AND it counted failed records (none here) for the worker's alarm
    assert [d[Metric.FAILED_RECORDS] for d in emitted if Metric.FAILED_RECORDS in d]
