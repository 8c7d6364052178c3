"""Compile then verify one candidate, with no LLM involved (`kernelwright eval`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from kernelwright.domain import Candidate, CompileResult, Outcome, Problem, Verdict
from kernelwright.settings import Settings
from sandbox.compile import compile_candidate
from sandbox.executor import Executor
from sandbox.result_store import ResultStore, gpu_model, verdict_key
from sandbox.static_checks import blocking, check_candidate_source
from sandbox.verify import VerifyOptions, verify_candidate

__all__ = ["evaluate_candidate", "verify_with_store"]

_SPECULATE_AFTER_S = 0.1  # a compile still running after this starts the verifier's workers meanwhile


def _store(settings: Settings) -> ResultStore | None:
    return ResultStore(settings.artifacts_dir / "verdicts") if settings.result_store else None


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
    store = _store(settings)
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
    """The compile result (None when static checks already failed) and the verdict.

    When compiling takes a while (nvcc, a cold cubin cache), the verifier's workers start meanwhile: the
    reference gets ready while the kernel compiles, and the candidate is built only once the compile
    succeeded and the result store has no verdict for it (otherwise the workers are closed unused).
    """
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
    compiling = asyncio.create_task(compile_candidate(candidate, settings, arch=arch, cache_dir=cache))
    try:
        compiled = await asyncio.wait_for(asyncio.shield(compiling), _SPECULATE_AFTER_S)
    except TimeoutError:
        try:
            return await _verify_while_compiling(
                problem,
                candidate,
                compiling,
                settings=settings,
                executor=executor,
                options=options,
                cache=cache,
            )
        finally:
            compiling.cancel()  # a no-op once it finished; a cancelled evaluation leaves no compiler running
    except asyncio.CancelledError:
        compiling.cancel()
        raise
    failed = _compile_failure(compiled)
    if failed is not None:
        return compiled, failed
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


def _compile_failure(compiled: CompileResult) -> Verdict | None:
    if compiled.toolchain_missing:
        return Verdict(
            outcome=Outcome.TOOLCHAIN_MISSING,
            diagnostics=compiled.diagnostics,
            message="; ".join(d.message + (f" ({d.hint})" if d.hint else "") for d in compiled.diagnostics),
        )
    if not compiled.ok:
        return Verdict(
            outcome=Outcome.COMPILE_ERROR,
            diagnostics=compiled.diagnostics,
            message=f"{compiled.toolchain} rejected the kernel",
        )
    return None


async def _verify_while_compiling(
    problem: Problem,
    candidate: Candidate,
    compiling: asyncio.Task[CompileResult],
    *,
    settings: Settings,
    executor: Executor,
    options: VerifyOptions | None,
    cache: Path,
) -> tuple[CompileResult, Verdict]:
    opts = options or VerifyOptions.from_settings(settings)
    store = _store(settings)
    known: list[Verdict] = []

    def key_of(compiled: CompileResult) -> str:
        return verdict_key(problem, candidate, compiled.toolchain, gpu_model(), opts)

    async def build_when_compiled() -> bool:
        compiled = await compiling
        if _compile_failure(compiled) is not None:
            return False
        if store is not None and (hit := store.get(key_of(compiled))) is not None:
            known.append(hit)
            return False
        return True

    verdict = await verify_candidate(
        problem,
        candidate,
        settings=settings,
        executor=executor,
        options=opts,
        kernel_cache=cache,
        gate=build_when_compiled,
    )
    compiled = await compiling
    failed = _compile_failure(compiled)
    if failed is not None:
        return compiled, failed
    if known:
        return compiled, known[0]
    if store is not None:
        store.put(key_of(compiled), verdict)
    return compiled, verdict
