"""Service side of verification: run the reference and the candidate in separate sandboxed workers.

The agent/API process never imports problem or candidate code. It writes both into a scratch folder,
starts a reference worker (expected outputs on fresh inputs from secret seeds), then a candidate worker
(its own copies of the inputs only), asks the reference worker to judge, and turns the answers into a
`Verdict`. Every failure ends as a classified verdict; none escapes as an exception.
"""

from __future__ import annotations

import secrets
import shutil
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sandbox
from kernelwright.domain import Candidate, DrawError, Outcome, Problem, Timing, Verdict
from kernelwright.errors import SandboxError
from kernelwright.logs import get_logger
from kernelwright.settings import Settings
from sandbox.executor import Executor, Limits, ProcessSpec, WorkerExited, WorkerProcess, scrubbed_env
from sandbox.toolchains import detect_gpu_arch

__all__ = ["VerifyOptions", "verify_candidate"]

_READY_TIMEOUT_S = 600.0
log = get_logger(__name__)


@dataclass(frozen=True)
class VerifyOptions:
    draws: int = 5
    timing_trials: int = 100
    timing_warmup: int = 10
    timeout_s: float = 300.0
    device: str = "auto"
    keep_scratch: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> VerifyOptions:
        return cls(
            settings.correctness_draws,
            settings.timing_trials,
            settings.timing_warmup,
            settings.verify_timeout_s,
            settings.device,
        )


