"""Problem audit: find the problems a trivial kernel passes, and the broken ones (service side).

Runs the audit worker (`sandbox.runtime.audit`) over a suite, one problem at a time in one long-lived
sandboxed process, restarting it when a problem crashes or hangs it. Each problem gets a decision:
`keep`, `fix` (with the fixes that make it sound, e.g. signed inputs) or `exclude`, with the reasons.
"""

from __future__ import annotations

import secrets
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field

from kernelwright.domain import Problem
from kernelwright.errors import SandboxError
from kernelwright.settings import Settings
from sandbox.executor import Executor, Limits, ProcessSpec, WorkerExited, WorkerProcess
from sandbox.result_store import gpu_model
from sandbox.toolchains import detect_gpu_arch
from sandbox.verify import worker_env

__all__ = ["AuditReport", "CuratedSuite", "ProblemAudit", "audit_problems", "curate", "decide"]

AUDIT_SCHEMA = "kernelwright.audit/1"
_BROKEN = {
    "reference_crashes": "the reference crashes",
    "reference_timeout": "the reference does not finish in time",
    "nondeterministic": "the reference gives different outputs for the same inputs",
    "reference_nonfinite": "the reference outputs NaN/Inf",
}
_WEAK = {
    "zeros_pass": "an all-zeros output passes",
    "identity_pass": "returning an input unchanged passes",
    "input_independent": "the same output for every input passes",
}
_NOTES = {
    "integer_inputs": "integer inputs are kept integer (KernelBench's harness casts them to float)",
    "mode_dependent": "outputs depend on train/eval mode; both models run in eval mode",
    "nonnegative_inputs": "inputs are never negative",
    "audit_oom": "not audited: the audit ran out of GPU memory (kept as is)",
}


class ProblemAudit(BaseModel):
    key: str
    name: str
    level: int | None = None
    findings: list[str] = Field(default_factory=list)
    signed_findings: list[str] | None = None  # the trivial answers that still pass with signed inputs
    decision: Literal["keep", "fix", "exclude"] = "keep"
    fixes: list[str] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0


class AuditReport(BaseModel):
    schema_: str = Field(default=AUDIT_SCHEMA, alias="schema")
    date: datetime
    device: str
    source: str
    draws: int
    problems: list[ProblemAudit]

    def counts(self) -> dict[str, int]:
        out = {"keep": 0, "fix": 0, "exclude": 0}
        for problem in self.problems:
            out[problem.decision] += 1
        return out


def decide(audit: ProblemAudit) -> ProblemAudit:
    """Turn findings into a decision: broken or weak problems are excluded unless a fix removes the flaw."""
    found = set(audit.findings)
    reasons = [text for code, text in _BROKEN.items() if code in found]
    notes = [text for code, text in _NOTES.items() if code in found]
    weak = [code for code in _WEAK if code in found]
    fixes: list[str] = []
    if weak and audit.signed_findings is not None:
        remaining = [code for code in weak if code in audit.signed_findings]
        if not remaining:
            fixes.append("signed_inputs")
            notes.append(
                "with inputs drawn signed (x -> 2x - 1), " + ", ".join(_WEAK[c] for c in weak) + " no longer"
            )
        weak = remaining
    reasons += [_WEAK[code] for code in weak]
    decision: Literal["keep", "fix", "exclude"] = "exclude" if reasons else ("fix" if fixes else "keep")
    return audit.model_copy(update={"decision": decision, "fixes": fixes, "reasons": reasons, "notes": notes})


