"""Input transforms the curated suites apply to a problem's draws (standard library + torch only)."""

from __future__ import annotations

from typing import Any

__all__ = ["TRANSFORMS", "signed"]


def signed(value: Any) -> Any:
    """Map a non-negative floating tensor (e.g. `torch.rand`) onto a signed range: x -> 2x - 1.

    KernelBench draws most inputs with `torch.rand`, never negative, so an identity "kernel" passes
    ReLU and friends; the audit finds those problems and the curated suite draws them signed.
    """
    import torch

    if (
        isinstance(value, torch.Tensor)
        and value.is_floating_point()
        and value.numel()
        and float(value.min()) >= 0
    ):
        return value * 2 - 1
    return value


TRANSFORMS = {"signed_inputs": signed}
