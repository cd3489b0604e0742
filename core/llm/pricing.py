"""Token prices (USD per 1M tokens) and usage accounting for model calls.

``DEFAULT_PRICES`` holds **list prices, override per deployment**: negotiated
discounts, Azure deployment names, batch or cached-token rates and price
changes are not known here. Extend or override them with
``PriceTable.from_json``. Model names match by prefix, longest prefix first,
so ``gpt-4o-mini-2024-07-18`` costs what ``gpt-4o-mini`` costs, not ``gpt-4o``.
Unknown models cost 0.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from core.contracts.llm import LlmRequest, Usage
from core.llm.tokens import count_tokens

_PER_TOKENS = 1_000_000


@dataclass(frozen=True)
class ModelPrice:
    """USD per 1M input and output tokens."""

    input: float
    output: float


DEFAULT_PRICES: Mapping[str, ModelPrice] = {
    # list prices, override per deployment
    "local": ModelPrice(0.0, 0.0),
    "gpt-5": ModelPrice(1.25, 10.0),
    "gpt-5-mini": ModelPrice(0.25, 2.0),
    "gpt-5-nano": ModelPrice(0.05, 0.40),
    "gpt-4.1": ModelPrice(2.0, 8.0),
    "gpt-4.1-mini": ModelPrice(0.40, 1.60),
    "gpt-4.1-nano": ModelPrice(0.10, 0.40),
    "gpt-4o": ModelPrice(2.50, 10.0),
    "gpt-4o-mini": ModelPrice(0.15, 0.60),
    "gpt-4-turbo": ModelPrice(10.0, 30.0),
    "gpt-3.5-turbo": ModelPrice(0.50, 1.50),
    "o1": ModelPrice(15.0, 60.0),
    "o1-mini": ModelPrice(1.10, 4.40),
    "o3": ModelPrice(2.0, 8.0),
    "o3-mini": ModelPrice(1.10, 4.40),
    "o3-pro": ModelPrice(20.0, 80.0),
    "o4-mini": ModelPrice(1.10, 4.40),
    "claude-opus-4": ModelPrice(15.0, 75.0),
    "claude-opus-4-5": ModelPrice(5.0, 25.0),
    "claude-sonnet-4": ModelPrice(3.0, 15.0),
    "claude-haiku-4-5": ModelPrice(1.0, 5.0),
    "claude-3-7-sonnet": ModelPrice(3.0, 15.0),
    "claude-3-5-sonnet": ModelPrice(3.0, 15.0),
    "claude-3-5-haiku": ModelPrice(0.80, 4.0),
    "claude-3-opus": ModelPrice(15.0, 75.0),
    "claude-3-haiku": ModelPrice(0.25, 1.25),
}
"""List prices, override per deployment (USD per 1M input / output tokens)."""


class PriceTable:
    """Prices by model-name prefix; the longest matching prefix wins."""

    def __init__(self, prices: Mapping[str, ModelPrice] | None = None):
        """Build a table from ``prices`` (``DEFAULT_PRICES`` when ``None``)."""
        source = DEFAULT_PRICES if prices is None else prices
        self._prices = {name.lower(): price for name, price in source.items()}

    @classmethod
    def from_json(cls, text: str, *, base: PriceTable | None = None) -> PriceTable:
        """The ``base`` table (default prices when ``None``) extended/overridden by a JSON object.

        Args:
            text: ``{"model-prefix": {"input": usd_per_1m, "output": usd_per_1m}, ...}``.
            base: The table to extend.

        Raises:
            ValueError: ``text`` is not such an object, or a price is missing or negative.
        """
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("price table JSON must be an object of {model: {input, output}}")
        prices = dict((base or cls())._prices)
        for name, entry in data.items():
            prices[str(name).lower()] = _parse_price(str(name), entry)
        return cls(prices)

    def price(self, model_name: str) -> ModelPrice | None:
        """The price of ``model_name`` (or of the part after its last ``/``), ``None`` if unknown."""
        name = model_name.lower()
        found = self._longest_prefix(name)
        if found is None and "/" in name:
            found = self._longest_prefix(name.rsplit("/", 1)[1])
        return found

    def cost_usd(self, model_name: str, usage: Usage) -> float:
        """USD cost of ``usage`` on ``model_name``; 0 for unknown models."""
        price = self.price(model_name)
        if price is None:
            return 0.0
        cost = (usage.input_tokens * price.input + usage.output_tokens * price.output) / _PER_TOKENS
        return round(cost, 8)

    def _longest_prefix(self, name: str) -> ModelPrice | None:
        matches = [prefix for prefix in self._prices if name.startswith(prefix)]
        return self._prices[max(matches, key=len)] if matches else None


def cost_usd(model_name: str, usage: Usage, *, table: PriceTable | None = None) -> float:
    """USD cost of ``usage`` on ``model_name`` by ``table`` (default list prices)."""
    return (table or _DEFAULT_TABLE).cost_usd(model_name, usage)


def estimate_usage(request: LlmRequest, output_text: str) -> Usage:
    """Token counts estimated with ``count_tokens`` when a provider reports no usage."""
    prompt = " ".join(
        [m.content for m in request.messages] + [str(c.arguments) for m in request.messages for c in m.tool_calls]
    )
    return Usage(input_tokens=count_tokens(prompt), output_tokens=count_tokens(output_text))


def _parse_price(name: str, entry: object) -> ModelPrice:
    if not isinstance(entry, dict):
        raise ValueError(f"price of {name!r} must be an object with 'input' and 'output'")
    try:
        price = ModelPrice(input=float(entry["input"]), output=float(entry["output"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"price of {name!r} needs numeric 'input' and 'output'") from exc
    if price.input < 0 or price.output < 0:
        raise ValueError(f"price of {name!r} must not be negative")
    return price


_DEFAULT_TABLE = PriceTable()
