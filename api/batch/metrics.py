"""Batch metrics as pure functions over finished samples (KernelBench definitions).

- compile rate: samples whose best kernel compiled / samples;
- correctness rate: samples whose best kernel was verified correct / samples;
- fast_p: samples that are correct AND faster than the baseline by more than p / samples (KernelBench's
  `fast_p`; fast_0 is the correctness rate when every correct sample was timed), against eager PyTorch
  and against `torch.compile`;
- geometric-mean speedup over the correct samples that were timed against that baseline;
- tokens and cost, summed.

A speedup that was never measured (the CPU interpreter, a `torch.compile` baseline that failed) is
unknown, not slow: such a sample cannot count as fast, and when correct samples exist but none was
timed, fast_p and the geometric mean are None rather than a misleading 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = [
    "P_VALUES",
    "Baseline",
    "Metrics",
    "SampleFigures",
    "compile_rate",
    "correctness_rate",
    "fast_p",
    "geomean_speedup",
    "summarize",
]

P_VALUES: tuple[float, ...] = (0.0, 1.0, 1.5, 2.0)
Baseline = Literal["eager", "compile"]


@dataclass(frozen=True)
class SampleFigures:
    """What the metrics need of one finished sample."""

    compiled: bool
    correct: bool
    speedup_vs_eager: float | None = None
    speedup_vs_compile: float | None = None
    tokens: int = 0
    cost_usd: float = 0.0

    def speedup(self, baseline: Baseline) -> float | None:
        return self.speedup_vs_eager if baseline == "eager" else self.speedup_vs_compile


def _rate(count: int, total: int) -> float | None:
    return None if total == 0 else count / total


def compile_rate(samples: Sequence[SampleFigures]) -> float | None:
    """Fraction of samples that compiled; None for no samples."""
    return _rate(sum(s.compiled for s in samples), len(samples))


def correctness_rate(samples: Sequence[SampleFigures]) -> float | None:
    """Fraction of samples verified correct; None for no samples."""
    return _rate(sum(s.correct for s in samples), len(samples))


def _timed_correct(samples: Iterable[SampleFigures], baseline: Baseline) -> list[float]:
    return [v for s in samples if s.correct and (v := s.speedup(baseline)) is not None]


def fast_p(samples: Sequence[SampleFigures], p: float, baseline: Baseline = "eager") -> float | None:
    """Fraction of all samples that are correct with speedup > p; None when it cannot be known."""
    if not samples:
        return None
    timed = _timed_correct(samples, baseline)
    if not timed and any(s.correct for s in samples):
        return None  # correct kernels exist, but nothing was timed: the speed is unknown
    return sum(v > p for v in timed) / len(samples)


def geomean_speedup(samples: Sequence[SampleFigures], baseline: Baseline = "eager") -> float | None:
    """Geometric mean of the speedups of correct, timed samples; None when there are none."""
    timed = [v for v in _timed_correct(samples, baseline) if v > 0]
    if not timed:
        return None
    return math.exp(sum(math.log(v) for v in timed) / len(timed))


def _p_label(p: float) -> str:
    return f"fast_{p:g}"


@dataclass(frozen=True)
class Metrics:
    """The summary of a set of finished samples."""

    samples: int
    compiled: int
    correct: int
    compile_rate: float | None
    correctness_rate: float | None
    fast_p_eager: dict[str, float | None] = field(default_factory=dict)
    fast_p_compile: dict[str, float | None] = field(default_factory=dict)
    timed_eager: int = 0  # correct samples with a speedup against eager
    timed_compile: int = 0
    geomean_speedup_eager: float | None = None
    geomean_speedup_compile: float | None = None
    tokens: int = 0
    cost_usd: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(samples: Sequence[SampleFigures]) -> Metrics:
    """Every metric of `samples` at once."""
    return Metrics(
        samples=len(samples),
        compiled=sum(s.compiled for s in samples),
        correct=sum(s.correct for s in samples),
        compile_rate=compile_rate(samples),
        correctness_rate=correctness_rate(samples),
        fast_p_eager={_p_label(p): fast_p(samples, p, "eager") for p in P_VALUES},
        fast_p_compile={_p_label(p): fast_p(samples, p, "compile") for p in P_VALUES},
        timed_eager=len(_timed_correct(samples, "eager")),
        timed_compile=len(_timed_correct(samples, "compile")),
        geomean_speedup_eager=geomean_speedup(samples, "eager"),
        geomean_speedup_compile=geomean_speedup(samples, "compile"),
        tokens=sum(s.tokens for s in samples),
        cost_usd=sum(s.cost_usd for s in samples),
    )
