"""Time a callable on the device (standard library + torch only).

CUDA: device events around each call with a full device synchronisation before the end event,
an L2 flush before every trial, warm-up first, median and spread over the trials. CPU runs are not
timed: candidates there run under interpreters, and their times mean nothing.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch

__all__ = ["TimingResult", "time_cuda"]

_L2_FLUSH_BYTES = 256 * 1024 * 1024


@dataclass
class TimingResult:
    median_ms: float
    p10_ms: float
    p90_ms: float
    trials: int
    method: str = "cuda_events"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def time_cuda(fn: Callable[[], object], *, trials: int, warmup: int, device: torch.device) -> TimingResult:
    """Median/p10/p90 milliseconds of `fn()` over `trials` calls after `warmup` calls."""
    flush = torch.empty(_L2_FLUSH_BYTES // 4, dtype=torch.int32, device=device)
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize(device)
    times: list[float] = []
    for _ in range(trials):
        flush.zero_()
        start = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
        end = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
        start.record()
        fn()
        torch.cuda.synchronize(device)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    times.sort()
    deciles = statistics.quantiles(times, n=10) if len(times) >= 2 else [times[0]] * 9
    return TimingResult(statistics.median(times), deciles[0], deciles[-1], len(times))
