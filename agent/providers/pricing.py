"""Model prices as data (`prices.yaml`) and the arithmetic that turns token usage into dollars.

Prices live in a data file, not in code, so that updating one is a reviewed one-line change with
its date next to it. A model without a price yields `None`: a run's cost budget must never be
checked against a made-up number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import cast

import yaml

from kernelwright.errors import ConfigError

from .base import Usage

__all__ = [
    "ModelPrice",
    "PriceTable",
    "base_model_name",
    "cost_usd",
    "default_price_table",
    "load_price_table",
]

TOKENS_PER_PRICE_UNIT = 1_000_000

# Dated snapshot suffixes: "-2024-07-18" (OpenAI today) and "-0613" (older OpenAI snapshots).
_DATED_SUFFIX = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{4})$")


@dataclass(frozen=True)
class ModelPrice:
    """USD per million input and output tokens of one model, and when that price was read."""

    input_per_mtok: float
    output_per_mtok: float
    as_of: str

    def cost(self, usage: Usage) -> float:
        return (
            usage.input_tokens * self.input_per_mtok + usage.output_tokens * self.output_per_mtok
        ) / TOKENS_PER_PRICE_UNIT


def base_model_name(model: str) -> str:
    """`gpt-4o-mini-2024-07-18` -> `gpt-4o-mini`: a snapshot costs what its base model costs."""
    return _DATED_SUFFIX.sub("", model)


@dataclass(frozen=True)
class PriceTable:
    """Prices by (provider, model). Lookups try the exact name, then the undated base name."""

    prices: MappingProxyType[tuple[str, str], ModelPrice]

    def lookup(self, provider: str, model: str) -> ModelPrice | None:
        exact = self.prices.get((provider, model))
        if exact is not None:
            return exact
        return self.prices.get((provider, base_model_name(model)))

    def cost_usd(self, provider: str, model: str, usage: Usage) -> float | None:
        price = self.lookup(provider, model)
        return None if price is None else price.cost(usage)


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"{where}: expected a non-negative number, got {value!r}")
    return float(value)


def _parse_table(data: object, source: str) -> PriceTable:
    if not isinstance(data, dict) or not isinstance(data.get("providers"), dict):
        raise ConfigError(f"{source}: expected a mapping with a 'providers' mapping")
    providers = cast(dict[object, object], data["providers"])
    prices: dict[tuple[str, str], ModelPrice] = {}
    for provider, models in providers.items():
        if not isinstance(provider, str) or not isinstance(models, dict):
            raise ConfigError(f"{source}: provider {provider!r} must map model names to prices")
        for model, row in cast(dict[object, object], models).items():
            where = f"{source}: {provider}/{model}"
            if not isinstance(model, str) or not isinstance(row, dict):
                raise ConfigError(f"{where}: expected {{input: ..., output: ..., as_of: ...}}")
            fields = cast(dict[str, object], row)
            missing = {"input", "output", "as_of"} - fields.keys()
            if missing:
                raise ConfigError(f"{where}: missing {', '.join(sorted(missing))}")
            prices[(provider, model)] = ModelPrice(
                input_per_mtok=_number(fields["input"], where),
                output_per_mtok=_number(fields["output"], where),
                as_of=str(fields["as_of"]),
            )
    return PriceTable(prices=MappingProxyType(prices))


def load_price_table(path: Path) -> PriceTable:
    """Read a price table from a YAML file laid out like the shipped `prices.yaml`."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read price table {path}: {exc}") from exc
    return _parse_table(yaml.safe_load(text), str(path))


@lru_cache(maxsize=1)
def default_price_table() -> PriceTable:
    """The prices shipped with kernelwright (`agent/providers/prices.yaml`), read once."""
    text = resources.files(__package__).joinpath("prices.yaml").read_text(encoding="utf-8")
    return _parse_table(yaml.safe_load(text), "agent/providers/prices.yaml")


def cost_usd(provider: str, model: str, usage: Usage) -> float | None:
    """Dollar cost of `usage` on `provider`/`model` from the shipped prices; None when unknown."""
    return default_price_table().cost_usd(provider, model, usage)
