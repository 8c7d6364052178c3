import torch
import torch.nn as nn


class Model(nn.Module):
    """Row-wise softmax over the last dimension (KernelBench level 1 #23, at a size a CPU can check)."""

    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(x, dim=1)


batch_size = 64
dim = 1000


def get_inputs():
    x = torch.randn(batch_size, dim)
    return [x]


def get_init_inputs():
    return []
