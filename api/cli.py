"""The `kernelwright` command line. Errors from the library become exit codes and messages here only."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from api.batch_cli import batch_app
from api.knowledge_cli import knowledge_app
from api.ptx_cli import ptx_app
from api.sandbox_cli import sandbox_app
from api.server_cli import db_app, keys_app, serve
from api.toolchains_cli import toolchains_app
from api.ttmetal_cli import ttmetal_app
from kernelwright.domain import Candidate, Outcome, Target
from kernelwright.errors import KernelwrightError, UserError
from kernelwright.logs import configure_logging
from kernelwright.settings import Settings
from sandbox.runtime.limits import make_undumpable

__all__ = ["app", "main"]

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="LLM agents that write GPU kernels, prove them correct and make them fast.",
)
problems_app = typer.Typer(no_args_is_help=True, help="List and inspect problems.")
trace_app = typer.Typer(no_args_is_help=True, help="Read run traces.")
app.add_typer(problems_app, name="problems")
app.add_typer(ptx_app, name="ptx")
app.add_typer(ttmetal_app, name="tt-metal")
app.add_typer(toolchains_app, name="toolchains")
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(knowledge_app, name="knowledge")
app.add_typer(trace_app, name="trace")
app.add_typer(keys_app, name="keys")
app.add_typer(db_app, name="db")
app.command()(serve)
app.add_typer(batch_app, name="batch")

console = Console(stderr=True)
out = Console(soft_wrap=True)

TargetOpt = Annotated[Target, typer.Option("--target", "-t", help="ptx, cuda, triton or tt-metal")]
FormatOpt = Annotated[str, typer.Option("--format", help="text or json")]


def _settings(home: Path | None) -> Settings:
    settings = Settings() if home is None else Settings(home=home)
    configure_logging(settings.log_level, settings.log_format)
    return settings


def _fail(message: str, code: int = 1) -> typer.Exit:
    console.print(f"[red]error:[/] {message}")
    return typer.Exit(code)


@app.command()
def generate(
    problem: Annotated[
        str, typer.Argument(help="a problem .py file, or SOURCE#KEY (e.g. kernelbench.jsonl#L1/19)")
    ],
    target: TargetOpt = Target.TRITON,
    provider: Annotated[str | None, typer.Option(help="openai, groq or scripted")] = None,
    model: Annotated[str | None, typer.Option(help="model name at the provider")] = None,
    base_url: Annotated[
        str | None, typer.Option(help="OpenAI-compatible server URL (vLLM, Ollama...)")
    ] = None,
    transcript: Annotated[
        Path | None, typer.Option(help="replay this transcript (scripted provider)")
    ] = None,
    max_turns: Annotated[int | None, typer.Option(help="turn budget")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="token budget")] = None,
    max_cost: Annotated[float | None, typer.Option(help="cost budget in USD")] = None,
    max_wall: Annotated[float | None, typer.Option(help="wall-time budget in seconds")] = None,
    optimize_rounds: Annotated[int, typer.Option(help="extra turns to make a correct kernel faster")] = 0,
    arch: Annotated[str | None, typer.Option(help="GPU architecture, e.g. sm_90")] = None,
    note: Annotated[list[str] | None, typer.Option(help="an instruction for the model (repeatable)")] = None,
    resume: Annotated[str | None, typer.Option(help="resume this run id from its checkpoint")] = None,
    output: Annotated[Path | None, typer.Option(help="write the best kernel here")] = None,
    fmt: FormatOpt = "text",
    home: Annotated[Path | None, typer.Option(envvar="KERNELWRIGHT_HOME", help="state folder")] = None,
) -> None:
    """Generate a kernel for PROBLEM: retrieve, propose, check, compile, refine, verify, record."""
    from agent.context import Budgets
    from agent.providers import make_provider
    from agent.run import GenerationRequest, RunResult, run_generation
    from api.progress import ProgressPrinter
    from kernelwright.domain.problem import find_problem
    from sandbox.runner import make_runner

    settings = _settings(home)
    try:
        name = provider or ("scripted" if transcript else settings.provider)
        kwargs: dict[str, Any] = {"transcript": transcript} if transcript else {}
        if base_url:
            kwargs["base_url"] = base_url
        llm = make_provider(name, model or settings.model, settings, **kwargs)
        budgets = Budgets.from_settings(
            settings,
            max_turns=max_turns,
            max_tokens=max_tokens,
            max_cost_usd=max_cost,
            max_wall_s=max_wall,
            optimize_rounds=optimize_rounds,
        )
        request = (
            None
            if resume
            else GenerationRequest(
                problem=find_problem(problem),
                target=target,
                arch=arch or settings.gpu_arch,
                notes=tuple(note or ()),
                budgets=budgets,
            )
        )
        listeners = (ProgressPrinter(console),) if fmt == "text" else ()

        async def run() -> RunResult:
            # verified through the runner the settings name, as the service and batches do
            runner = make_runner(settings)
            try:
                return await run_generation(
                    request,
                    settings=settings,
                    provider=llm,
                    listeners=listeners,
                    run_id=resume,
                    runner=runner,
                )
            finally:
                await runner.aclose()

        result = asyncio.run(run())
    except KernelwrightError as exc:
        raise _fail(str(exc), 2 if isinstance(exc, UserError) else 1) from exc
    state = result.state
    best = state.best
    if output and best and best.code:
        output.write_text(best.code, encoding="utf-8")
    summary = {
        "run_id": result.run_id,
        "status": state.status.value,
        "reason": state.stop_reason,
        "turns": state.turn,
        "tokens_used": state.tokens_used,
        "cost_usd": state.cost_usd,
        "replay": llm.is_replay,
        "trace": str(result.trace_path),
        "best": None
        if best is None
        else {
            "turn": best.turn,
            "outcome": best.outcome.value,
            "speedup_vs_eager": best.verdict.speedup_vs_eager if best.verdict else None,
            "device": best.verdict.device if best.verdict else None,
            "code": best.code,
        },
    }
    if fmt == "json":
        out.print_json(json.dumps(summary))
    else:
        console.print(f"trace: {result.trace_path}")
        if best and best.code:
            console.print(
                f"best kernel (turn {best.turn}, {best.outcome.value})"
                + (f" written to {output}" if output else ":")
            )
            if not output:
                out.print(best.code)
    raise typer.Exit(0 if state.status.value in ("succeeded", "compiled_unverified") else 1)


@app.command("eval")
def evaluate(
    problem: Annotated[
        Path, typer.Argument(help="problem .py file (defines Model, get_inputs, get_init_inputs)")
    ],
    kernel: Annotated[Path, typer.Argument(help="candidate .py file (defines ModelNew)")],
    target: TargetOpt = Target.TRITON,
    arch: Annotated[str | None, typer.Option(help="GPU architecture, e.g. sm_90")] = None,
    draws: Annotated[int | None, typer.Option(help="correctness draws (fresh inputs)")] = None,
    trials: Annotated[int | None, typer.Option(help="timing trials (GPU only)")] = None,
    fmt: FormatOpt = "text",
    home: Annotated[Path | None, typer.Option(envvar="KERNELWRIGHT_HOME", help="state folder")] = None,
) -> None:
    """Verify a given kernel against its reference, with no LLM. Exit 0 iff the outcome is `correct`."""
    from kernelwright.domain.problem import Problem
    from sandbox.evaluate import evaluate_candidate
    from sandbox.executor import LocalExecutor
    from sandbox.verify import VerifyOptions

    settings = _settings(home)
    if fmt not in ("text", "json"):
        raise _fail("--format must be text or json", 2)
    if not kernel.is_file():
        raise _fail(f"kernel file {kernel} does not exist", 2)
    try:
        loaded = Problem.from_file(problem)
        candidate = Candidate(target=target, source=kernel.read_text(encoding="utf-8"))
        base = VerifyOptions.from_settings(settings)
        options = VerifyOptions(
            draws or base.draws,
            trials if trials is not None else base.timing_trials,
            base.timing_warmup,
            base.timeout_s,
            base.device,
        )
        settings.ensure_dirs()
        compiled, verdict = asyncio.run(
            evaluate_candidate(
                loaded, candidate, settings=settings, executor=LocalExecutor(), options=options, arch=arch
            )
        )
    except UserError as exc:
        raise _fail(str(exc), 2) from exc
    except KernelwrightError as exc:
        raise _fail(str(exc), 1) from exc
    payload = verdict.model_dump(mode="json")
    payload["compile"] = (
        None
        if compiled is None
        else {"ok": compiled.ok, "toolchain": compiled.toolchain, "duration_s": compiled.duration_s}
    )
    if fmt == "json":
        out.print_json(json.dumps(payload))
    else:
        color = "green" if verdict.outcome == Outcome.CORRECT else "red"
        out.print(f"[{color}]{verdict.outcome.value}[/]: {verdict.message}")
        for diag in verdict.diagnostics:
            out.print(diag.render(), markup=False)
        for draw in verdict.draws:
            out.print(
                f"  draw {draw.draw}: max abs {draw.max_abs_error:.3g}, mean abs {draw.mean_abs_error:.3g}"
            )
        if verdict.speedup_vs_eager is not None:
            out.print(f"  speedup vs eager: {verdict.speedup_vs_eager:.3f}x on {verdict.device}")
        if verdict.speedup_vs_compile is not None:
            out.print(f"  speedup vs torch.compile: {verdict.speedup_vs_compile:.3f}x")
        for note in verdict.baseline_notes:
            out.print(f"  note: {note}")
        if verdict.from_store:
            out.print("  (served from the result store: this exact check ran before)")
    raise typer.Exit(0 if verdict.outcome == Outcome.CORRECT else 1)


@problems_app.command("list")
def problems_list(
    source: Annotated[
        Path, typer.Argument(help="a .py file, a KernelBench checkout or folder, .jsonl or .parquet")
    ],
    level: Annotated[int | None, typer.Option(help="only this level")] = None,
    fmt: FormatOpt = "text",
) -> None:
    """List the problems in SOURCE."""
    from kernelwright.domain.problem import load_problems

    try:
        problems = [p for p in load_problems(source) if level is None or p.level == level]
    except KernelwrightError as exc:
        raise _fail(str(exc), 2) from exc
    if fmt == "json":
        out.print_json(
            json.dumps(
                [
                    {
                        "key": p.key,
                        "name": p.name,
                        "level": p.level,
                        "problem_id": p.problem_id,
                        "origin": p.origin,
                    }
                    for p in problems
                ]
            )
        )
        return
    table = Table("key", "name", "level", "id")
    for p in problems:
        table.add_row(p.key, p.name, str(p.level or ""), str(p.problem_id or ""))
    out.print(table)
    out.print(f"{len(problems)} problems")


@problems_app.command("audit")
def problems_audit(
    source: Annotated[
        Path, typer.Argument(help="a .py file, a KernelBench checkout or folder, .jsonl or .parquet")
    ],
    level: Annotated[list[int] | None, typer.Option(help="only these levels (repeatable)")] = None,
    limit: Annotated[int | None, typer.Option(help="audit at most this many problems")] = None,
    draws: Annotated[int, typer.Option(help="input draws per problem")] = 3,
    timeout: Annotated[float, typer.Option(help="seconds per problem before it counts as hanging")] = 300.0,
    output: Annotated[Path | None, typer.Option(help="write the JSON report here")] = None,
    fmt: FormatOpt = "text",
    home: Annotated[Path | None, typer.Option(envvar="KERNELWRIGHT_HOME", help="state folder")] = None,
) -> None:
    """Flag problems that trivial kernels pass (zeros, identity, constant) and broken references."""
    from kernelwright.domain.problem import load_problems
    from sandbox.audit import audit_problems
    from sandbox.executor import LocalExecutor

    settings = _settings(home)
    try:
        problems = [p for p in load_problems(source) if not level or p.level in level][:limit]
    except KernelwrightError as exc:
        raise _fail(str(exc), 2) from exc
    settings.ensure_dirs()

    def show(audit: Any) -> None:
        if fmt == "text":
            why = "; ".join(audit.reasons + [f"fix: {f}" for f in audit.fixes]) or "ok"
            console.print(f"{audit.key:8} {audit.name[:40]:40} [bold]{audit.decision:7}[/] {why}")

    report = asyncio.run(
        audit_problems(
            problems,
            settings=settings,
            executor=LocalExecutor(),
            draws=draws,
            timeout_s=timeout,
            progress=show,
            source=str(source),
        )
    )
    text = report.model_dump_json(indent=1, by_alias=True)
    if output is not None:
        output.write_text(text, encoding="utf-8")
    if fmt == "json":
        out.print_json(text)
    else:
        counts = report.counts()
        out.print(
            f"{len(report.problems)} problems on {report.device}: {counts['keep']} keep, "
            f"{counts['fix']} fix, {counts['exclude']} exclude"
        )


@problems_app.command("curate")
def problems_curate(
    reports: Annotated[
        list[Path], typer.Argument(help="audit reports (JSON) from `problems audit --output`")
    ],
    output: Annotated[Path, typer.Option(help="write the curated suite (JSON) here")],
) -> None:
    """Turn audit reports into a curated suite: which problems to exclude and which fixes to apply."""
    from sandbox.audit import AuditReport, curate

    try:
        loaded = [AuditReport.model_validate_json(path.read_text(encoding="utf-8")) for path in reports]
    except (OSError, ValueError) as exc:
        raise _fail(f"could not read an audit report: {exc}", 2) from exc
    suite = curate(loaded)
    output.write_text(suite.model_dump_json(indent=1, by_alias=True), encoding="utf-8")
    out.print(f"{len(suite.exclude)} excluded, {len(suite.fixes)} fixed; written to {output}")


@trace_app.command("show")
def trace_show(
    run: Annotated[str, typer.Argument(help="a run id or a trace .jsonl path")],
    full: Annotated[bool, typer.Option(help="print prompts and replies in full")] = False,
    home: Annotated[Path | None, typer.Option(envvar="KERNELWRIGHT_HOME", help="state folder")] = None,
) -> None:
    """Print a run's trace as a readable story of its steps."""
    from agent.trace import read_trace
    from api.progress import ProgressPrinter

    settings = _settings(home)
    path = Path(run) if run.endswith(".jsonl") else settings.traces_dir / f"{run}.jsonl"
    if not path.is_file():
        raise _fail(f"no trace at {path}", 2)
    printer = ProgressPrinter(out)
    for event in read_trace(path):
        printer(event)
        if full and event.kind.value in ("prompt", "reply"):
            body = event.data.get("user") if event.kind.value == "prompt" else event.data.get("text")
            out.print(str(body), markup=False, highlight=False)


def main() -> None:
    """Console-script entry point."""
    # This process may hold model API keys in its environment, and workers may run as the same user
    # where no PID namespace hides it: undumpable, its /proc environment and memory are closed to them.
    make_undumpable()
    try:
        app()
    except KeyboardInterrupt:
        console.print(
            "interrupted; `kernelwright generate --resume RUN_ID` continues a run from its checkpoint"
        )
        sys.exit(130)
