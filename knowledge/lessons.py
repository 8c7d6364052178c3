"""Lessons: what past runs learned, distilled so later runs can cite it.

Two kinds, both keyed so that they transfer to the next run that meets the same situation:

- `fix`: a diagnostic signature (its code and normalised message, per target and architecture) →
  the change that made it go away (a short unified diff between the failing attempt and the next).
  Compilers repeat themselves; the fix that worked for `ptxas: Arguments mismatch for instruction
  'mov'` on sm_90 is the best first guess next time.
- `tuning`: a problem class (matmul, reduction, ...) on a GPU → the tuning choices of the fastest
  correct kernel (block sizes, warps, stages, launch bounds) and how they beat an earlier attempt.

Distillation takes plain inputs (`RunRecord`, `AttemptRecord`) rather than the agent's state, so the
agent can change shape without breaking this module; it is deterministic and uses no LLM.
Retrieval returns `Hit`s of collection "lessons" (source `lesson:<id>`) to go into prompts with
citations like any other excerpt.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from kernelwright.domain import Diagnostic, Hit, Outcome, Problem, Target
from rag.lexical import Chunk, LexicalIndex

__all__ = [
    "LESSONS_COLLECTION",
    "AttemptRecord",
    "Lesson",
    "LessonKind",
    "RunRecord",
    "classify_problem",
    "diagnostic_signature",
    "distill_lessons",
    "lesson_hit",
    "rank_lessons",
    "tuning_choices",
]

LESSONS_COLLECTION = "lessons"
MAX_DIFF_LINES = 40
MAX_DIFF_CHARS = 2400

LessonKind = Literal["fix", "tuning"]

_NUMBER = re.compile(r"(?<![A-Za-z_])\d+(?:\.\d+)?")
_REGISTER = re.compile(r"%[a-z]+\d+\b")
_PATH = re.compile(r"(?:[\w.-]*/)+[\w.-]+")
_SPACE = re.compile(r"\s+")
_TUNING = re.compile(
    r"\b(BLOCK(?:_SIZE)?(?:_[A-Z])?|BLOCK_[A-Z]+|GROUP_SIZE(?:_[A-Z])?|TILE(?:_[A-Z]+)?|num_warps|"
    r"num_stages|num_ctas|threads(?:_per_block)?|block(?:_dim|Dim|_size)|THREADS|WARPS|"
    r"VEC(?:TOR)?(?:_SIZE)?|UNROLL)\s*[:=]\s*([0-9]+)"
)
_LAUNCH = re.compile(r"<<<\s*([^>]+?)\s*>>>")
_LAUNCH_BOUNDS = re.compile(r"__launch_bounds__\s*\(([^)]*)\)")
_CLASS_TABLE = """
matmul: matmul mm bmm addmm baddbmm linear einsum tensordot bilinear
conv: conv1d conv2d conv3d conv_transpose1d conv_transpose2d conv_transpose3d
softmax: softmax log_softmax softmin
norm: layer_norm layernorm batch_norm batchnorm1d batchnorm2d batchnorm3d group_norm groupnorm
norm: instance_norm instancenorm2d rms_norm rmsnorm
pool: max_pool1d max_pool2d max_pool3d avg_pool1d avg_pool2d avg_pool3d adaptive_avg_pool2d
pool: maxpool1d maxpool2d maxpool3d avgpool1d avgpool2d avgpool3d adaptiveavgpool2d
reduction: sum mean max min amax amin argmax argmin prod norm var std logsumexp cumsum cumprod
"""
_CLASS_OF: dict[str, str] = {}
for _row in _CLASS_TABLE.strip().splitlines():
    _name, _, _members = _row.partition(":")
    for _member in _members.split():
        _CLASS_OF.setdefault(_member, _name)
_CLASS_ORDER = tuple(dict.fromkeys(row.partition(":")[0] for row in _CLASS_TABLE.strip().splitlines()))


class Lesson(BaseModel):
    """One distilled lesson with its provenance (which run, when, which model)."""

    model_config = ConfigDict(frozen=True)

    id: str
    kind: LessonKind
    target: str
    arch: str | None = None  # the compile architecture (sm_90), or the GPU for tuning lessons
    signature: str | None = None  # fix: normalised diagnostic "code: message"
    problem_class: str | None = None
    summary: str  # fix: unified diff failing → fixed; tuning: choices, speedup and diff
    outcome: str  # what the change led to: an `Outcome` value, with the speedup for tuning
    speedup: float | None = None
    run_id: str
    problem: str | None = None
    model: str | None = None
    created_at: datetime

    def render(self) -> str:
        """The lesson as prompt text (what a `Hit` built from it carries)."""
        where = f"{self.target}" + (f" on {self.arch}" if self.arch else "")
        if self.kind == "fix":
            head = f"Fix learned ({where}) for: {self.signature}\nResult: {self.outcome}"
        else:
            head = f"Tuning learned ({where}) for {self.problem_class} kernels\nResult: {self.outcome}"
        origin = f"(run {self.run_id}, {self.created_at.date().isoformat()}, model {self.model or '?'})"
        return f"{head} {origin}\n{self.summary}"


@dataclass(frozen=True)
class AttemptRecord:
    """What distillation needs of one attempt; the agent fills it from its `Attempt`."""

    turn: int
    code: str | None
    outcome: Outcome | str
    diagnostics: Sequence[Diagnostic] = ()
    speedup: float | None = None


@dataclass(frozen=True)
class RunRecord:
    """What distillation needs of one run."""

    run_id: str
    target: Target | str
    attempts: Sequence[AttemptRecord]
    arch: str | None = None
    device: str | None = None  # the GPU that timed the kernels (tuning lessons are per GPU)
    problem: str | None = None
    problem_class: str | None = None
    model: str | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))


def classify_problem(problem: Problem) -> str:
    """A coarse class of the problem (matmul, conv, softmax, norm, pool, reduction, elementwise, other):
    tuning that wins for one matmul tends to win for the next."""
    from rag.queries import problem_operations

    operations = problem_operations(problem)
    classes = {_CLASS_OF.get(op, _CLASS_OF.get(op.rstrip("_"), "")) for op in operations}
    for name in _CLASS_ORDER:
        if name in classes:
            return name
    return "elementwise" if operations else "other"


def diagnostic_signature(diagnostic: Diagnostic) -> str:
    """`code: message` with what varies between runs removed (numbers, registers, paths, spacing)."""
    message = diagnostic.message.splitlines()[0] if diagnostic.message else ""
    message = _PATH.sub("<path>", message)
    message = _REGISTER.sub(lambda m: re.sub(r"\d+", "N", m.group(0)), message)
    message = _NUMBER.sub("N", message)
    message = _SPACE.sub(" ", message).strip()
    return f"{diagnostic.code}: {message}"[:300]


def _value(outcome: Outcome | str) -> str:
    return outcome.value if isinstance(outcome, Outcome) else str(outcome)


def _short_diff(before: str, after: str, label: str) -> str:
    lines = list(
        difflib.unified_diff(
            before.splitlines(), after.splitlines(), f"{label}/before", f"{label}/after", n=1, lineterm=""
        )
    )
    text = "\n".join(lines[:MAX_DIFF_LINES])
    if len(lines) > MAX_DIFF_LINES:
        text += f"\n... ({len(lines) - MAX_DIFF_LINES} more diff lines)"
    return text[:MAX_DIFF_CHARS]


def tuning_choices(code: str) -> list[str]:
    """Tuning parameters visible in a kernel's source: block sizes, warps, stages, launch shapes."""
    found: list[str] = []
    for match in _TUNING.finditer(code):
        found.append(f"{match.group(1)}={match.group(2)}")
    found.extend(f"launch <<<{m.group(1)}>>>" for m in _LAUNCH.finditer(code))
    found.extend(f"__launch_bounds__({m.group(1)})" for m in _LAUNCH_BOUNDS.finditer(code))
    return list(dict.fromkeys(found))[:12]


