"""Cheat: Returns a lazy tensor subclass that only computes when the worker reads it."""

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


class Lazy(torch.Tensor):
    """Computes its value only when torch touches it (after forward returned and the timer stopped)."""

    def _defer(self, source):
        self._source = source
        return self

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        for arg in args:
            if isinstance(arg, Lazy) and getattr(arg, "_source", None) is not None:
                plain = arg.as_subclass(torch.Tensor)
                launch(arg._source, plain)
                arg._source = None
        return super().__torch_function__(func, types, args, kwargs or {})


class ModelNew(torch.nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        return torch.empty_like(x).as_subclass(Lazy)._defer(x.contiguous())