async def audit_problems(
    problems: Sequence[Problem],
    *,
    settings: Settings,
    executor: Executor,
    draws: int = 3,
    timeout_s: float = 300.0,
    progress: Callable[[ProblemAudit], None] | None = None,
    source: str = "",
) -> AuditReport:
    """Audit every problem; one slow or crashing problem never stops the rest."""
    gpu = settings.device == "cuda" or (settings.device == "auto" and detect_gpu_arch() is not None)
    scratch = settings.scratch_dir / f"audit-{uuid.uuid4().hex[:8]}"
    scratch.mkdir(parents=True)
    worker: WorkerProcess | None = None
    results: list[ProblemAudit] = []
    spec = ProcessSpec(
        [settings.worker_python or sys.executable, "-s", "-m", "sandbox.runtime.audit"],
        scratch,
        worker_env(settings, scratch, None, gpu, trusted=True),
        Limits(cpu_seconds=None),
    )
    try:
        for index, problem in enumerate(problems):
            path = scratch / f"problem_{index}.py"
            path.write_text(problem.source, encoding="utf-8")
            base = ProblemAudit(key=problem.key, name=problem.name, level=problem.level)
            if worker is None:
                worker = await executor.spawn(spec)
            started = time.monotonic()
            await worker.send(
                {
                    "problem": str(path),
                    "key": problem.key,
                    "device": "cuda" if gpu else "cpu",
                    "seeds": [secrets.randbelow(2**31) for _ in range(draws)],
                }
            )
            try:
                answer = await worker.receive(timeout_s)
            except TimeoutError:
                audit = base.model_copy(update={"findings": ["reference_timeout"]})
                await worker.close()
                worker = None
            except (WorkerExited, SandboxError) as exc:
                tail = worker.stderr_tail[-500:]
                audit = base.model_copy(update={"findings": ["reference_crashes"], "error": f"{exc}: {tail}"})
                await worker.close()
                worker = None
            else:
                if answer.get("event") == "audited":
                    signed = answer.get("signed")
                    audit = base.model_copy(
                        update={
                            "findings": list(answer.get("findings", [])),
                            "signed_findings": list(signed["findings"]) if isinstance(signed, dict) else None,
                        }
                    )
                elif answer.get("oom"):
                    audit = base.model_copy(
                        update={"findings": ["audit_oom"], "error": str(answer.get("message"))}
                    )
                else:
                    audit = base.model_copy(
                        update={"findings": ["reference_crashes"], "error": str(answer.get("message"))}
                    )
            audit = decide(audit.model_copy(update={"seconds": time.monotonic() - started}))
            results.append(audit)
            if progress is not None:
                progress(audit)
    finally:
        if worker is not None:
            await worker.close()
        shutil.rmtree(scratch, ignore_errors=True)
    return AuditReport(
        date=datetime.now(UTC),
        device=gpu_model() if gpu else "cpu",
        source=source,
        draws=draws,
        problems=results,
    )


class CuratedSuite(BaseModel):
    """What the audit decided, as a suite definition: problems to leave out and fixes to apply."""

    schema_: str = Field(default="kernelwright.curated-suite/1", alias="schema")
    generated_from: list[str] = Field(default_factory=list)  # "source @ device, date" of each audit
    exclude: dict[str, list[str]] = Field(default_factory=dict)  # problem key -> reasons
    fixes: dict[str, list[str]] = Field(default_factory=dict)  # problem key -> input transforms

    def admits(self, problem: Problem) -> bool:
        return problem.key not in self.exclude

    def transforms_for(self, problem: Problem) -> tuple[str, ...]:
        return tuple(self.fixes.get(problem.key, ()))


def curate(reports: Sequence[AuditReport]) -> CuratedSuite:
    """Fold audit reports into a curated suite (a later report overrides an earlier one per problem)."""
    suite = CuratedSuite()
    for report in reports:
        suite.generated_from.append(f"{report.source} @ {report.device}, {report.date.isoformat()}")
        for audit in report.problems:
            suite.exclude.pop(audit.key, None)
            suite.fixes.pop(audit.key, None)
            if audit.decision == "exclude":
                suite.exclude[audit.key] = audit.reasons
            elif audit.decision == "fix":
                suite.fixes[audit.key] = audit.fixes
    return suite