def _lesson_id(*parts: str | None) -> str:
    return hashlib.sha256("\0".join(p or "" for p in parts).encode()).hexdigest()[:12]


_FAILED = {Outcome.TOOLCHAIN_MISSING.value, Outcome.INFRASTRUCTURE.value}


def distill_lessons(run: RunRecord) -> list[Lesson]:
    """Fix lessons from every failing attempt whose error signatures the next attempt no longer has
    (and which got at least as far), and one tuning lesson from the fastest correct attempt."""
    target = run.target.value if isinstance(run.target, Target) else str(run.target)
    lessons: list[Lesson] = []
    attempts = [a for a in run.attempts if a.code]
    for before, after in itertools.pairwise(attempts):
        if _value(after.outcome) in _FAILED or before.code is None or after.code is None:
            continue
        errors = [d for d in before.diagnostics if d.is_error]
        remaining = {diagnostic_signature(d) for d in after.diagnostics if d.is_error}
        fixed = [s for s in dict.fromkeys(diagnostic_signature(d) for d in errors) if s not in remaining]
        if not fixed or before.code == after.code:
            continue
        diff = _short_diff(before.code, after.code, f"turn{before.turn}-turn{after.turn}")
        for signature in fixed[:3]:
            lessons.append(
                Lesson(
                    id=_lesson_id("fix", run.run_id, target, run.arch, signature, str(before.turn)),
                    kind="fix",
                    target=target,
                    arch=run.arch,
                    signature=signature,
                    problem_class=run.problem_class,
                    summary=diff,
                    outcome=_value(after.outcome),
                    run_id=run.run_id,
                    problem=run.problem,
                    model=run.model,
                    created_at=run.created_at,
                )
            )
    correct = [a for a in attempts if _value(a.outcome) == Outcome.CORRECT.value and a.speedup]
    if correct:
        best = max(correct, key=lambda a: (a.speedup or 0.0, a.turn))
        assert best.code is not None
        slower = [a for a in correct if a is not best and (a.speedup or 0.0) < (best.speedup or 0.0)]
        choices = tuning_choices(best.code)
        summary = "choices: " + (", ".join(choices) if choices else "(none recognised in the source)")
        if slower:
            previous = max(slower, key=lambda a: a.speedup or 0.0)
            assert previous.code is not None
            summary += f"\nbeat turn {previous.turn} ({previous.speedup:.2f}x) with:\n" + _short_diff(
                previous.code, best.code, f"turn{previous.turn}-turn{best.turn}"
            )
        gpu = run.device or run.arch
        lessons.append(
            Lesson(
                id=_lesson_id("tuning", run.run_id, target, gpu, run.problem_class),
                kind="tuning",
                target=target,
                arch=gpu,
                problem_class=run.problem_class or "other",
                summary=summary,
                outcome=f"correct, {best.speedup:.2f}x vs eager",
                speedup=best.speedup,
                run_id=run.run_id,
                problem=run.problem,
                model=run.model,
                created_at=run.created_at,
            )
        )
    return lessons


