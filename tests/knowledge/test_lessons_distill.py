"""Lessons: distilled from a run's attempts, stored with provenance, retrieved as cited hits, and
managed from the command line."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from typer.testing import CliRunner

from api.knowledge_cli import knowledge_app
from kernelwright.domain import Diagnostic, Outcome, Problem, Target
from kernelwright.settings import Settings
from knowledge.lessons import (
    AttemptRecord,
    RunRecord,
    classify_problem,
    diagnostic_signature,
    distill_lessons,
    tuning_choices,
)
from knowledge.lessons_store import LessonStore, relevant_lessons

BROKEN = ".entry k(.param .u64 a)\n{\n  mov.u32 %r1, %tid.x;\n  ld.param.u32 %rd1, [a];\n  ret;\n}\n"
FIXED = ".entry k(.param .u64 a)\n{\n  mov.u32 %r1, %tid.x;\n  ld.param.u64 %rd1, [a];\n  ret;\n}\n"
MISMATCH = Diagnostic(
    code="ptxas.error", message="Arguments mismatch for instruction 'ld' at line 12, register %rd1", line=12
)
SLOW = "@triton.jit\ndef k(BLOCK_SIZE: tl.constexpr):\n    pass\n# BLOCK_SIZE=256, num_warps=4\n"
FAST = "@triton.jit\ndef k(BLOCK_SIZE: tl.constexpr):\n    pass\n# BLOCK_SIZE=1024, num_warps=8\n"


def _fix_run(run_id: str = "run-1", when: datetime | None = None) -> RunRecord:
    return RunRecord(
        run_id=run_id,
        target=Target.PTX,
        arch="sm_90",
        problem="L1/19",
        problem_class="elementwise",
        model="gpt-4o-mini",
        created_at=when or datetime(2026, 11, 1, tzinfo=UTC),
        attempts=[
            AttemptRecord(1, BROKEN, Outcome.COMPILE_ERROR, [MISMATCH]),
            AttemptRecord(2, FIXED, Outcome.NO_GPU),
        ],
    )


def _tuning_run() -> RunRecord:
    return RunRecord(
        run_id="run-2",
        target="triton",
        device="NVIDIA H100",
        problem_class="matmul",
        model="m",
        attempts=[
            AttemptRecord(1, SLOW, Outcome.CORRECT, speedup=1.1),
            AttemptRecord(2, FAST, "correct", speedup=2.5),
            AttemptRecord(3, "broken", Outcome.MISMATCH),
        ],
    )


def test_signature_ignores_numbers_registers_and_paths() -> None:
    other = Diagnostic(
        code="ptxas.error", message="Arguments mismatch for instruction 'ld' at line 40, register %rd7"
    )
    assert diagnostic_signature(MISMATCH) == diagnostic_signature(other)
    assert diagnostic_signature(MISMATCH).startswith("ptxas.error: Arguments mismatch")
    moved = Diagnostic(code="nvcc.error", message="/tmp/x/a.cu(3): error: identifier undefined")
    assert "/tmp" not in diagnostic_signature(moved)


def test_distill_fix_and_tuning_lessons() -> None:
    [fix] = distill_lessons(_fix_run())
    assert fix.kind == "fix" and fix.target == "ptx" and fix.arch == "sm_90"
    assert fix.signature == diagnostic_signature(MISMATCH)
    assert "-  ld.param.u32 %rd1, [a];" in fix.summary and "+  ld.param.u64 %rd1, [a];" in fix.summary
    assert (fix.run_id, fix.model, fix.outcome) == ("run-1", "gpt-4o-mini", "no_gpu")
    [tuning] = distill_lessons(_tuning_run())
    assert tuning.kind == "tuning" and tuning.arch == "NVIDIA H100" and tuning.problem_class == "matmul"
    assert "BLOCK_SIZE=1024" in tuning.summary and "num_warps=8" in tuning.summary
    assert "beat turn 1 (1.10x)" in tuning.summary and tuning.speedup == 2.5
    assert distill_lessons(_fix_run()) == distill_lessons(_fix_run())  # deterministic ids


def test_no_lesson_when_the_error_stays_or_nothing_changed() -> None:
    same_error = RunRecord(
        run_id="r",
        target="ptx",
        attempts=[
            AttemptRecord(1, BROKEN, Outcome.COMPILE_ERROR, [MISMATCH]),
            AttemptRecord(2, FIXED, Outcome.COMPILE_ERROR, [MISMATCH]),
            AttemptRecord(3, FIXED, Outcome.TOOLCHAIN_MISSING),
        ],
    )
    assert distill_lessons(same_error) == []


def test_tuning_choices_and_problem_class() -> None:
    cuda = "__global__ void __launch_bounds__(256) k() {}\nk<<<grid, 256>>>(x);\nconst int TILE = 32;\n"
    assert tuning_choices(cuda) == ["TILE=32", "launch <<<grid, 256>>>", "__launch_bounds__(256)"]
    source = (
        "import torch\nclass Model(torch.nn.Module):\n    def forward(self, a, b):\n"
        "        return torch.matmul(a, b).relu()\n"
        "def get_inputs():\n    return []\ndef get_init_inputs():\n    return []\n"
    )
    assert classify_problem(Problem(name="mm", source=source)) == "matmul"


def test_store_retrieve_and_prune(settings: Settings) -> None:
    store = LessonStore.from_settings(settings)
    old = datetime.now(UTC) - timedelta(days=40)
    store.add(distill_lessons(_fix_run("old-run", old)))
    store.add(distill_lessons(_fix_run("new-run", datetime.now(UTC))))
    store.add(distill_lessons(_tuning_run()))
    store.add(distill_lessons(_tuning_run()))  # idempotent
    assert len(store.lessons()) == 3 and len(store.lessons(kind="fix")) == 2
    later = Diagnostic(
        code="ptxas.error", message="Arguments mismatch for instruction 'ld' at line 7, register %rd2"
    )
    hits = relevant_lessons(Target.PTX, [later], None, 2, settings=settings, arch="sm_90")
    assert [h.collection for h in hits] == ["lessons", "lessons"]
    assert hits[0].source.startswith("lesson:") and "new-run" in hits[0].text  # newest first on ties
    assert "+  ld.param.u64" in hits[0].text and hits[0].citation.endswith(f"1-{hits[0].end_line}")
    tuning = relevant_lessons("triton", [], "matmul", 3, settings=settings)
    assert len(tuning) == 1 and "BLOCK_SIZE=1024" in tuning[0].text
    assert relevant_lessons("cuda", [later], "matmul", 3, settings=settings) == []
    first = store.lessons()[0]
    assert store.get(first.id[:6]) == first
    assert store.prune(older_than_days=30) == 1
    assert store.prune(ids=[first.id]) == 1
    assert len(store.lessons()) == 1


def test_lessons_cli(settings: Settings) -> None:
    runner = CliRunner()
    home = ["--home", str(settings.home)]
    store = LessonStore.from_settings(settings)
    store.add(distill_lessons(_fix_run()))
    [lesson] = store.lessons()
    listed = runner.invoke(knowledge_app, ["lessons", "list", "--format", "json", *home])
    assert listed.exit_code == 0 and json.loads(listed.output)[0]["id"] == lesson.id
    text = runner.invoke(knowledge_app, ["lessons", "list", *home])
    assert lesson.id in text.output and "1 lessons" in text.output
    shown = runner.invoke(knowledge_app, ["lessons", "show", lesson.id, *home])
    assert shown.exit_code == 0 and "ld.param.u64" in shown.output and "run-1" in shown.output
    assert runner.invoke(knowledge_app, ["lessons", "show", "zzz", *home]).exit_code == 2
    assert runner.invoke(knowledge_app, ["lessons", "prune", *home]).exit_code == 2
    pruned = runner.invoke(knowledge_app, ["lessons", "prune", "--id", lesson.id, *home])
    assert pruned.exit_code == 0 and "deleted 1" in pruned.output
