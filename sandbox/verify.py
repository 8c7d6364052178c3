"""Service side of verification: run the reference and the candidate in separate sandboxed workers.

The agent/API process never imports problem or candidate code. It writes both into a scratch folder,
starts a reference worker (expected outputs on fresh inputs from secret seeds), then a candidate worker
(its own copies of the inputs only), asks the reference worker to judge, and turns the answers into a
`Verdict`. Every failure ends as a classified verdict; none escapes as an exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
import shutil
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sandbox
from kernelwright.domain import Candidate, DrawError, Outcome, Problem, Target, Timing, Verdict
from kernelwright.errors import SandboxError
from kernelwright.logs import get_logger
from kernelwright.settings import Settings
from sandbox.executor import Executor, Limits, ProcessSpec, WorkerExited, WorkerProcess, scrubbed_env
from sandbox.scratch_quota import ScratchUsage, watch_scratch
from sandbox.static_checks import uses_extension_build
from sandbox.toolchains import detect_gpu_arch

__all__ = ["VerifyOptions", "apply_speed_of_light", "verify_candidate", "worker_env"]

_READY_TIMEOUT_S = 600.0
CALLED_OFF = "verification called off before the candidate was built (its gate said no)"
log = get_logger(__name__)


@dataclass(frozen=True)
class VerifyOptions:
    draws: int = 5
    timing_trials: int = 100
    timing_warmup: int = 10
    timeout_s: float = 300.0
    device: str = "auto"
    keep_scratch: bool = False
    compile_baseline: bool = True  # also time torch.compile of the reference (GPU only)
    timing_chunk: int = 10  # trials per alternation between reference and candidate
    input_transforms: tuple[str, ...] = ()  # fixes from a curated suite, e.g. ("signed_inputs",)
    # After the first round (warm-up, torch.compile), timing stops once this much wall time has gone
    # and every variant has `min_timing_trials`, even short of `timing_trials`. None: always all trials.
    timing_budget_s: float | None = 0.3
    min_timing_trials: int = 10
    # Quarantine a candidate faster than this fraction of the problem's speed-of-light bound (0: off).
    speed_of_light_slack: float = 0.7

    @classmethod
    def from_settings(cls, settings: Settings) -> VerifyOptions:
        return cls(
            settings.correctness_draws,
            settings.timing_trials,
            settings.timing_warmup,
            settings.verify_timeout_s,
            settings.device,
            compile_baseline=settings.compile_baseline,
            timing_budget_s=settings.timing_budget_s,
            speed_of_light_slack=settings.speed_of_light_slack,
        )


def worker_env(
    settings: Settings, scratch: Path, kernel_cache: Path | None, gpu: bool, *, trusted: bool = False
) -> dict[str, str]:
    """The whole environment of a worker. `trusted` (reference and audit workers, which never load
    candidate code) keeps compiler caches across runs, so torch.compile baselines warm up once."""
    package_root = Path(sandbox.__file__).resolve().parent.parent
    extra = {
        "PYTHONPATH": str(package_root),
        "HOME": str(scratch),
        "TMPDIR": str(scratch),
        "TRITON_CACHE_DIR": str(scratch / ".triton"),
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    if trusted:
        caches = settings.cache_dir
        extra["TRITON_CACHE_DIR"] = str(caches / "triton")
        extra["TORCHINDUCTOR_CACHE_DIR"] = str(caches / "inductor")
        extra["KERNELWRIGHT_KERNEL_CACHE"] = str(caches / "kernels")  # the judge's own fused kernel
    if not gpu:
        extra["TRITON_INTERPRET"] = "1"
    if kernel_cache is not None:
        extra["KERNELWRIGHT_KERNEL_CACHE"] = str(kernel_cache)
    if settings.cuda_home is not None:
        extra["CUDA_HOME"] = str(settings.cuda_home)
    return scrubbed_env(extra)


def _timing(samples: list[float]) -> Timing | None:
    if not samples:
        return None
    ordered = sorted(samples)
    deciles = statistics.quantiles(ordered, n=10) if len(ordered) >= 2 else [ordered[0]] * 9
    return Timing(
        median_ms=statistics.median(ordered),
        p10_ms=deciles[0],
        p90_ms=deciles[-1],
        trials=len(ordered),
        method="cuda_events",
    )


async def _time_interleaved(
    reference: WorkerProcess, candidate: WorkerProcess, opts: VerifyOptions
) -> tuple[dict[str, list[float]], list[str], Verdict | None]:
    """Alternate chunks of timed trials between eager, torch.compile and the candidate.

    Returns the samples per variant, notes on baselines that could not be timed, and a verdict when the
    candidate failed while being timed (it crashed, hung or raised).
    """
    variants = ["eager", "candidate", *(["compile"] if opts.compile_baseline else [])]
    samples: dict[str, list[float]] = {v: [] for v in variants}
    notes: list[str] = []
    rounds = max(1, -(-opts.timing_trials // max(1, opts.timing_chunk)))
    per_round = -(-opts.timing_trials // rounds)
    # The budget runs from the start, or with a torch.compile baseline from the end of the first round
    # (which compiles the reference): the compile is not timing.
    budget_from = time.monotonic()
    for index in range(rounds):
        if index == 1 and opts.compile_baseline:
            budget_from = time.monotonic()
        elif (
            index >= 1
            and opts.timing_budget_s is not None
            and time.monotonic() - budget_from >= opts.timing_budget_s
            and all(len(samples[v]) >= opts.min_timing_trials for v in variants)
        ):
            notes.append(
                f"timing stopped by its {opts.timing_budget_s:g} s budget after "
                f"{len(samples['candidate'])} of {opts.timing_trials} trials"
            )
            break
        for variant in list(variants):
            worker = candidate if variant == "candidate" else reference
            warmup = opts.timing_warmup if index == 0 else 0
            await worker.send({"cmd": "time", "variant": variant, "trials": per_round, "warmup": warmup})
            # the first torch.compile round compiles the reference: allow it generous time
            limit = opts.timeout_s + (600.0 if variant == "compile" and index == 0 else 0.0)
            try:
                answer = await worker.receive(limit)
            except TimeoutError:
                if variant == "candidate":
                    return (
                        samples,
                        notes,
                        Verdict(
                            outcome=Outcome.TIMEOUT,
                            message=(
                                f"the candidate did not finish its timed trials within {opts.timeout_s:g} s"
                            ),
                        ),
                    )
                notes.append(f"{variant} baseline timed out")
                variants.remove(variant)
                continue
            except WorkerExited as exc:
                if variant == "candidate":
                    return (
                        samples,
                        notes,
                        Verdict(
                            outcome=Outcome.RUNTIME_ERROR,
                            message=(
                                f"the candidate process died while being timed ({exc}): "
                                f"{exc.stderr_tail[-1500:]}"
                            ),
                        ),
                    )
                raise
            if answer.get("event") == "times":
                samples[variant].extend(float(x) for x in answer.get("ms", []))
            elif variant == "candidate":
                return (
                    samples,
                    notes,
                    Verdict(
                        outcome=Outcome(str(answer.get("outcome", "runtime_error"))),
                        message=f"while timing: {answer.get('message')}",
                    ),
                )
            else:
                notes.append(f"{variant} baseline not timed: {answer.get('message')}")
                variants.remove(variant)
    return samples, notes, None


async def verify_candidate(
    problem: Problem,
    candidate: Candidate,
    *,
    settings: Settings,
    executor: Executor,
    options: VerifyOptions | None = None,
    kernel_cache: Path | None = None,
    gate: Callable[[], Awaitable[bool]] | None = None,
) -> Verdict:
    """Check `candidate` against `problem`'s reference on fresh inputs and time it where a GPU exists.

    With `gate`, the workers start at once but the candidate is built only when the gate answers True
    (e.g. once its compile succeeded); when it answers False the verdict says the check was called off.
    """
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
    phases: dict[str, float] = {"start": started}  # when each phase ended
    breakdown: dict[str, float] = {}  # seconds of sub-steps inside a phase
    run = asyncio.ensure_future(
        _run(
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
            phases,
            breakdown,
            gate,
        )
    )
    watch = asyncio.ensure_future(
        watch_scratch(
            scratch, max_bytes=settings.scratch_quota_bytes, max_entries=settings.scratch_quota_entries
        )
    )
    try:
        await asyncio.wait({run, watch}, return_when=asyncio.FIRST_COMPLETED)
        if not run.done() and watch.exception() is not None:  # a broken watchdog must not cost the verdict
            log.warning("verify.scratch_watch_failed", error=repr(watch.exception()))
            await asyncio.wait({run})
        if run.done():
            verdict = run.result()
        else:  # the folder went over its quota first: stop the run, the workers die below
            run.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await run
            verdict = _over_quota(watch.result(), settings)
    finally:
        for task in (run, watch):
            task.cancel()
        await asyncio.gather(run, watch, return_exceptions=True)
        # both at once: a worker holding a large CUDA context takes a while to exit, and its memory must
        # be free before the next candidate on this GPU starts
        await asyncio.gather(*(worker.close() for worker in workers))
        if not opts.keep_scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    phases["cleanup"] = time.monotonic()
    elapsed = time.monotonic() - started
    marks = sorted(phases.items(), key=lambda kv: kv[1])
    spent = {name: round(at - before, 4) for (_, before), (name, at) in itertools.pairwise(marks)}
    spent.update({name: round(seconds, 4) for name, seconds in breakdown.items()})
    log.info(
        "verified",
        target=candidate.target.value,
        problem=problem.key,
        outcome=verdict.outcome.value,
        device=verdict.device,
        speedup_vs_eager=verdict.speedup_vs_eager,
        seconds=round(elapsed, 2),
    )
    return verdict.model_copy(update={"duration_s": elapsed, "phases_s": spent})


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
    phases: dict[str, float],
    breakdown: dict[str, float],
    gate: Callable[[], Awaitable[bool]] | None,
) -> Verdict:
    python = settings.worker_python or sys.executable
    # -s: no user site-packages. (-I would also drop PYTHONPATH, which points the worker at our runtime.)
    argv = [python, "-s", "-m", "sandbox.runtime.worker"]
    limits = Limits(
        cpu_seconds=int(opts.timeout_s * 4) + 60, address_space_bytes=None if gpu else 32 * 1024**3
    )
    (ref_dir / "problem.py").write_text(problem.source, encoding="utf-8")
    (exchange / "candidate.py").write_text(candidate.source, encoding="utf-8")
    device = "cuda" if gpu else "cpu"

    reference = await executor.spawn(
        ProcessSpec(
            [*argv, "reference"], ref_dir, worker_env(settings, ref_dir, None, gpu, trusted=True), limits
        )
    )
    workers.append(reference)
    await reference.send(
        {
            "problem": str(ref_dir / "problem.py"),
            "exchange": str(exchange),
            "device": device,
            "seeds": [secrets.randbelow(2**31) for _ in range(opts.draws)],
            "init_seed": secrets.randbelow(2**31),
            "transforms": list(opts.input_transforms),
        }
    )
    # The candidate worker starts now and creates its CUDA context while the reference gets ready; it
    # loads candidate code only on "build", after the reference has written the weights.
    cand = await executor.spawn(
        ProcessSpec(
            [*argv, "candidate"],
            exchange,
            worker_env(settings, exchange, kernel_cache, gpu),
            limits,
            peer=reference if gpu else None,  # CUDA IPC: the pair shares IPC and PID namespaces
        )
    )
    workers.append(cand)
    await cand.send(
        {
            "candidate": str(exchange / "candidate.py"),
            "exchange": str(exchange),
            "device": device,
            # extension kernels launch from C++, past our launch API: the guard profiles each call
            "target": "extension"
            if candidate.target == Target.CUDA and uses_extension_build(candidate.source)
            else candidate.target.value,
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
    phases["reference_ready"] = time.monotonic()
    if gate is not None:
        if not await gate():
            return Verdict(outcome=Outcome.INFRASTRUCTURE, device=device_name, message=CALLED_OFF)
        phases["gate"] = time.monotonic()
    await cand.send({"cmd": "build"})
    built = await _candidate_answer(cand, opts.timeout_s, device_name, "ready", "building ModelNew")
    if isinstance(built, Verdict):
        return built
    phases["candidate_ready"] = time.monotonic()

    draws: list[DrawError] = []
    # every draw on fresh inputs from its secret seed, then a re-run of the first draw: determinism
    schedule = [(index, index) for index in range(opts.draws)] + [(opts.draws, 0)]
    outcome, message = Outcome.CORRECT, f"matches the reference on {opts.draws} fresh draws"
    parts = {"draw": 0.0, "run": 0.0, "check": 0.0}  # where correctness time goes, summed over draws
    judge_notes: list[str] = []  # e.g. the fused GPU judge could not run (same verdicts, slower)
    for index, seed in schedule:
        began = time.monotonic()
        await reference.send({"cmd": "draw", "index": index, "seed": seed})
        try:
            drawn = await reference.receive(_READY_TIMEOUT_S)
        except (TimeoutError, WorkerExited, SandboxError) as exc:
            return _infrastructure("the reference worker failed to draw inputs", exc, reference)
        if drawn.get("event") != "draw_ready":
            return Verdict(
                outcome=Outcome.INFRASTRUCTURE, device=device_name, message=str(drawn.get("message"))
            )
        drawn_at = time.monotonic()
        parts["draw"] += drawn_at - began
        await cand.send({"cmd": "run", "index": index, "keep": index == 0})
        ran = await _candidate_answer(cand, opts.timeout_s, device_name, "ran", f"draw {index}")
        if isinstance(ran, Verdict):
            return ran.model_copy(update={"draws": draws})
        ran_at = time.monotonic()
        parts["run"] += ran_at - drawn_at
        await reference.send({"cmd": "check", "index": index, "outputs": ran.get("outputs")})
        try:
            checked = await reference.receive(opts.timeout_s + 120)
            parts["check"] += time.monotonic() - ran_at
        except (TimeoutError, WorkerExited, SandboxError) as exc:
            return _infrastructure("the reference worker failed while judging", exc, reference)
        if checked.get("event") != "checked":
            return Verdict(
                outcome=Outcome.INFRASTRUCTURE, device=device_name, message=str(checked.get("message"))
            )
        if (note := checked.get("judge_note")) and str(note) not in judge_notes:
            judge_notes.append(str(note))
        rerun = index == opts.draws
        if not rerun:
            draws.append(
                DrawError(
                    draw=index,
                    passed=bool(checked.get("passed")),
                    max_abs_error=checked.get("max_abs_error"),
                    mean_abs_error=checked.get("mean_abs_error"),
                    max_rel_error=checked.get("max_rel_error"),
                )
            )
        if not checked.get("passed"):
            outcome = Outcome(str(checked.get("kind") or "mismatch"))
            detail = str(checked.get("message"))
            message = (
                f"not deterministic: a second run of draw 0 gave {detail}"
                if rerun
                else f"draw {index}: {detail}"
            )
            break
        if ran.get("mutated"):
            outcome, message = Outcome.MISMATCH, f"the candidate modified its inputs in draw {index}"
            break
        if ran.get("aliased"):
            outcome = Outcome.HACK_SUSPECTED
            message = f"outputs share memory with inputs or each other in draw {index}"
            break
    verdict = Verdict(
        outcome=outcome, message=message, device=device_name, draws=draws, baseline_notes=judge_notes
    )
    phases["correctness"] = time.monotonic()
    breakdown.update({f"correctness.{name}": seconds for name, seconds in parts.items()})
    if outcome != Outcome.CORRECT or not gpu or opts.timing_trials <= 0:
        return verdict
    try:
        samples, notes, failed = await _time_interleaved(reference, cand, opts)
    except (WorkerExited, SandboxError) as exc:
        return _infrastructure("the reference worker failed while timing", exc, reference)
    if failed is not None:
        return failed.model_copy(update={"device": device_name, "draws": verdict.draws})
    phases["timing"] = time.monotonic()
    cand_t, eager_t, compile_t = (_timing(samples.get(k, [])) for k in ("candidate", "eager", "compile"))
    timed = verdict.model_copy(
        update={
            "candidate_timing": cand_t,
            "eager_timing": eager_t,
            "compile_timing": compile_t,
            "speedup_vs_eager": _ratio(eager_t, cand_t),
            "speedup_vs_compile": _ratio(compile_t, cand_t),
            "baseline_notes": [*verdict.baseline_notes, *notes],
        }
    )
    if opts.speed_of_light_slack <= 0 or cand_t is None:
        return timed
    await reference.send({"cmd": "bound", "peaks_cache": str(settings.cache_dir / "gpu_peaks.json")})
    try:
        answer = await reference.receive(opts.timeout_s)
    except (TimeoutError, WorkerExited, SandboxError) as exc:
        return _infrastructure(
            "the reference worker failed computing the speed-of-light bound", exc, reference
        )
    phases["bound"] = time.monotonic()
    if answer.get("event") != "bound":
        return timed.model_copy(
            update={"baseline_notes": [*timed.baseline_notes, str(answer.get("message"))]}
        )
    return apply_speed_of_light(timed, answer, opts.speed_of_light_slack)


def _over_quota(usage: ScratchUsage, settings: Settings) -> Verdict:
    return Verdict(
        outcome=Outcome.RUNTIME_ERROR,
        message=(
            f"the workers were killed: their job folder grew to {usage.describe()}, over its quota of "
            f"{settings.scratch_quota_bytes / 1024**2:.0f} MiB and {settings.scratch_quota_entries} entries. "
            "A kernel should not write files; if the problem's own tensors are that large, raise "
            "KERNELWRIGHT_SCRATCH_QUOTA_BYTES"
        ),
    )


def apply_speed_of_light(verdict: Verdict, bound: dict[str, Any], slack: float) -> Verdict:
    """Quarantine a timed verdict whose candidate beats the problem's physical lower bound.

    The bound is trusted only when the eager reference does not beat it too (a problem whose reference
    skips some of its inputs, say): then it is reported and not applied.
    """
    min_ms = float(bound.get("min_ms") or 0.0)
    cand, eager = verdict.candidate_timing, verdict.eager_timing
    if min_ms <= 0 or cand is None:
        return verdict
    figures = (
        f"{bound.get('bytes', 0) / 1e6:.1f} MB at {bound.get('bandwidth_gbs', 0):.0f} GB/s, "
        f"{bound.get('flops', 0) / 1e9:.2f} GFLOP at {bound.get('tensor_tflops', 0):.0f} TFLOP/s"
    )
    update: dict[str, Any] = {"speed_of_light_ms": min_ms}
    if eager is not None and eager.median_ms < min_ms * slack:
        update["baseline_notes"] = [
            *verdict.baseline_notes,
            f"speed-of-light bound not applied: the eager reference ({eager.median_ms:.4f} ms) beats it "
            f"({min_ms:.4f} ms for {figures})",
        ]
    elif cand.median_ms < min_ms * slack:
        update["outcome"] = Outcome.QUARANTINED
        update["message"] = (
            f"quarantined: the candidate's median {cand.median_ms:.4f} ms is below the speed-of-light bound "
            f"{min_ms:.4f} ms ({figures}); no honest kernel can be this fast, so its timing is not trusted"
        )
    return verdict.model_copy(update=update)


async def _candidate_answer(
    worker: WorkerProcess, timeout_s: float, device_name: str, expected: str, what: str
) -> dict[str, Any] | Verdict:
    """The candidate's next message, or the verdict its failure to answer properly earns."""
    try:
        answer = await worker.receive(timeout_s)
    except TimeoutError:
        return Verdict(
            outcome=Outcome.TIMEOUT,
            device=device_name,
            message=f"the candidate did not finish {what} within {timeout_s:g} s and was killed",
        )
    except WorkerExited as exc:
        return Verdict(
            outcome=Outcome.RUNTIME_ERROR,
            device=device_name,
            message=f"the candidate process died during {what} ({exc}); stderr tail:\n"
            f"{exc.stderr_tail[-2000:]}",
        )
    except SandboxError as exc:
        return Verdict(outcome=Outcome.RUNTIME_ERROR, device=device_name, message=str(exc))
    if answer.get("event") == expected:
        return answer
    outcome = Outcome(str(answer.get("outcome", "runtime_error")))
    detail = str(answer.get("traceback") or "")[-3000:]
    return Verdict(outcome=outcome, device=device_name, message=f"{answer.get('message')}\n{detail}".strip())


def _ratio(baseline: Timing | None, candidate: Timing | None) -> float | None:
    if baseline is None or candidate is None or candidate.median_ms <= 0:
        return None
    return baseline.median_ms / candidate.median_ms


def _infrastructure(what: str, exc: BaseException, worker: WorkerProcess) -> Verdict:
    return Verdict(
        outcome=Outcome.INFRASTRUCTURE,
        message=f"{what}: {exc!r}; worker stderr tail:\n{worker.stderr_tail[-2000:]}",
    )
