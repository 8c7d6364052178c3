"""Compile then verify one candidate, with no LLM involved (`kernelwright eval`)."""

from __future__ import annotations

from pathlib import Path

from kernelwright.domain import Candidate, CompileResult, Outcome, Problem, Verdict
from kernelwright.settings import Settings
from sandbox.compile import compile_candidate
from sandbox.executor import Executor
from sandbox.result_store import ResultStore, gpu_model, verdict_key
from sandbox.static_checks import blocking, check_candidate_source
from sandbox.verify import VerifyOptions, verify_candidate

__all__ = ["evaluate_candidate", "verify_with_store"]


async def verify_with_store(
    problem: Problem,
    candidate: Candidate,
    compiled: CompileResult,
    *,
    settings: Settings,
    executor: Executor,
    options: VerifyOptions | None = None,
    kernel_cache: Path | None = None,
) -> Verdict:
    """Serve the verdict from the content-addressed store when this exact check ran before; else run it."""
    opts = options or VerifyOptions.from_settings(settings)
    store = ResultStore(settings.artifacts_dir / "verdicts") if settings.result_store else None
    key = verdict_key(problem, candidate, compiled.toolchain, gpu_model(), opts)
    if store is not None and (known := store.get(key)) is not None:
        return known
    verdict = await verify_candidate(
        problem, candidate, settings=settings, executor=executor, options=opts, kernel_cache=kernel_cache
    )
    if store is not None:
        store.put(key, verdict)
    return verdict


async def evaluate_candidate(
    problem: Problem,
    candidate: Candidate,
    *,
    settings: Settings,
    executor: Executor,
    options: VerifyOptions | None = None,
    arch: str | None = None,
) -> tuple[CompileResult | None, Verdict]:
    """The compile result (None when static checks already failed) and the verdict."""
    static = blocking(check_candidate_source(candidate.source, candidate.target))
    if static:
        hack = any(d.code.startswith("hack.") for d in static)
        return None, Verdict(
            outcome=Outcome.HACK_SUSPECTED if hack else Outcome.COMPILE_ERROR,
            diagnostics=static,
            message="; ".join(d.message for d in static),
        )
    cache = settings.artifacts_dir / "kernels"
    cache.mkdir(parents=True, exist_ok=True)
    compiled = await compile_candidate(candidate, settings, arch=arch, cache_dir=cache)
    if compiled.toolchain_missing:
        return compiled, Verdict(
            outcome=Outcome.TOOLCHAIN_MISSING,
            diagnostics=compiled.diagnostics,
            message="; ".join(d.message + (f" ({d.hint})" if d.hint else "") for d in compiled.diagnostics),
        )
    if not compiled.ok:
        return compiled, Verdict(
            outcome=Outcome.COMPILE_ERROR,
            diagnostics=compiled.diagnostics,
            message=f"{compiled.toolchain} rejected the kernel",
        )
    verdict = await verify_with_store(
        problem,
        candidate,
        compiled,
        settings=settings,
        executor=executor,
        options=options,
        kernel_cache=cache,
    )
    return compiled, verdict
