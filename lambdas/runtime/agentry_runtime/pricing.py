"""What model calls cost: a price per million tokens of each kind, and an agent's bill.

The stack config holds a price table (``agentry:modelPrices``, USD per million tokens, by the
model or inference-profile id agents call); each agent's price reaches the functions in its
settings (``AGENTRY_AGENTS``), so the worker prices every model call in its metrics and the api
shows what an agent has cost so far on ``GET /agents/{id}``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from agentry_runtime.state import TokenUsage

__all__ = ["CURRENCY", "ModelPrice", "cost_usd", "cost_view"]

CURRENCY = "USD"
_MILLION = 1_000_000


class ModelPrice(BaseModel):
    """On-demand price of one model (or profile) in USD per million tokens of each kind."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
    )

    input_per_million: float = Field(ge=0, le=1000, description="Input tokens.")
    output_per_million: float = Field(ge=0, le=1000, description="Output tokens.")
    cache_read_per_million: float = Field(
        default=0.0, ge=0, le=1000, description="Input tokens read from the prompt cache."
    )
    cache_write_per_million: float = Field(
        default=0.0, ge=0, le=1000, description="Input tokens written to the prompt cache."
    )


def cost_usd(usage: TokenUsage, price: ModelPrice) -> float:
    """What ``usage`` costs at ``price``, in USD (not rounded)."""
    return (
        usage.input_tokens * price.input_per_million
        + usage.output_tokens * price.output_per_million
        + usage.cache_read_input_tokens * price.cache_read_per_million
        + usage.cache_write_input_tokens * price.cache_write_per_million
    ) / _MILLION


def cost_view(usage: TokenUsage, price: ModelPrice | None) -> dict[str, Any]:
    """The ``cost`` of an agent as the API shows it: ``{"usd", "currency", "priced"}``.

    An agent whose model has no price (a definition that left the stack) shows ``usd`` null.
    """
    if price is None:
        return {"usd": None, "currency": CURRENCY, "priced": False}
    return {"usd": round(cost_usd(usage, price), 6), "currency": CURRENCY, "priced": True}
