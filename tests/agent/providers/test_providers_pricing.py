"""Prices as data: arithmetic, dated snapshots, and no invented cost for unknown models."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.providers.base import Usage
from agent.providers.pricing import (
    base_model_name,
    cost_usd,
    default_price_table,
    load_price_table,
)
from kernelwright.errors import ConfigError


def test_known_model_cost_arithmetic() -> None:
    # gpt-4o: 2.50 USD per Mtok in, 10.00 per Mtok out
    assert cost_usd("openai", "gpt-4o", Usage(1_000_000, 0)) == pytest.approx(2.50)
    assert cost_usd("openai", "gpt-4o", Usage(200_000, 50_000)) == pytest.approx(0.5 + 0.5)
    assert cost_usd("openai", "gpt-4o", Usage()) == 0.0


def test_dated_suffix_resolves_to_base_model() -> None:
    assert base_model_name("gpt-4o-mini-2024-07-18") == "gpt-4o-mini"
    assert base_model_name("gpt-4-0613") == "gpt-4"
    assert base_model_name("llama-3.3-70b-versatile") == "llama-3.3-70b-versatile"
    assert cost_usd("openai", "gpt-4o-mini-2024-07-18", Usage(1_000_000, 1_000_000)) == pytest.approx(0.75)


def test_no_prefix_guessing_between_models() -> None:
    table = default_price_table()
    mini = table.lookup("openai", "gpt-4o-mini")
    full = table.lookup("openai", "gpt-4o")
    assert mini is not None and full is not None and mini != full


def test_unknown_model_or_provider_costs_none() -> None:
    assert cost_usd("openai", "gpt-17-ultra", Usage(10, 10)) is None
    assert cost_usd("nobody", "gpt-4o", Usage(10, 10)) is None
    assert cost_usd("groq", "gpt-4o", Usage(10, 10)) is None  # prices are per provider


def test_every_shipped_price_has_a_date() -> None:
    table = default_price_table()
    assert table.prices
    for price in table.prices.values():
        assert price.as_of
        assert price.input_per_mtok >= 0 and price.output_per_mtok >= 0


def test_custom_table_and_malformed_table(tmp_path: Path) -> None:
    good = tmp_path / "prices.yaml"
    good.write_text("providers:\n  local:\n    tiny: {input: 1, output: 2, as_of: '2025-01'}\n")
    assert load_price_table(good).cost_usd("local", "tiny", Usage(500_000, 500_000)) == pytest.approx(1.5)

    bad = tmp_path / "bad.yaml"
    bad.write_text("providers:\n  local:\n    tiny: {input: 1}\n")
    with pytest.raises(ConfigError, match="missing"):
        load_price_table(bad)
