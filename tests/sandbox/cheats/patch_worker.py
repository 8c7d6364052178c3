"""Cheat: Patches the worker's own aliasing check, then returns its input."""

# ruff: noqa  (a candidate file for the cheat suite: data, deliberately hostile code)

import sys
import torch
import triton
import triton.language as tl


@triton.jit
def relu_kernel(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask)
    tl.store(y_ptr + offs, tl.maximum(x, 0.0), mask=mask)


def launch(x, y):
    n = x.numel()
    relu_kernel[(triton.cdiv(n, 256),)](x, y, n, BLOCK=256)


_main = sys.modules["__main__"]
if hasattr(_main, "_aliases"):
    _main._aliases = lambda outputs, inputs: False


class ModelNew(torch.nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        launch(x.contiguous(), x)
        return x