def _worker_env(settings: Settings, scratch: Path, kernel_cache: Path | None, gpu: bool) -> dict[str, str]:
    package_root = Path(sandbox.__file__).resolve().parent.parent
    extra = {
        "PYTHONPATH": str(package_root),
        "HOME": str(scratch),
        "TMPDIR": str(scratch),
        "TRITON_CACHE_DIR": str(scratch / ".triton"),
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    if not gpu:
        extra["TRITON_INTERPRET"] = "1"
    if kernel_cache is not None:
        extra["KERNELWRIGHT_KERNEL_CACHE"] = str(kernel_cache)
    if settings.cuda_home is not None:
        extra["CUDA_HOME"] = str(settings.cuda_home)
    return scrubbed_env(extra)


def _timing(data: Any) -> Timing | None:
    if not isinstance(data, dict):
        return None
    return Timing(
        median_ms=data["median_ms"],
        p10_ms=data.get("p10_ms"),
        p90_ms=data.get("p90_ms"),
        trials=data["trials"],
        method=data.get("method", "cuda_events"),
    )


async def verify_candidate(
    problem: Problem,
    candidate: Candidate,
    *,
    settings: Settings,
    executor: Executor,
    options: VerifyOptions | None = None,
    kernel_cache: Path | None = None,
) -> Verdict:
    """Check `candidate` against `problem`'s reference on fresh inputs and time it where a GPU exists."""
    opts = options or VerifyOptions.from_settings(settings)
    started = time.monotonic()
    gpu_expected = opts.device == "cuda" or (opts.device == "auto" and detect_gpu_arch() is not None)
    if candidate.target.needs_nvidia_gpu and not gpu_expected:
        return Verdict(
            outcome=Outcome.NO_GPU,
            message=(
                f"the {candidate.target.value} kernel compiled, but running it needs an NVIDIA GPU and "
                "none is visible here; run on a GPU host to verify it"
            ),
        )
    scratch = settings.scratch_dir / uuid.uuid4().hex
    ref_dir, exchange = scratch / "reference", scratch / "candidate"
    ref_dir.mkdir(parents=True)
    exchange.mkdir(parents=True)
    workers: list[WorkerProcess] = []
    try:
        verdict = await _run(
            problem,
            candidate,
            settings,
            executor,
            opts,
            kernel_cache,
            ref_dir,
            exchange,
            gpu_expected,
            workers,
        )
    finally:
        for worker in workers:
            await worker.close()
        if not opts.keep_scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    elapsed = time.monotonic() - started
    log.info(
        "verified",
        target=candidate.target.value,
        problem=problem.key,
        outcome=verdict.outcome.value,
        device=verdict.device,
        speedup_vs_eager=verdict.speedup_vs_eager,
        seconds=round(elapsed, 2),
    )
    return verdict.model_copy(update={"duration_s": elapsed})


async def _run(
    problem: Problem,
    candidate: Candidate,
    settings: Settings,
    executor: Executor,
    opts: VerifyOptions,
    kernel_cache: Path | None,
    ref_dir: Path,
    exchange: Path,
    gpu: bool,
    workers: list[WorkerProcess],
) -> Verdict:
    python = settings.worker_python or sys.executable
    # -s: no user site-packages. (-I would also drop PYTHONPATH, which points the worker at our runtime.)
    argv = [python, "-s", "-m", "sandbox.runtime.worker"]
    limits = Limits(
        cpu_seconds=int(opts.timeout_s * 4) + 60, address_space_bytes=None if gpu else 32 * 1024**3
    )
    (ref_dir / "problem.py").write_text(problem.source, encoding="utf-8")
    (exchange / "candidate.py").write_text(candidate.source, encoding="utf-8")
    timing = {"trials": opts.timing_trials, "warmup": opts.timing_warmup} if opts.timing_trials > 0 else None
    device = "cuda" if gpu else "cpu"

    reference = await executor.spawn(
        ProcessSpec([*argv, "reference"], ref_dir, _worker_env(settings, ref_dir, None, gpu), limits)
    )
    workers.append(reference)
    await reference.send(
        {
            "problem": str(ref_dir / "problem.py"),
            "exchange": str(exchange),
            "device": device,
            "seeds": [secrets.randbelow(2**31) for _ in range(opts.draws)],
            "init_seed": secrets.randbelow(2**31),
            "timing": timing,
        }
    )
    try:
        ready = await reference.receive(_READY_TIMEOUT_S)
    except (TimeoutError, WorkerExited, SandboxError) as exc:
        return _infrastructure("the reference worker did not get ready", exc, reference)
    if ready.get("event") != "ready":
        return Verdict(
            outcome=Outcome.INFRASTRUCTURE, message=str(ready.get("message")), diagnostics=[], device=None
        )
    device_name = str(ready.get("device"))
    if candidate.target.needs_nvidia_gpu and not ready.get("gpu"):
        return Verdict(
            outcome=Outcome.NO_GPU,
            device=device_name,
            message="the worker sees no CUDA device, so the kernel cannot run here",
        )

    cand = await executor.spawn(
        ProcessSpec(
            [*argv, "candidate"], exchange, _worker_env(settings, exchange, kernel_cache, gpu), limits
        )
    )
    workers.append(cand)
    await cand.send(
        {
            "candidate": str(exchange / "candidate.py"),
            "exchange": str(exchange),
            "device": device,
            "timing": timing,
        }
    )
    try:
        done = await cand.receive(opts.timeout_s)
    except TimeoutError:
        return Verdict(
            outcome=Outcome.TIMEOUT,
            device=device_name,
            message=f"the candidate did not finish within {opts.timeout_s:g} s and was killed",
        )
    except WorkerExited as exc:
        return Verdict(
            outcome=Outcome.RUNTIME_ERROR,
            device=device_name,
            message=f"the candidate process died ({exc}); stderr tail:\n{exc.stderr_tail[-2000:]}",
        )
    except SandboxError as exc:
        return Verdict(outcome=Outcome.RUNTIME_ERROR, device=device_name, message=str(exc))
    if done.get("event") == "error":
        outcome = Outcome(str(done.get("outcome", "runtime_error")))
        detail = str(done.get("traceback") or "")[-3000:]
        return Verdict(
            outcome=outcome, device=device_name, message=f"{done.get('message')}\n{detail}".strip()
        )
    await cand.close()

    await reference.send({"cmd": "judge"})
    try:
        judged = await reference.receive(opts.timeout_s + 120)
    except (TimeoutError, WorkerExited, SandboxError) as exc:
        return _infrastructure("the reference worker failed while judging", exc, reference)
    if judged.get("event") == "error":
        return Verdict(
            outcome=Outcome(str(judged.get("outcome", "infrastructure"))),
            device=device_name,
            message=str(judged.get("message")),
        )
    cand_timing, eager_timing = _timing(done.get("timing")), _timing(judged.get("eager_timing"))
    speedup = None
    if cand_timing and eager_timing and cand_timing.median_ms > 0:
        speedup = eager_timing.median_ms / cand_timing.median_ms
    outcome = Outcome(str(judged["outcome"]))
    return Verdict(
        outcome=outcome,
        message=str(judged.get("message", "")),
        device=device_name,
        draws=[
            DrawError(
                draw=d["draw"],
                passed=d["passed"],
                max_abs_error=d.get("max_abs_error"),
                mean_abs_error=d.get("mean_abs_error"),
                max_rel_error=d.get("max_rel_error"),
            )
            for d in judged.get("draws", [])
        ],
        candidate_timing=cand_timing if outcome == Outcome.CORRECT else None,
        eager_timing=eager_timing,
        speedup_vs_eager=speedup if outcome == Outcome.CORRECT else None,
    )


def _infrastructure(what: str, exc: BaseException, worker: WorkerProcess) -> Verdict:
    return Verdict(
        outcome=Outcome.INFRASTRUCTURE,
        message=f"{what}: {exc!r}; worker stderr tail:\n{worker.stderr_tail[-2000:]}",
    )
