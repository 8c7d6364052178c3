"""Graph nodes: small async functions `(state, runtime) -> partial update`.

Side effects (trace lines, LLM calls, compiles) happen inside nodes; every node returns only the fields
it changes. Failures of candidates are data (diagnostics, verdicts), never exceptions.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from langgraph.runtime import Runtime

from agent.context import RunContext
from agent.extraction import extract_candidate_code
from agent.providers import ChatMessage
from agent.state import Attempt, RunState, RunStatus
from kernelwright.domain import Candidate, Outcome, Target, TraceKind
from kernelwright.errors import ModelRequestError
from knowledge.lessons import AttemptRecord, RunRecord, classify_problem, distill_lessons
from knowledge.lessons_store import LessonStore, relevant_lessons
from knowledge.ttmetal import Project
from prompts import AttemptSummary, PromptInput, Step, render_prompt
from rag.queries import build_query
from sandbox.compile import compile_candidate
from sandbox.evaluate import verify_with_store
from sandbox.runner import EvalJob
from sandbox.static_checks import check_candidate_source
from sandbox.ttmetal_build import check_ttmetal, ttmetal_verdict

__all__ = ["assess", "check", "compile_kernel", "propose", "record", "retrieve", "verify"]

Update = dict[str, Any]


async def retrieve(state: RunState, runtime: Runtime[RunContext]) -> Update:
    """Find manual sections and guides for this problem (and for the last attempt's diagnostics)."""
    ctx = runtime.context
    last = state.attempts[-1] if state.attempts else None
    diagnostics = last.diagnostics if last is not None and state.step == Step.FIX_COMPILE else []
    query = build_query(state.problem, state.target, diagnostics)
    started = time.monotonic()
    hits = ctx.retriever.search(query, ctx.retrieval_k)
    # lessons distilled from earlier runs (fixes of the same diagnostics, tuning that won on this GPU)
    hits += relevant_lessons(
        state.target, diagnostics, classify_problem(state.problem), 2, settings=ctx.settings, arch=state.arch
    )
    ctx.trace.emit(
        TraceKind.RETRIEVED,
        "retrieve",
        turn=state.turn + 1,
        duration_s=time.monotonic() - started,
        query=query,
        hits=[{"citation": h.citation, "score": h.score, "heading": h.heading} for h in hits],
    )
    return {"hits": hits}


def _summaries(state: RunState) -> list[AttemptSummary]:
    out = []
    for attempt in state.attempts:
        if attempt.verdict is not None:
            reason = attempt.verdict.message.splitlines()[0] if attempt.verdict.message else ""
        else:
            errors = [d for d in attempt.diagnostics if d.is_error]
            reason = errors[0].message if errors else ""
        out.append(AttemptSummary(turn=attempt.turn, outcome=attempt.outcome.value, summary=reason[:300]))
    return out


async def propose(state: RunState, runtime: Runtime[RunContext]) -> Update:
    """Ask the model for a (new or fixed or faster) kernel."""
    ctx = runtime.context
    turn = state.turn + 1
    last = state.attempts[-1] if state.attempts else None
    prompt = render_prompt(
        PromptInput(
            problem=state.problem,
            target=state.target,
            step=state.step,
            arch=state.arch,
            context=state.hits,
            attempts=_summaries(state),
            previous_code=last.code if last else None,
            diagnostics=last.diagnostics if last else (),
            verdict=last.verdict if last else None,
            notes=state.notes,
        )
    )
    ctx.trace.emit(
        TraceKind.PROMPT,
        "propose",
        turn=turn,
        step=state.step.value,
        template=prompt.template,
        template_version=prompt.version,
        system=prompt.system,
        user=prompt.user,
        provider=ctx.provider.name,
        model=ctx.provider.model,
    )
    messages = [ChatMessage("system", prompt.system), ChatMessage("user", prompt.user)]
    try:
        completion = await ctx.provider.complete(
            messages,
            max_output_tokens=ctx.settings.llm_max_output_tokens,
            temperature=ctx.settings.llm_temperature,
        )
    except ModelRequestError as exc:
        ctx.trace.emit(TraceKind.ERROR, "propose", turn=turn, error=str(exc))
        return {"status": RunStatus.FAILED, "stop_reason": f"the model request failed: {exc}"}
    usage = completion.usage
    ctx.trace.emit(
        TraceKind.REPLY,
        "propose",
        turn=turn,
        duration_s=completion.duration_s,
        text=completion.text,
        finish_reason=completion.finish_reason,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cost_usd=completion.cost_usd,
        attempts=completion.attempts,
        provider=completion.provider,
        model=completion.model,
    )
    attempt = Attempt(
        turn=turn,
        step=state.step,
        reply=completion.text,
        finish_reason=completion.finish_reason,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cost_usd=completion.cost_usd,
    )
    return {
        "turn": turn,
        "current": attempt,
        "tokens_used": state.tokens_used + usage.total_tokens,
        "cost_usd": state.cost_usd + (completion.cost_usd or 0.0),
    }


async def check(state: RunState, runtime: Runtime[RunContext]) -> Update:
    """Extract the module from the reply and run the fast static checks."""
    assert state.current is not None
    extraction = extract_candidate_code(
        state.current.reply, state.target, truncated=state.current.finish_reason == "length"
    )
    diagnostics = list(extraction.diagnostics)
    if extraction.code is not None and not any(d.is_error for d in diagnostics):
        if state.target == Target.TT_METAL:  # the same call as `kernelwright tt-metal check`
            report = await asyncio.to_thread(
                check_ttmetal, Project.from_bundle(extraction.code), runtime.context.settings, build=False
            )
            diagnostics += report.diagnostics
        else:
            diagnostics += check_candidate_source(extraction.code, state.target)
    if diagnostics:
        runtime.context.trace.emit(
            TraceKind.DIAGNOSTICS,
            "check",
            turn=state.turn,
            diagnostics=[d.model_dump(mode="json") for d in diagnostics],
        )
    return {"current": state.current.model_copy(update={"code": extraction.code, "diagnostics": diagnostics})}


async def compile_kernel(state: RunState, runtime: Runtime[RunContext]) -> Update:
    """Compile the kernel with the real toolchain (ptxas, nvcc, Triton)."""
    ctx = runtime.context
    assert state.current is not None and state.current.code is not None
    candidate = Candidate(target=state.target, source=state.current.code, turn=state.turn)
    result = await compile_candidate(candidate, ctx.settings, arch=state.arch, cache_dir=ctx.kernel_cache)
    ctx.trace.emit(
        TraceKind.COMPILED,
        "compile",
        turn=state.turn,
        duration_s=result.duration_s,
        ok=result.ok,
        toolchain=result.toolchain,
        toolchain_missing=result.toolchain_missing,
        diagnostics=[d.model_dump(mode="json") for d in result.diagnostics],
        log=result.log[-4000:],
    )
    known = set(state.current.diagnostics)  # the kernel-source scan runs in both check and compile
    diagnostics = [*state.current.diagnostics, *(d for d in result.diagnostics if d not in known)]
    return {"current": state.current.model_copy(update={"compile": result, "diagnostics": diagnostics})}


async def verify(state: RunState, runtime: Runtime[RunContext]) -> Update:
    """Run the candidate against the reference in sandboxed workers."""
    ctx = runtime.context
    assert state.current is not None and state.current.code is not None
    candidate = Candidate(target=state.target, source=state.current.code, turn=state.turn)
    assert state.current.compile is not None
    if state.target == Target.TT_METAL:
        verdict = ttmetal_verdict(state.current.compile)
        ctx.trace.emit(TraceKind.VERDICT, "verify", turn=state.turn, **verdict.model_dump(mode="json"))
        return {"current": state.current.model_copy(update={"verdict": verdict})}
    if ctx.runner is not None:  # on a leased slot: compiles again there (a kernel-cache hit) and verifies
        job = EvalJob(
            f"{state.run_id}/turn-{state.turn}", state.problem, candidate, ctx.verify_options, state.arch
        )
        verdict = await ctx.runner.evaluate(job)
    else:
        verdict = await verify_with_store(
            state.problem,
            candidate,
            state.current.compile,
            settings=ctx.settings,
            executor=ctx.executor,
            options=ctx.verify_options,
            kernel_cache=ctx.kernel_cache,
        )
    ctx.trace.emit(
        TraceKind.VERDICT,
        "verify",
        turn=state.turn,
        duration_s=verdict.duration_s,
        **verdict.model_dump(mode="json", exclude={"duration_s"}),
    )
    return {"current": state.current.model_copy(update={"verdict": verdict})}


_MISMATCH_LIKE = {
    Outcome.RUNTIME_ERROR,
    Outcome.TIMEOUT,
    Outcome.WRONG_SHAPE,
    Outcome.WRONG_DTYPE,
    Outcome.MISMATCH,
    Outcome.HACK_SUSPECTED,
    Outcome.QUARANTINED,
}


async def assess(state: RunState, runtime: Runtime[RunContext]) -> Update:
    """File the finished attempt, keep the best one, and pick the next prompt step."""
    attempt = state.current
    assert attempt is not None
    best = state.best
    if best is None or attempt.rank() > best.rank():
        best = attempt
    outcome = attempt.outcome
    update: Update = {"attempts": [attempt], "current": None, "best": best}
    if outcome == Outcome.CORRECT:
        update["step"] = Step.OPTIMIZE
        if state.step == Step.OPTIMIZE:
            update["optimize_rounds_done"] = state.optimize_rounds_done + 1
    elif attempt.verdict is None:
        update["step"] = Step.FIX_COMPILE  # stopped before running: the diagnostics say why
    elif outcome in _MISMATCH_LIKE:
        update["step"] = Step.FIX_MISMATCH
    else:
        update["step"] = Step.FIX_COMPILE
    return update


async def record(state: RunState, runtime: Runtime[RunContext]) -> Update:
    """Close the run: final status, the best attempt, and a summary line in the trace."""
    status, reason = state.status, state.stop_reason
    best = state.best
    if status == RunStatus.RUNNING:
        status, reason = _final_status(state, runtime.context)
    lessons = _store_lessons(state, runtime.context)  # idempotent: lessons are keyed by content
    if runtime.context.trace.finished():  # killed after writing it, before its checkpoint: not twice
        return {"status": status, "stop_reason": reason}
    runtime.context.trace.emit(
        TraceKind.RUN_FINISHED,
        "record",
        turn=state.turn,
        status=status.value,
        reason=reason,
        best_turn=best.turn if best else None,
        best_outcome=best.outcome.value if best else None,
        speedup_vs_eager=best.verdict.speedup_vs_eager if best and best.verdict else None,
        tokens_used=state.tokens_used,
        cost_usd=state.cost_usd,
        turns=state.turn,
        wall_s=time.time() - state.started_at,
        lessons=lessons,
    )
    return {"status": status, "stop_reason": reason}


def _store_lessons(state: RunState, ctx: RunContext) -> int:
    """Distill what this run teaches (fixes, winning tuning choices) into the lesson store."""
    best = state.best
    record = RunRecord(
        run_id=state.run_id,
        target=state.target,
        arch=state.arch,
        device=best.verdict.device if best and best.verdict else None,
        problem=state.problem.key,
        problem_class=classify_problem(state.problem),
        model=ctx.provider.model,
        attempts=[
            AttemptRecord(
                a.turn,
                a.code,
                a.outcome,
                [*a.diagnostics, *(a.verdict.diagnostics if a.verdict else [])],
                a.verdict.speedup_vs_eager if a.verdict else None,
            )
            for a in state.attempts
        ],
    )
    lessons = distill_lessons(record)
    LessonStore.from_settings(ctx.settings).add(lessons)
    return len(lessons)


def _final_status(state: RunState, ctx: RunContext) -> tuple[RunStatus, str]:
    from agent.routing import budget_exhausted

    best = state.best
    if best is not None and best.outcome == Outcome.CORRECT:
        return RunStatus.SUCCEEDED, best.verdict.message if best.verdict else "correct"
    if best is not None and best.outcome == Outcome.NO_GPU:
        return RunStatus.COMPILED_UNVERIFIED, "the kernel compiled; no GPU here to run it"
    last = state.attempts[-1] if state.attempts else None
    if last is not None and last.outcome in (Outcome.TOOLCHAIN_MISSING, Outcome.INFRASTRUCTURE):
        detail = last.verdict.message if last.verdict else "; ".join(d.render() for d in last.diagnostics)
        return RunStatus.FAILED, f"{last.outcome.value}: {detail}"
    exhausted = budget_exhausted(state, ctx.budgets)
    if exhausted:
        return RunStatus.BUDGET_EXHAUSTED, exhausted
    return RunStatus.FAILED, "no correct kernel"
