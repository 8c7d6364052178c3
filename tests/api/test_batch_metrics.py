"""Batch metrics on hand-computed cases (KernelBench definitions of fast_p and the geometric mean)."""

from __future__ import annotations

import math

import pytest

from api.batch.metrics import (
    SampleFigures,
    compile_rate,
    correctness_rate,
    fast_p,
    geomean_speedup,
    summarize,
)

# 5 samples: one did not compile, one compiled but was wrong, three correct at 0.5x, 1.2x and 3.0x vs eager;
# against torch.compile the same three ran 0.25x, 1.0x and (not timed: the compile baseline failed).
SAMPLES = [
    SampleFigures(compiled=False, correct=False, tokens=100, cost_usd=0.01),
    SampleFigures(compiled=True, correct=False, tokens=200, cost_usd=0.02),
    SampleFigures(True, True, speedup_vs_eager=0.5, speedup_vs_compile=0.25, tokens=300, cost_usd=0.03),
    SampleFigures(True, True, speedup_vs_eager=1.2, speedup_vs_compile=1.0, tokens=400, cost_usd=0.04),
    SampleFigures(True, True, speedup_vs_eager=3.0, speedup_vs_compile=None, tokens=500, cost_usd=0.05),
]


def test_rates() -> None:
    assert compile_rate(SAMPLES) == 4 / 5
    assert correctness_rate(SAMPLES) == 3 / 5
    assert compile_rate([]) is None and correctness_rate([]) is None


@pytest.mark.parametrize(
    ("p", "eager", "compile_"),
    [
        (0.0, 3 / 5, 2 / 5),  # fast_0 vs compile: the untimed correct sample cannot count
        (1.0, 2 / 5, 0 / 5),  # 1.0 vs compile is not > 1
        (1.5, 1 / 5, 0 / 5),
        (2.0, 1 / 5, 0 / 5),
    ],
)
def test_fast_p(p: float, eager: float, compile_: float) -> None:
    assert fast_p(SAMPLES, p, "eager") == pytest.approx(eager)
    assert fast_p(SAMPLES, p, "compile") == pytest.approx(compile_)


def test_fast_p_unknown_without_any_timing() -> None:
    untimed = [SampleFigures(True, True), SampleFigures(True, False)]
    assert fast_p(untimed, 1.0) is None  # correct but never timed: unknown, not 0
    assert fast_p([SampleFigures(True, False)], 1.0) == 0.0  # nothing correct: surely nothing fast
    assert fast_p([], 0.0) is None


def test_geomean_over_correct_timed_samples() -> None:
    assert geomean_speedup(SAMPLES, "eager") == pytest.approx((0.5 * 1.2 * 3.0) ** (1 / 3))
    assert geomean_speedup(SAMPLES, "compile") == pytest.approx(math.sqrt(0.25 * 1.0))
    assert geomean_speedup([SampleFigures(True, False, speedup_vs_eager=9.0)]) is None  # wrong: ignored


def test_summarize() -> None:
    m = summarize(SAMPLES)
    assert (m.samples, m.compiled, m.correct) == (5, 4, 3)
    assert m.fast_p_eager == pytest.approx({"fast_0": 0.6, "fast_1": 0.4, "fast_1.5": 0.2, "fast_2": 0.2})
    assert m.timed_eager == 3 and m.timed_compile == 2
    assert m.tokens == 1500 and m.cost_usd == pytest.approx(0.15)
    assert m.to_dict()["fast_p_compile"]["fast_0"] == pytest.approx(0.4)
