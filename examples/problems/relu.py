import torch
import torch.nn as nn


class Model(nn.Module):
    """ReLU over a large tensor (KernelBench level 1 #19, smaller: 16 x 262144 floats)."""

    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x)


batch_size = 16
dim = 262144


def get_inputs():
    x = torch.randn(batch_size, dim)
    return [x]


def get_init_inputs():
    return []