def lesson_hit(lesson: Lesson, score: float) -> Hit:
    text = lesson.render()
    heading = (
        f"fix [{lesson.target} {lesson.arch or '-'}] {lesson.signature}"
        if lesson.kind == "fix"
        else f"tuning [{lesson.target} {lesson.arch or '-'}] {lesson.problem_class}"
    )
    return Hit(
        source=f"lesson:{lesson.id}",
        start_line=1,
        end_line=len(text.split("\n")),
        score=round(score, 4),
        text=text,
        collection=LESSONS_COLLECTION,
        heading=heading,
    )


def rank_lessons(
    lessons: Iterable[Lesson],
    *,
    target: Target | str,
    diagnostics: Sequence[Diagnostic] = (),
    problem_class: str | None = None,
    arch: str | None = None,
    k: int = 3,
) -> list[Hit]:
    """The `k` lessons most relevant to a situation, as hits, best first.

    Only lessons of the same target count. A fix lesson whose signature equals one of the current
    diagnostics' signatures scores highest; otherwise signatures are compared by BM25 (same tokens:
    same instruction, same identifiers). A tuning lesson counts when its problem class matches and
    only when there are no diagnostics to fix. Same architecture/GPU adds a bonus; newer wins ties.
    """
    if k <= 0:
        return []
    wanted = target.value if isinstance(target, Target) else str(target)
    pool = [lesson for lesson in lessons if lesson.target == wanted]
    if not pool:
        return []
    signatures = [diagnostic_signature(d) for d in diagnostics if d.is_error] or [
        diagnostic_signature(d) for d in diagnostics
    ]
    scores: dict[str, float] = {}
    fixes = [lesson for lesson in pool if lesson.kind == "fix" and lesson.signature]
    if signatures and fixes:
        index = LexicalIndex(
            [Chunk(lesson.id, None, 1, 1, lesson.signature or "") for lesson in fixes], collection="lessons"
        )
        for hit in index.search(" ".join(signatures), k=len(fixes)):
            scores[hit.source] = hit.score
        for lesson in fixes:
            if lesson.signature in signatures:
                scores[lesson.id] = scores.get(lesson.id, 0.0) + 100.0
    if not signatures and problem_class:
        for lesson in pool:
            if lesson.kind == "tuning" and lesson.problem_class == problem_class:
                scores[lesson.id] = 10.0 + (lesson.speedup or 0.0) / 100.0
    by_id = {lesson.id: lesson for lesson in pool}
    for lesson_id in scores:
        if arch and by_id[lesson_id].arch == arch:
            scores[lesson_id] += 5.0
    ranked = sorted(
        scores.items(), key=lambda item: (-item[1], -by_id[item[0]].created_at.timestamp(), item[0])
    )
    return [lesson_hit(by_id[lesson_id], score) for lesson_id, score in ranked[:k]]
