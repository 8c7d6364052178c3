"""Time calls on the device (standard library + torch only).

Each trial gets fresh input storage (cloned outside the timed window, so a kernel cannot serve a cached
result keyed by pointer), a flushed L2, and CUDA events around the call with a full device
synchronisation before the end event (work a candidate hides on another stream is counted). Trials are
requested in small chunks by the service, alternating between the reference and the candidate workers,
so both see the same clocks and thermal state. CPU runs are not timed: candidates there run under
interpreters, and their times mean nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

__all__ = ["L2Flusher", "time_trials"]

_L2_FLUSH_BYTES = 256 * 1024 * 1024
_WARMUP_BUDGET_S = 0.05


class L2Flusher:
    """Evicts the L2 cache between trials by writing a buffer larger than it."""

    def __init__(self, device: torch.device) -> None:
        self._buffer = torch.empty(_L2_FLUSH_BYTES // 4, dtype=torch.int32, device=device)

    def __call__(self) -> None:
        self._buffer.zero_()


def time_trials(
    fn: Callable[..., object],
    make_args: Callable[[], Sequence[Any]],
    *,
    trials: int,
    warmup: int,
    device: torch.device,
    flush: L2Flusher,
) -> tuple[list[float], int]:
    """Milliseconds of `fn(*make_args())` for each of `trials` calls, after up to `warmup` untimed calls,
    and how many calls were made in all (the launch guard holds the candidate to one launch per call).

    Warm-up stops early once two calls are done and `_WARMUP_BUDGET_S` has passed: two calls already
    JIT-compile and cache what a kernel needs, and a kernel of several milliseconds on multi-GB inputs
    would otherwise spend more time warming up than being timed.
    """
    with torch.no_grad():
        started = time.perf_counter()
        warmed = 0
        while warmed < warmup and (warmed < 2 or time.perf_counter() - started <= _WARMUP_BUDGET_S):
            fn(*make_args())
            torch.cuda.synchronize(device)
            warmed += 1
        torch.cuda.synchronize(device)
        times: list[float] = []
        for _ in range(trials):
            args = make_args()
            flush()
            start = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
            end = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
            torch.cuda.synchronize(device)
            start.record()
            fn(*args)
            torch.cuda.synchronize(device)
            end.record()
            end.synchronize()
            times.append(float(start.elapsed_time(end)))
    return times, warmed + trials
