"""The price table: prefix matching, overrides, local models."""

from __future__ import annotations

import pytest

from core.contracts.llm import Usage
from core.llm.pricing import DEFAULT_PRICES, ModelPrice, PriceTable, cost_usd

MILLION = Usage(input_tokens=1_000_000, output_tokens=1_000_000)


def test_dated_model_names_match_their_family() -> None:
    table = PriceTable()
    assert table.price("gpt-4o-2024-08-06") == DEFAULT_PRICES["gpt-4o"]
    assert table.price("claude-3-5-sonnet-20241022") == DEFAULT_PRICES["claude-3-5-sonnet"]


def test_longest_prefix_wins() -> None:
    table = PriceTable()
    assert table.price("gpt-4o-mini-2024-07-18") == DEFAULT_PRICES["gpt-4o-mini"]
    assert table.price("gpt-4.1-mini") == DEFAULT_PRICES["gpt-4.1-mini"]
    assert table.price("claude-opus-4-5-20251101") == DEFAULT_PRICES["claude-opus-4-5"]
    assert table.price("claude-opus-4-1") == DEFAULT_PRICES["claude-opus-4"]


def test_cost_of_a_million_tokens_each_way() -> None:
    assert cost_usd("gpt-4o-mini", MILLION) == pytest.approx(0.15 + 0.60)
    assert cost_usd("claude-sonnet-4-20250514", MILLION) == pytest.approx(3 + 15)
    assert cost_usd("o4-mini", Usage(input_tokens=1000, output_tokens=500)) == pytest.approx(0.0011 + 0.0022)


def test_local_and_unknown_models_cost_nothing() -> None:
    assert cost_usd("local-echo", MILLION) == 0.0
    assert cost_usd("some-private-model", MILLION) == 0.0


def test_provider_prefixed_names_fall_back_to_the_last_segment() -> None:
    assert PriceTable().price("openai/gpt-4o") == DEFAULT_PRICES["gpt-4o"]


def test_from_json_overrides_and_extends_the_defaults() -> None:
    table = PriceTable.from_json('{"gpt-4o": {"input": 1, "output": 2}, "llama3.1": {"input": 0.1, "output": 0.2}}')
    assert table.price("gpt-4o-2024-11-20") == ModelPrice(1.0, 2.0)
    assert table.price("llama3.1:8b") == ModelPrice(0.1, 0.2)
    assert table.price("gpt-4o-mini") == DEFAULT_PRICES["gpt-4o-mini"]  # longer default prefix still wins
    assert table.cost_usd("GPT-4O", MILLION) == 3.0  # case-insensitive
    assert PriceTable().price("gpt-4o") == DEFAULT_PRICES["gpt-4o"]  # defaults untouched


def test_from_json_on_an_explicit_base() -> None:
    base = PriceTable({"a": ModelPrice(1, 1)})
    table = PriceTable.from_json('{"b": {"input": 2, "output": 2}}', base=base)
    assert (table.price("a1"), table.price("b1"), table.price("gpt-4o")) == (ModelPrice(1, 1), ModelPrice(2, 2), None)


@pytest.mark.parametrize(
    "text",
    [
        "[]",
        '{"m": 3}',
        '{"m": {"input": 1}}',
        '{"m": {"input": "x", "output": 1}}',
        '{"m": {"input": -1, "output": 1}}',
    ],
)
def test_from_json_rejects_bad_tables(text: str) -> None:
    with pytest.raises(ValueError, match="price"):
        PriceTable.from_json(text)
