"""Cheat: Super-batching: returns a buffer now and fills it on the next call (work moved out of the timed call)."""

# ruff: noqa  (a candidate file for the cheat suite: data, deliberately hostile code)

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


class ModelNew(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.pending = None

    def forward(self, x):
        y = torch.empty_like(x)
        if self.pending is not None:
            launch(*self.pending)
        self.pending = (x.contiguous().clone(), y)
        return y
