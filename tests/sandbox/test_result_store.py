from __future__ import annotations

import asyncio
import time
from pathlib import Path

from kernelwright.domain import Candidate, Outcome, Problem, Target, Verdict
from kernelwright.settings import Settings
from sandbox.evaluate import evaluate_candidate
from sandbox.executor import LocalExecutor
from sandbox.result_store import ResultStore, canonical_source_hash
from sandbox.verify import VerifyOptions


def test_canonical_hash_ignores_comments_and_layout() -> None:
    a = "import torch\nx = 1  # one\n\n\ndef f(a,b):\n    return a+b\n"
    b = "import torch\nx = 1\ndef f(a, b):\n    return a + b\n"
    assert canonical_source_hash(a) == canonical_source_hash(b)
    assert canonical_source_hash(a) != canonical_source_hash(b.replace("a + b", "a - b"))


def test_machine_blamed_outcomes_are_not_stored(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    assert not store.put("k1", Verdict(outcome=Outcome.INFRASTRUCTURE))
    assert not store.put("k2", Verdict(outcome=Outcome.TIMEOUT))
    assert store.put("k3", Verdict(outcome=Outcome.MISMATCH, message="off"))
    assert store.get("k1") is None
    again = store.get("k3")
    assert again is not None and again.from_store and again.message == "off"


def test_repeated_evaluation_is_served_from_the_store(settings: Settings, examples: Path) -> None:
    problem = Problem.from_file(examples / "problems" / "softmax.py")
    source = (examples / "kernels" / "softmax_triton.py").read_text()
    options = VerifyOptions(draws=2, timing_trials=0)

    def run(src: str) -> tuple[Verdict, float]:
        started = time.monotonic()
        _, verdict = asyncio.run(
            evaluate_candidate(
                problem,
                Candidate(target=Target.TRITON, source=src),
                settings=settings,
                executor=LocalExecutor(),
                options=options,
            )
        )
        return verdict, time.monotonic() - started

    first, _ = run(source)
    second, elapsed = run("# reformatted copy\n" + source)
    assert first.outcome == second.outcome == Outcome.CORRECT
    assert not first.from_store and second.from_store
    assert elapsed < 1.0
