"""Elementwise add of two bfloat16 tensors (a TT-Metal example problem: 64 tiles of 32x32)."""

import torch
from torch import nn


class Model(nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b


def get_inputs() -> list[torch.Tensor]:
    return [torch.randn(256, 256, dtype=torch.bfloat16), torch.randn(256, 256, dtype=torch.bfloat16)]


def get_init_inputs() -> list[object]:
    return []
